"""The outbound HTTP session: the environment is consulted only when it configures a proxy."""
from __future__ import annotations

import pytest
import requests

from b24app.container import oauth_session

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "no_proxy",
              "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_a_proxy_the_environment_and_netrc_are_ignored(no_proxy_env, tmp_path) -> None:
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login leak password secret\n")
    no_proxy_env.setenv("NETRC", str(tmp_path / ".netrc"))
    session = oauth_session()
    assert session.trust_env is False
    prepared = session.prepare_request(requests.Request("POST", "http://127.0.0.1:1/rest/x"))
    settings = session.merge_environment_settings(prepared.url, {}, None, None, None)
    assert "Authorization" not in prepared.headers and settings["proxies"] == {}


def test_a_configured_proxy_is_honoured(no_proxy_env) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = oauth_session()
    assert session.trust_env is True
    settings = session.merge_environment_settings("https://portal.example/rest/x", {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.internal:3128"
