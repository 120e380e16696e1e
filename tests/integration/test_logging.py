"""Structured, correlated, redacted logs."""
from __future__ import annotations

import io
import json
import logging

import pytest
import requests

from b24app import create_app
from b24app.errors import RateLimitTimeout
from b24app.observability.logs import REDACTED, LineThrottle, configure_logging, redact
from tests.conftest import make_config
from tests.support.processes import clean_env, gunicorn

SECRETS = {
    "access_token": "AT9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "refresh_token": "RT0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "application_token": "APPTOK51c2d3e4f5a6b7c8d9e0f1a2b3c4",
    "client_secret": "CLIENTSECRETzyxwvutsrqponmlkjihg",
    "AUTH_ID": "AUTHID77f3e2d1c0b9a8f7e6d5c4b3a2",
    "REFRESH_ID": "REFRESHID8899aabbccddeeff00112233",
    "code": "CODE4455667788990011aabbccddee",
    "auth": "AUTHPARAM5566778899aabbccddeeff00",
}


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", secrets=[SECRETS["client_secret"]], stream=stream)
    yield stream
    configure_logging("INFO")


def _assert_clean(text: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} leaked"


def test_every_logging_path_is_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("b24app.test")
    s = SECRETS
    log.info(f"message access_token={s['access_token']}&refresh_token={s['refresh_token']}")
    log.info("args %s %s", f"auth={s['auth']}", {"application_token": s["application_token"]})
    log.info("json body %s", json.dumps({"AUTH_ID": s["AUTH_ID"], "REFRESH_ID": s["REFRESH_ID"]}))
    log.info("form auth[access_token]=%s&auth[application_token]=%s", s["access_token"], s["application_token"])
    log.info("url https://portal/rest/profile?auth=%s and /oauth/callback?code=%s&state=x", s["auth"], s["code"])
    log.info("url https://oauth/oauth/token/?client_secret=%s&refresh_token=%s", s["client_secret"],
             s["refresh_token"])
    log.info("header Authorization: Bearer %s", s["access_token"])
    log.info("bare configured secret %s", s["client_secret"])
    log.info("extra", extra={"access_token": s["access_token"], "detail": f"code={s['code']}"})
    try:
        raise ValueError(f"refresh failed for refresh_token={s['refresh_token']} {s['client_secret']}")
    except ValueError:
        log.exception("exception path")
    output = captured.getvalue()
    _assert_clean(output)
    lines = output.strip().splitlines()
    assert len(lines) == 10
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= entry.keys()
    assert REDACTED in output
    assert "exception path" in output
    assert "ValueError" in output


def test_terminal_colours_never_reach_a_json_line(captured: io.StringIO) -> None:
    """werkzeug styles its request lines when stderr is a terminal."""
    logging.getLogger("werkzeug").info('127.0.0.1 - - "\x1b[35m\x1b[1mPOST /api/v1/badges HTTP/1.1\x1b[0m" 201 -')
    entry = json.loads(captured.getvalue().strip().splitlines()[-1])
    assert entry["msg"] == '127.0.0.1 - - "POST /api/v1/badges HTTP/1.1" 201 -'


def test_redact_keeps_harmless_text() -> None:
    assert redact("GET /api/v1/badges?state=open&limit=5") == "GET /api/v1/badges?state=open&limit=5"
    assert redact("member_id=abc domain=portal.bitrix24.com") == "member_id=abc domain=portal.bitrix24.com"


def test_request_id_is_on_every_line_of_a_request(captured: io.StringIO, redis_client) -> None:
    app = create_app(make_config(), configure_logs=False)

    def noisy() -> str:
        logging.getLogger("b24app.web").info("handling")
        return "ok"

    app.add_url_rule("/noisy", "noisy", noisy)
    app.test_client().get("/noisy", headers={"X-Request-ID": "trace-me-1"})
    handled = [json.loads(line) for line in captured.getvalue().splitlines() if "handling" in line]
    assert handled
    assert handled[0]["request_id"] == "trace-me-1"


def test_gunicorn_access_log_is_json_and_redacted(tmp_path) -> None:
    env = clean_env(B24_ENV="development", B24_CLIENT_ID="app.t.1", B24_CLIENT_SECRET=SECRETS["client_secret"],
                    B24_APP_URL="http://127.0.0.1:1", B24_ALLOW_HTTP="1", B24_DATA_DIR=str(tmp_path / "var"))
    with gunicorn(env, tmp_path / "app.log", workers=1) as served:
        requests.get(f"{served.url}/oauth/callback", params={"code": SECRETS["code"], "state": "s"},
                     headers={"X-Request-ID": "access-rid-9"}, timeout=5)
        requests.get(f"{served.url}/readyz", params={"auth": SECRETS["auth"],
                                                     "client_secret": SECRETS["client_secret"]}, timeout=5)
    output = served.output()
    _assert_clean(output)
    access = [json.loads(line) for line in output.splitlines()
              if line.startswith("{") and '"gunicorn.access"' in line]
    assert any("access-rid-9" in entry["msg"] for entry in access)
    assert any("/oauth/callback?code=" + REDACTED in entry["msg"] for entry in access)


def test_a_refusal_repeated_by_a_flood_is_one_line_not_a_flood_of_lines(captured: io.StringIO, redis_client) -> None:
    """A portal's users must not be able to fill the app's logs: one line per failure and portal every 10 s."""
    app = create_app(make_config(), configure_logs=False)

    def refused(member_id: str) -> str:
        raise RateLimitTimeout(3.0, member_id)

    app.add_url_rule("/refused/<member_id>", "refused", refused)
    client = app.test_client()
    statuses = {client.get("/refused/flooder").status_code for _ in range(30)}
    assert statuses == {503}
    assert client.get("/refused/bystander").status_code == 503
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if "request failed" in line]
    assert [line["reason"] for line in lines] == ["portal flooder rate limit: next slot in 3.00s",
                                                  "portal bystander rate limit: next slot in 3.00s"]
    assert [line["held_back"] for line in lines] == [0, 0]


def test_the_line_throttle_says_how_many_it_held_back() -> None:
    now = [0.0]
    throttle = LineThrottle(10, clock=lambda: now[0], size=4)
    assert throttle.admit("a") == 0
    assert [throttle.admit("a") for _ in range(5)] == [None] * 5
    assert throttle.admit("b") == 0, "keys are counted apart"
    now[0] += 10
    assert throttle.admit("a") == 5
    for key in range(100):  # one line each, ten seconds apart: the table keeps only what is still recent
        now[0] += 10
        assert throttle.admit(key) == 0
    assert len(throttle._last) <= 4
