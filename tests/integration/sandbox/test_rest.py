"""Portal REST transport facts: URL forms, auth placement, envelopes, statuses (docs/bitrix24-protocol.md §3)."""
from __future__ import annotations

import pytest
import requests

from b24app.sandbox import AppCard, Portal, Sandbox

from .conftest import Installed, call

TIME_FIELDS = {"start", "finish", "duration", "processing", "date_start", "date_finish", "operating",
               "operating_reset_at"}


def test_success_envelope(http, installed: Installed) -> None:
    """§3.2: `{result, time{start, finish, duration, processing, date_start, date_finish, operating,
    operating_reset_at}}`."""
    resp = call(http, installed.portal, "profile", installed.admin["access_token"])
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"result", "time"}
    assert set(body["time"]) == TIME_FIELDS
    assert body["time"]["date_start"].endswith("+03:00")  # the portal's default time zone (§3.2)


def test_json_suffix_is_optional(http, installed: Installed) -> None:
    """§3.1: `/rest/<method>` and `/rest/<method>.json` are the same method."""
    token = installed.admin["access_token"]
    resp = http.post(installed.endpoint + "user.admin.json", json={"auth": token}, timeout=10)
    assert resp.json()["result"] is True
    assert call(http, installed.portal, "user.admin", token).json()["result"] is True


