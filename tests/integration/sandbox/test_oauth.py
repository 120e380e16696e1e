"""OAuth server facts (docs/bitrix24-protocol.md §2, §6.2)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from b24app.sandbox import AppCard, Portal, Sandbox, SandboxServer

from .conftest import Installed, call

TOKEN_FIELDS = {"access_token", "expires", "expires_in", "scope", "domain", "server_endpoint", "status",
                "client_endpoint", "member_id", "user_id", "refresh_token"}


def _authorize(http: requests.Session, portal: Portal, card: AppCard, user: int | None = None,
               state: str = "s-1") -> requests.Response:
    params = {"client_id": card.client_id, "state": state}
    if user is not None:
        params["sandbox_user"] = str(user)
    return http.get(portal.base_url + "/oauth/authorize/", params=params, allow_redirects=False, timeout=10)


def _code(http: requests.Session, portal: Portal, card: AppCard, user: int | None = None) -> str:
    resp = _authorize(http, portal, card, user)
    assert resp.status_code == 302
    return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]


def _token(http: requests.Session, server: SandboxServer, card: AppCard, post: bool = True,
           **params: str) -> requests.Response:
    data = {"client_id": card.client_id, "client_secret": card.client_secret, **params}
    url = server.oauth_url + "/oauth/token/"
    if post:
        return http.post(url, data=data, timeout=10)
    return http.get(url, params=data, timeout=10)


def test_authorize_redirects_to_registered_uri_with_documented_params(http, installed: Installed, card: AppCard,
                                                                       server: SandboxServer) -> None:
    """§2.2: 302 to the app card's redirect URI with code, state, domain, member_id, scope, server_domain."""
    resp = _authorize(http, installed.portal, card, state="xyz")
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == card.redirect_uri
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert set(query) == {"code", "state", "domain", "member_id", "scope", "server_domain"}
    assert query["state"] == "xyz"
    assert query["domain"] == installed.portal.domain
    assert query["member_id"] == installed.portal.member_id
    assert query["scope"] == card.scope
    assert query["server_domain"] == server.oauth_url.split("://")[1]


def test_authorize_requires_the_app_installed(http, portal: Portal, card: AppCard) -> None:
    """§2.2: the app must already be installed on the portal, otherwise no redirect back."""
    resp = _authorize(http, portal, card)
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_code_exchange_returns_every_token_field(http, installed: Installed, card: AppCard,
                                                 server: SandboxServer) -> None:
    """§2.2–§2.3: GET /oauth/token/?grant_type=authorization_code answers the documented fields."""
    code = _code(http, installed.portal, card)
    resp = _token(http, server, card, post=False, grant_type="authorization_code", code=code)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == TOKEN_FIELDS
    assert body["expires_in"] == 3600
    assert body["member_id"] == installed.portal.member_id
    assert body["client_endpoint"] == installed.portal.client_endpoint
    assert body["server_endpoint"] == server.server_endpoint
    assert body["user_id"] == 1
    assert len(body["access_token"]) >= 64
    assert call(http, installed.portal, "profile", body["access_token"]).json()["result"]["ID"] == "1"


def test_authorize_acts_for_the_selected_user(http, installed: Installed, card: AppCard,
                                              server: SandboxServer) -> None:
    """§2.2: the code belongs to the user who authorized (sandbox_user selects Bob, id 2)."""
    code = _code(http, installed.portal, card, user=2)
    body = _token(http, server, card, grant_type="authorization_code", code=code).json()
    assert body["user_id"] == 2


def test_code_lives_30_seconds(http, installed: Installed, card: AppCard, server: SandboxServer, sb: Sandbox) -> None:
    """§2.2: the code lives 30 s; later it is invalid_grant."""
    code = _code(http, installed.portal, card)
    sb.clock.advance(31)
    resp = _token(http, server, card, grant_type="authorization_code", code=code)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_code_is_single_use(http, installed: Installed, card: AppCard, server: SandboxServer) -> None:
    """§2.2: a code can be exchanged once."""
    code = _code(http, installed.portal, card)
    assert _token(http, server, card, grant_type="authorization_code", code=code).status_code == 200
    again = _token(http, server, card, grant_type="authorization_code", code=code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("post", [True, False], ids=["form-post", "get-query"])
def test_refresh_accepts_form_post_and_get(http, installed: Installed, card: AppCard, server: SandboxServer,
                                           post: bool) -> None:
    """§2.3: GET with a query string (documented) and a form POST (CRest, b24jssdk) both work."""
    resp = _token(http, server, card, post=post, grant_type="refresh_token",
                  refresh_token=installed.admin["refresh_token"])
    assert resp.status_code == 200
    assert set(resp.json()) == TOKEN_FIELDS


def test_refresh_rotates_and_kills_the_sibling_access_token(http, installed: Installed, card: AppCard,
                                                            server: SandboxServer) -> None:
    """§2.3: after a refresh the old refresh token and the access token issued with it are dead."""
    old = installed.admin
    new = _token(http, server, card, grant_type="refresh_token", refresh_token=old["refresh_token"]).json()
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] != old["access_token"]
    dead = call(http, installed.portal, "profile", old["access_token"])
    assert dead.status_code == 401
    assert dead.json()["error"] == "invalid_token"
    assert call(http, installed.portal, "profile", new["access_token"]).status_code == 200


