"""Fault injection, token expiry/revocation on demand, counters (sandbox features for the app's tests).

The behaviours emulated are the ones docs/bitrix24-protocol.md §3.3 (INTERNAL_SERVER_ERROR 500, transient 5xx),
§2.3 (single-use refresh tokens) and §3.1 (60 s timeout) tell a client to survive.
"""
from __future__ import annotations

import pytest
import requests

from b24app.sandbox import AppCard, Sandbox, SandboxError, SandboxServer

from .conftest import Installed, call

BADGE = {"code": "fault_b", "title": "t", "value": "v", "type": "success"}


def test_fault_500_is_not_applied(http, installed: Installed, sb: Sandbox) -> None:
    """§3.3: mode `500` -> 500 INTERNAL_SERVER_ERROR and the call did nothing."""
    sb.faults.add(installed.portal.member_id, "crm.activity.badge.add", "500")
    resp = call(http, installed.portal, "crm.activity.badge.add", installed.admin["access_token"], **BADGE)
    assert resp.status_code == 500
    assert resp.json()["error"] == "INTERNAL_SERVER_ERROR"
    assert "fault_b" not in installed.portal.badges
    assert call(http, installed.portal, "crm.activity.badge.add", installed.admin["access_token"],
                **BADGE).status_code == 200


def test_apply_then_500(http, installed: Installed, sb: Sandbox) -> None:
    """§3.3/§9 (writes are not blindly retried): `apply_then_500` applies the change, then answers 500."""
    sb.faults.add(installed.portal.member_id, "crm.activity.badge.add", "apply_then_500")
    resp = call(http, installed.portal, "crm.activity.badge.add", installed.admin["access_token"], **BADGE)
    assert resp.status_code == 500
    assert "fault_b" in installed.portal.badges


def test_error_mode_and_count(http, installed: Installed, sb: Sandbox) -> None:
    """§3.3: mode `error` answers the given code/status/description for the next N calls."""
    sb.faults.add(installed.portal.member_id, "profile", "error", count=2, error="PORTAL_DELETED", status=403,
                  description="Portal was deleted")
    token = installed.admin["access_token"]
    for _ in range(2):
        resp = call(http, installed.portal, "profile", token)
        assert resp.status_code == 403
        assert resp.json() == {"error": "PORTAL_DELETED", "error_description": "Portal was deleted"}
    assert call(http, installed.portal, "profile", token).status_code == 200