@pytest.mark.parametrize("where", ["json", "form", "query", "access_token", "bearer"])
def test_auth_can_be_sent_every_documented_way(http, installed: Installed, where: str) -> None:
    """§3.1: `auth` in JSON body, form body or query; `access_token=`; `Authorization: Bearer`."""
    token = installed.admin["access_token"]
    url = installed.endpoint + "profile"
    if where == "json":
        resp = http.post(url, json={"auth": token}, timeout=10)
    elif where == "form":
        resp = http.post(url, data={"auth": token}, timeout=10)
    elif where == "query":
        resp = http.get(url, params={"auth": token}, timeout=10)
    elif where == "access_token":
        resp = http.post(url, data={"access_token": token}, timeout=10)
    else:
        resp = http.post(url, json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["ID"] == "1"


def test_response_headers(http, installed: Installed, card: AppCard) -> None:
    """§3.1: JSON content type, `Access-Control-Allow-Origin: *`, `X-Bitrix-Rest-Application`."""
    resp = call(http, installed.portal, "profile", installed.admin["access_token"])
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["X-Bitrix-Rest-Application"] == card.client_id


def test_no_auth_is_401_no_auth_found(http, installed: Installed) -> None:
    """§3.3: no auth -> 401 NO_AUTH_FOUND "Wrong authorization data"."""
    resp = call(http, installed.portal, "profile")
    assert resp.status_code == 401
    assert resp.json() == {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}


def test_unknown_token_is_401_invalid_token(http, installed: Installed) -> None:
    """§3.3: an unknown token -> 401 invalid_token."""
    resp = call(http, installed.portal, "profile", "0" * 70)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"


def test_token_of_another_portal_is_invalid(http, installed: Installed, sb: Sandbox, card: AppCard) -> None:
    """§3.3: a token is valid only on the portal it was issued for."""
    other = sb.create_portal()
    resp = call(http, other, "profile", installed.admin["access_token"])
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"


def test_unknown_method_is_404(http, installed: Installed) -> None:
    """§3.3: ERROR_METHOD_NOT_FOUND "Method not found!" with HTTP 404."""
    resp = call(http, installed.portal, "crm.nothing.here", installed.admin["access_token"])
    assert resp.status_code == 404
    assert resp.json() == {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}


def test_fired_user_gets_authorization_error(http, installed: Installed, sb: Sandbox) -> None:
    """§3.3: a deactivated (fired) user's token -> 401 authorization_error."""
    sb.fire_user(installed.portal, 2)
    resp = call(http, installed.portal, "profile", installed.user["access_token"])
    assert resp.status_code == 401
    assert resp.json()["error"] == "authorization_error"
    assert call(http, installed.portal, "profile", installed.admin["access_token"]).status_code == 200


def test_method_outside_the_app_scope_is_insufficient_scope(http, crm_only) -> None:
    """§3.3: a method whose scope is not on the app card -> insufficient_scope, 403 for an app token (the older
    docs' status, kept; webhooks get 401, see test_auth_errors.py)."""
    portal, token = crm_only
    resp = call(http, portal, "placement.get", token)
    assert resp.status_code == 403
    assert resp.json()["error"] == "insufficient_scope"
    assert call(http, portal, "crm.activity.badge.list", token).status_code == 200


def test_cors_preflight(http, installed: Installed) -> None:
    """§3.1: REST answers CORS (the b24jssdk calls the portal from the app's origin)."""
    resp = http.options(installed.endpoint + "profile", headers={"Origin": "http://127.0.0.1:1",
                                                                 "Access-Control-Request-Method": "POST"}, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


def test_profile_and_user_admin(http, installed: Installed) -> None:
    """§6.3: profile {ID, ADMIN, NAME, LAST_NAME, ...}; user.admin true|false; ADMIN equals user.admin."""
    admin = call(http, installed.portal, "profile", installed.admin["access_token"]).json()["result"]
    bob = call(http, installed.portal, "profile", installed.user["access_token"]).json()["result"]
    assert (admin["ID"], admin["ADMIN"], admin["NAME"], admin["LAST_NAME"]) == ("1", True, "Alice", "Admin")
    assert (bob["ID"], bob["ADMIN"]) == ("2", False)
    assert call(http, installed.portal, "user.admin", installed.user["access_token"]).json()["result"] is False


def test_user_current(http, installed: Installed) -> None:
    """§6.3: user.current (scope user_brief) returns the user's record."""
    result = call(http, installed.portal, "user.current", installed.user["access_token"]).json()["result"]
    assert result["ID"] == "2"
    assert result["NAME"] == "Bob"


def test_portal_app_info_shape(http, installed: Installed, card: AppCard) -> None:
    """§6.1: portal app.info {ID, CODE, VERSION, STATUS, INSTALLED, PAYMENT_EXPIRED, DAYS, LANGUAGE_ID, LICENSE...}."""
    result = call(http, installed.portal, "app.info", installed.admin["access_token"]).json()["result"]
    assert set(result) == {"ID", "CODE", "VERSION", "STATUS", "INSTALLED", "PAYMENT_EXPIRED", "DAYS",
                           "LANGUAGE_ID", "LICENSE", "LICENSE_TYPE", "LICENSE_FAMILY"}
    assert result["INSTALLED"] is True
    assert result["VERSION"] == card.version
    assert result["LANGUAGE_ID"] == "en"


def test_server_time(http, installed: Installed) -> None:
    """§3.2 (date format): server.time answers an ISO date in the portal's zone (+03:00 by default)."""
    result = call(http, installed.portal, "server.time", installed.admin["access_token"]).json()["result"]
    assert result.endswith("+03:00")


def test_webhook_calls(http, installed: Installed, sb: Sandbox) -> None:
    """§3.1/§3.3/§5.6/§5.7/§6.1: `/rest/<user_id>/<code>/<method>` works; placement.* -> 403 WRONG_AUTH_TYPE;
    crm.activity.configurable.* -> ERROR_WRONG_CONTEXT; app.info -> the webhook shape {SCOPE, LICENSE};
    an unknown code -> 401 INVALID_CREDENTIALS."""
    hook = sb.create_webhook(installed.portal, 1)
    assert http.post(hook["url"] + "profile", json={}, timeout=10).json()["result"]["ID"] == "1"
    assert http.post(hook["url"] + "crm.activity.badge.list.json", timeout=10).status_code == 200
    placement = http.post(hook["url"] + "placement.bind", json={"PLACEMENT": "CRM_DEAL_DETAIL_TAB",
                                                                "HANDLER": "https://example.com/x"}, timeout=10)
    assert (placement.status_code, placement.json()["error"]) == (403, "WRONG_AUTH_TYPE")
    activity = http.post(hook["url"] + "crm.activity.configurable.add",
                         json={"ownerTypeId": 2, "ownerId": 1, "fields": {}, "layout": {"icon": {"code": "info"}}},
                         timeout=10)
    assert (activity.status_code, activity.json()["error"]) == (400, "ERROR_WRONG_CONTEXT")
    info = http.post(hook["url"] + "app.info", timeout=10)
    assert (info.status_code, set(info.json()["result"])) == (200, {"SCOPE", "LICENSE"})
    wrong = http.post(installed.endpoint + f"1/{'x' * 16}/profile", timeout=10)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "INVALID_CREDENTIALS")


def test_garbage_requests_get_envelopes_not_tracebacks(http, installed: Installed) -> None:
    """§3.3: every failure is an `{error, error_description}` envelope (internal errors 500), never a traceback."""
    token = installed.admin["access_token"]
    cases = [
        http.post(installed.endpoint + "crm.activity.badge.add", data=b"{not json", timeout=10,
                  headers={"Content-Type": "application/json"}),
        http.post(installed.endpoint + "crm.activity.list", json={"auth": token, "filter": "x", "start": "abc",
                                                                  "order": [1, 2]}, timeout=10),
        http.post(installed.endpoint + "batch", json={"auth": token, "cmd": {"a": "?&&=&[]=1"}}, timeout=10),
        http.post(installed.endpoint + "crm.activity.configurable.add",
                  json={"auth": token, "ownerTypeId": [1], "ownerId": {"a": 1}, "fields": 5, "layout": "x"},
                  timeout=10),
        http.get(installed.endpoint, timeout=10),
    ]
    for resp in cases:
        assert "Traceback" not in resp.text
        assert resp.headers["Content-Type"].startswith("application/json")
        body = resp.json()
        assert "error" in body or "result" in body


def test_form_bodies_use_php_bracket_arrays(http, installed: Installed) -> None:
    """§3.1: form-urlencoded bodies are accepted; `title[en]=..` arrives as an array (PHP semantics)."""
    resp = http.post(installed.endpoint + "crm.activity.badge.add",
                     data={"auth": installed.admin["access_token"], "code": "form_badge", "title[en]": "Title",
                           "title[de]": "Titel", "value": "v", "type": "primary"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["badge"]["title"] == {"en": "Title", "de": "Titel"}


def test_rest_works_with_raw_requests_module(installed: Installed, portal: Portal) -> None:
    """§3.1: plain `requests.post(client_endpoint + method, json=...)` is all a client needs."""
    resp = requests.post(installed.endpoint + "server.time", json={"auth": installed.admin["access_token"]},
                         timeout=10)
    assert resp.ok