def test_refresh_token_reuse_is_invalid_grant(http, installed: Installed, card: AppCard,
                                              server: SandboxServer) -> None:
    """§2.3/§2.4: refresh tokens are single-use; reuse gets invalid_grant (HTTP 400)."""
    token = installed.admin["refresh_token"]
    assert _token(http, server, card, grant_type="refresh_token", refresh_token=token).status_code == 200
    reuse = _token(http, server, card, grant_type="refresh_token", refresh_token=token)
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert set(reuse.json()) == {"error", "error_description"}


def test_wrong_secret_is_invalid_client(http, installed: Installed, card: AppCard, server: SandboxServer) -> None:
    """§2.4: a wrong client_secret gets invalid_client (400) and does not consume the refresh token."""
    url = server.oauth_url + "/oauth/token/"
    resp = http.post(url, data={"grant_type": "refresh_token", "client_id": card.client_id,
                                "client_secret": "nope", "refresh_token": installed.admin["refresh_token"]},
                     timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client"
    ok = _token(http, server, card, grant_type="refresh_token", refresh_token=installed.admin["refresh_token"])
    assert ok.status_code == 200


def test_missing_refresh_token_is_invalid_request(http, card: AppCard, server: SandboxServer) -> None:
    """§2.4: invalid_request, e.g. `No "refresh_token" parameter found` (HTTP 400)."""
    resp = _token(http, server, card, grant_type="refresh_token")
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_request", "error_description": 'No "refresh_token" parameter found'}


def test_access_token_lives_one_hour(http, installed: Installed, sb: Sandbox) -> None:
    """§2.3/§3.3: the access token lives 3600 s, then the portal answers 401 expired_token."""
    token = installed.admin["access_token"]
    sb.clock.advance(3590)
    assert call(http, installed.portal, "profile", token).status_code == 200
    sb.clock.advance(11)
    resp = call(http, installed.portal, "profile", token)
    assert resp.status_code == 401
    assert resp.json() == {"error": "expired_token", "error_description": "The access token provided has expired"}


def test_refresh_token_lives_180_days(http, installed: Installed, card: AppCard, server: SandboxServer,
                                      sb: Sandbox) -> None:
    """§2.3: refresh tokens live 180 days (current docs)."""
    spare = sb.issue_tokens(installed.portal, 1)
    sb.clock.advance(179 * 86400)
    assert _token(http, server, card, grant_type="refresh_token",
                  refresh_token=installed.admin["refresh_token"]).status_code == 200
    sb.clock.advance(2 * 86400)
    late = _token(http, server, card, grant_type="refresh_token", refresh_token=spare["refresh_token"])
    assert late.json()["error"] == "invalid_grant"


def test_oauth_app_info_shape(http, installed: Installed, card: AppCard, server: SandboxServer) -> None:
    """§6.2: /rest/app.info?auth= on the OAuth server: client_id, scope, expires (ISO), user_id, install{...}."""
    resp = http.get(server.oauth_url + "/rest/app.info", params={"auth": installed.user["access_token"]}, timeout=10)
    assert resp.status_code == 200
    result = resp.json()["result"]
    assert "time" in resp.json()
    assert result["client_id"] == card.client_id
    assert result["user_id"] == 2
    assert result["scope"] == card.scope
    assert "T" in result["expires"] and result["expires"].endswith("+00:00")
    install = result["install"]
    assert set(install) == {"installed", "version", "status", "scope", "domain", "uri", "client_endpoint",
                            "member_id", "member_type"}
    assert install["installed"] is True
    assert install["domain"] == installed.portal.domain
    assert install["uri"] == installed.portal.base_url
    assert install["client_endpoint"] == installed.portal.client_endpoint
    assert install["member_id"] == installed.portal.member_id


def test_oauth_app_info_accepts_post(http, installed: Installed, server: SandboxServer) -> None:
    """§6.2: app.info is also reachable by POST (form `auth`)."""
    resp = http.post(server.oauth_url + "/rest/app.info", data={"auth": installed.admin["access_token"]}, timeout=10)
    assert resp.status_code == 200


def test_oauth_app_info_rejects_bad_tokens(http, installed: Installed, server: SandboxServer, sb: Sandbox) -> None:
    """§6.2/§3.3: unknown token -> 401 invalid_token; expired token -> 401 expired_token."""
    url = server.oauth_url + "/rest/app.info"
    unknown = http.get(url, params={"auth": "f" * 70}, timeout=10)
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_token")
    sb.expire_tokens(installed.portal, 1)
    expired = http.get(url, params={"auth": installed.admin["access_token"]}, timeout=10)
    assert (expired.status_code, expired.json()["error"]) == (401, "expired_token")


def test_fired_user_cannot_authorize(http, installed: Installed, card: AppCard, sb: Sandbox) -> None:
    """§2.2: on failure Bitrix24 shows its own error page and never redirects back."""
    sb.fire_user(installed.portal, 2)
    resp = _authorize(http, installed.portal, card, user=2)
    assert resp.status_code == 403
    assert "Location" not in resp.headers


def test_unknown_grant_type(http, card: AppCard, server: SandboxServer) -> None:
    """§2.4: malformed requests are refused with an OAuth error body (HTTP 400)."""
    resp = _token(http, server, card, grant_type="password")
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


def test_unknown_client_id_is_wrong_client_with_http_200(http, server: SandboxServer, card: AppCard) -> None:
    """§2.4: an unknown client_id gets HTTP 200 with `{"error": "wrong_client", ...}`, as the official SDK's live
    test (test_errors_oauth.py) expects; a wrong secret for a known client stays invalid_client (400)."""
    before = server.counters.snapshot()["oauth"]
    resp = http.get(server.oauth_url + "/oauth/token/", params={
        "grant_type": "authorization_code", "client_id": "WRONG_CLIENT_ID_12345",
        "client_secret": card.client_secret, "code": "any_code"}, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["error"] == "wrong_client"
    assert "access_token" not in resp.json()
    after = server.counters.snapshot()["oauth"]
    assert (after["code_ok"], after["code_failed"]) == (before["code_ok"], before["code_failed"] + 1)


@pytest.mark.parametrize("path", ["/rest/app.info", "/rest/app.info/", "/rest/app.info.json"])
def test_oauth_app_info_with_or_without_trailing_slash(http, installed: Installed, server: SandboxServer,
                                                       path: str) -> None:
    """§6.2: b24pysdk calls `/rest/app.info/`; the trailing slash and `.json` name the same method."""
    resp = http.get(server.oauth_url + path, params={"auth": installed.admin["access_token"]}, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["result"]["install"]["member_id"] == installed.portal.member_id


def test_old_access_token_can_outlive_a_refresh(http, installed: Installed, card: AppCard, server: SandboxServer,
                                                sb: Sandbox) -> None:
    """§2.3: with the portal's `refresh_revokes_access` off the access token issued with a used refresh token
    keeps working until it expires (what the official SDK's suite relies on); the refresh token still rotates."""
    sb.configure_portal(installed.portal, refresh_revokes_access=False)
    old = installed.admin
    new = _token(http, server, card, grant_type="refresh_token", refresh_token=old["refresh_token"]).json()
    assert call(http, installed.portal, "profile", old["access_token"]).status_code == 200
    assert call(http, installed.portal, "profile", new["access_token"]).status_code == 200
    reuse = _token(http, server, card, grant_type="refresh_token", refresh_token=old["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    sb.clock.advance(3601)
    assert call(http, installed.portal, "profile", old["access_token"]).json()["error"] == "expired_token"


def test_refresh_revokes_access_is_the_default(installed: Installed, server: SandboxServer) -> None:
    """§2.3: the documented behaviour (the legacy docs: both die) is the default, and the control API reports it."""
    assert installed.portal.settings.refresh_revokes_access is True
    url = f"{server.control_url}/portals/{installed.portal.member_id}/settings"
    assert requests.get(url, timeout=10).json()["refresh_revokes_access"] is True