def test_timeout_holds_then_drops_the_connection(http, installed: Installed, sb: Sandbox) -> None:
    """§3.1 (requests can time out): mode `timeout` holds the connection, answers nothing, applies nothing."""
    sb.faults.add(installed.portal.member_id, "crm.activity.badge.add", "timeout", seconds=1.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(installed.endpoint + "crm.activity.badge.add",
                  json={**BADGE, "auth": installed.admin["access_token"]}, timeout=0.5)
    sb.faults.add(installed.portal.member_id, "profile", "timeout", seconds=0.3)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(installed.endpoint + "profile", json={"auth": installed.admin["access_token"]}, timeout=5)
    assert "fault_b" not in installed.portal.badges


def test_fault_inside_batch_is_that_command_error(http, installed: Installed, sb: Sandbox) -> None:
    """§3.4: a faulted sub-call shows up in result_error; the others run."""
    sb.faults.add(installed.portal.member_id, "user.admin", "500")
    inner = call(http, installed.portal, "batch", installed.admin["access_token"],
                 cmd={"a": "user.admin", "b": "profile"}).json()["result"]
    assert inner["result_error"]["a"]["error"] == "INTERNAL_SERVER_ERROR"
    assert inner["result"]["b"]["ID"] == "1"


def test_oauth_refresh_apply_then_500_kills_the_chain(http, installed: Installed, sb: Sandbox, card: AppCard,
                                                      server: SandboxServer) -> None:
    """§2.3: a refresh whose answer is lost still consumed the refresh token (reuse -> invalid_grant)."""
    sb.faults.add(installed.portal.member_id, "oauth.token.refresh_token", "apply_then_500")
    data = {"grant_type": "refresh_token", "client_id": card.client_id, "client_secret": card.client_secret,
            "refresh_token": installed.admin["refresh_token"]}
    assert http.post(server.oauth_url + "/oauth/token/", data=data, timeout=10).status_code == 500
    again = http.post(server.oauth_url + "/oauth/token/", data=data, timeout=10)
    assert again.json()["error"] == "invalid_grant"


def test_oauth_token_500_is_not_applied(http, installed: Installed, sb: Sandbox, card: AppCard,
                                        server: SandboxServer) -> None:
    """§2.4 (5xx from the OAuth server is transient): mode `500` leaves the refresh token usable."""
    sb.faults.add(None, "oauth.token", "500")
    data = {"grant_type": "refresh_token", "client_id": card.client_id, "client_secret": card.client_secret,
            "refresh_token": installed.admin["refresh_token"]}
    assert http.post(server.oauth_url + "/oauth/token/", data=data, timeout=10).status_code == 500
    assert http.post(server.oauth_url + "/oauth/token/", data=data, timeout=10).status_code == 200


def test_bad_fault_modes_are_refused(sb: Sandbox) -> None:
    """Fault API hygiene: unknown modes and `error` without a code are refused."""
    with pytest.raises(SandboxError):
        sb.faults.add(None, "profile", "explode")
    with pytest.raises(SandboxError):
        sb.faults.add(None, "profile", "error")


def test_expire_revoke_on_demand(http, installed: Installed, sb: Sandbox, card: AppCard,
                                 server: SandboxServer) -> None:
    """§3.3/§2.3: expire_tokens -> 401 expired_token; revoke_tokens -> 401 invalid_token;
    revoke_refresh -> invalid_grant."""
    assert sb.expire_tokens(installed.portal, user_id=2) >= 1
    assert call(http, installed.portal, "profile", installed.user["access_token"]).json()["error"] == "expired_token"
    assert call(http, installed.portal, "profile", installed.admin["access_token"]).status_code == 200
    sb.revoke_tokens(installed.portal, user_id=1)
    assert call(http, installed.portal, "profile", installed.admin["access_token"]).json()["error"] == "invalid_token"
    sb.revoke_refresh(installed.portal)
    resp = http.post(server.oauth_url + "/oauth/token/", data={
        "grant_type": "refresh_token", "client_id": card.client_id, "client_secret": card.client_secret,
        "refresh_token": installed.user["refresh_token"]}, timeout=10)
    assert resp.json()["error"] == "invalid_grant"


def test_counters(http, installed: Installed, sb: Sandbox, card: AppCard, server: SandboxServer) -> None:
    """§4.1/§4.2/§2.3: per-portal requests, statuses, 503s; OAuth grants, refreshes ok/failed, app.info calls."""
    member = installed.portal.member_id
    token = installed.admin["access_token"]
    before = sb.counters.snapshot()["oauth"]
    call(http, installed.portal, "profile", token)
    call(http, installed.portal, "crm.activity.badge.get", token, code="none")
    sb.set_rate(installed.portal, (0.001, 1))
    call(http, installed.portal, "profile", token)
    call(http, installed.portal, "profile", token)
    data = {"grant_type": "refresh_token", "client_id": card.client_id, "client_secret": card.client_secret,
            "refresh_token": installed.user["refresh_token"]}
    http.post(server.oauth_url + "/oauth/token/", data=data, timeout=10)
    http.post(server.oauth_url + "/oauth/token/", data=data, timeout=10)
    http.get(server.oauth_url + "/rest/app.info", params={"auth": token}, timeout=10)
    counters = sb.counters.portal(member)
    assert counters["requests"]["profile"] == 3
    assert counters["method_statuses"]["crm.activity.badge.get"] == {"400": 1}
    assert counters["statuses"]["503"] == 1
    assert counters["rate_limited"] == 1
    after = sb.counters.snapshot()["oauth"]
    assert after["refresh_ok"] - before["refresh_ok"] == 1
    assert after["refresh_failed"] - before["refresh_failed"] == 1
    assert after["app_info"] - before["app_info"] == 1
    assert after["token_requests"]["refresh_token"] - before["token_requests"].get("refresh_token", 0) == 2


def test_counters_reset(sb: Sandbox) -> None:
    """Counters can be reset between test phases."""
    sb.counters.reset()
    snap = sb.counters.snapshot()
    assert snap["portals"] == {}
    assert snap["oauth"]["refresh_ok"] == 0
    assert snap["events"]["delivered_total"] == 0
