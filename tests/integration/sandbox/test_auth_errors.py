"""Auth-stage and scope errors for webhooks and app tokens (docs/bitrix24-protocol.md §3.3, §3.4)."""
from __future__ import annotations

from b24app.sandbox import Sandbox

from .conftest import Installed, call

WEBHOOK_SCOPE = "The request requires higher privileges than provided by the webhook token"
ACCESS_SCOPE = "The request requires higher privileges than provided by the access token"


def test_unknown_webhook_code_is_invalid_credentials(http, installed: Installed, sb: Sandbox) -> None:
    """§3.3: no active webhook with that user id and code -> 401 INVALID_CREDENTIALS "Invalid request credentials"
    (the system-errors page and the official SDK's live test; an older snapshot said 403)."""
    hook = sb.create_webhook(installed.portal, 1)
    unknown = http.post(installed.endpoint + f"1/{hook['code']}x/profile", timeout=10)
    wrong_user = http.post(installed.endpoint + f"2/{hook['code']}/profile", timeout=10)
    for resp in (unknown, wrong_user):
        assert resp.status_code == 401
        assert resp.json() == {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}


def test_no_auth_at_all_is_still_no_auth_found(http, installed: Installed) -> None:
    """§3.3: NO_AUTH_FOUND stays the answer when neither a token nor a webhook code is sent."""
    resp = http.post(installed.endpoint + "profile", json={}, timeout=10)
    assert (resp.status_code, resp.json()["error"]) == (401, "NO_AUTH_FOUND")


def test_webhook_outside_its_scope_is_401_with_webhook_wording(http, installed: Installed, sb: Sandbox) -> None:
    """§3.3: a webhook calling a method outside its permissions -> 401 insufficient_scope, "...webhook token"."""
    hook = sb.create_webhook(installed.portal, 1, scope="user")
    resp = http.post(hook["url"] + "crm.activity.badge.list", json={}, timeout=10)
    assert resp.status_code == 401
    assert resp.json() == {"error": "insufficient_scope", "error_description": WEBHOOK_SCOPE}


def test_app_token_outside_its_scope_keeps_403_access_token(http, crm_only) -> None:
    """§3.3: for an app the answer stays 403 with "...access token"."""
    portal, token = crm_only
    resp = call(http, portal, "user.current", token)
    assert resp.status_code == 403
    assert resp.json() == {"error": "insufficient_scope", "error_description": ACCESS_SCOPE}


def test_insufficient_scope_in_batch_has_an_empty_description(http, installed: Installed, sb: Sandbox) -> None:
    """§3.4: inside batch the per-command error is `{"error": "insufficient_scope", "error_description": ""}`."""
    hook = sb.create_webhook(installed.portal, 1, scope="crm")
    body = http.post(hook["url"] + "batch", json={"cmd": {"get_user": "user.current", "badges":
                                                          "crm.activity.badge.list"}}, timeout=10).json()
    assert body["result"]["result_error"] == {"get_user": {"error": "insufficient_scope", "error_description": ""}}
    assert "badges" in body["result"]["result"]
