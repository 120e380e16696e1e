"""The app page and UI sessions."""
from __future__ import annotations

import re
import time

import pytest
import requests

from b24app.bitrix.errors import OwnerCannotAct
from b24app.errors import PortalUnavailable
from b24app.portals.sessions import InvalidSession, SessionSigner
from b24app.storage.installations import PortalState


def _session_from(html: str) -> str:
    match = re.search(r'<meta name="b24-session" content="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_app_page_for_an_admin(b24) -> None:
    portal = b24.installed_portal()
    result = b24.sandbox.open_app(portal, user_id=1)
    assert result.status == 200
    assert f"frame-ancestors http://{portal.domain}" in result.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in result.headers
    session = b24.services.portal_services.sessions.verify(_session_from(result.body))
    assert (session.member_id, session.user_id, session.is_admin) == (portal.member_id, 1, True)
    assert session.expires_at - time.time() <= 900


def test_app_page_for_a_regular_user_and_a_placement(b24) -> None:
    portal = b24.installed_portal()
    result = b24.sandbox.open_app(portal, user_id=2, placement="CRM_DEAL_DETAIL_TAB", options={"ID": "7"})
    assert result.status == 200
    assert 'data-deal-id="7"' in result.body
    assert 'data-placement="CRM_DEAL_DETAIL_TAB"' in result.body
    session = b24.services.portal_services.sessions.verify(_session_from(result.body))
    assert (session.user_id, session.is_admin) == (2, False)


def test_session_endpoint_trades_frame_auth_for_a_token(b24) -> None:
    portal = b24.installed_portal()
    auth = b24.sandbox.frame_auth(portal, user_id=2)
    response = requests.post(f"{b24.url}/api/v1/session", timeout=5,
                             json={"AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id, "DOMAIN": portal.domain})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_in", "member_id", "user_id", "is_admin"}
    assert body["member_id"] == portal.member_id
    assert (body["user_id"], body["is_admin"]) == (2, False)
    assert 0 < body["expires_in"] <= 900
    form = requests.post(f"{b24.url}/api/v1/session", timeout=5,
                         data={"AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id, "DOMAIN": portal.domain})
    assert form.status_code == 200


@pytest.mark.parametrize("field", ["AUTH_ID", "member_id", "DOMAIN"])
def test_session_endpoint_refuses_mismatches(b24, field: str) -> None:
    portal, other = b24.installed_portal(), b24.installed_portal()
    auth = b24.sandbox.frame_auth(portal)
    payload = {"AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id, "DOMAIN": portal.domain}
    payload[field] = {"AUTH_ID": "0" * 64, "member_id": other.member_id, "DOMAIN": other.domain}[field]
    response = requests.post(f"{b24.url}/api/v1/session", json=payload, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"] == "UNVERIFIED"


def test_session_tokens_are_tamper_proof_bound_and_expire() -> None:
    signer = SessionSigner("k" * 40, audience="app.1", ttl=900)
    token = signer.issue("member-a", 5, True, "a.example.com")
    assert signer.verify(token).member_id == "member-a"
    with pytest.raises(InvalidSession):
        signer.verify(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    with pytest.raises(InvalidSession):
        SessionSigner("k" * 40, audience="app.2").verify(token)
    with pytest.raises(InvalidSession):
        SessionSigner("x" * 40, audience="app.1").verify(token)
    expired = SessionSigner("k" * 40, audience="app.1", ttl=1)
    old = expired.issue("member-a", 5, True, "a.example.com")
    assert expired.verify(old).member_id == "member-a", "valid at first (and its signature check memoised)"
    time.sleep(2.1)
    with pytest.raises(InvalidSession, match="expired"):
        expired.verify(old)
    assert SessionSigner("k" * 40, audience="app.1", ttl=3600).ttl == 900


def test_get_app_is_a_clear_page(b24) -> None:
    response = requests.get(f"{b24.url}/app", timeout=5)
    assert response.status_code == 400
    assert "open this app from your bitrix24 portal" in response.text.lower()


def test_portal_unknown_to_the_app_gets_a_clear_page(b24, redis_client) -> None:
    portal = b24.installed_portal()
    redis_client.flushdb()  # the app lost its data; the portal still has it installed
    result = b24.sandbox.open_app(portal, user_id=2)
    assert result.status == 409
    assert "administrator must open it" in result.body
    admin = b24.sandbox.open_app(portal, user_id=1)
    assert admin.status == 200, "an admin's visit sets the portal up again"
    assert b24.services.store.get(portal.member_id).state == PortalState.ACTIVE


def test_uninstalled_portal_gets_a_page_not_a_500(b24) -> None:
    portal = b24.installed_portal()
    auth = b24.sandbox.frame_auth(portal)
    b24.sandbox.uninstall(portal)
    response = requests.post(f"{b24.url}/app", params={"DOMAIN": portal.domain, "PROTOCOL": "0"},
                             data={"AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id}, timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(PortalUnavailable):
        b24.services.portal_services.clients.portal(portal.member_id).call("profile")


def test_owner_hand_over_after_the_owner_is_fired(b24) -> None:
    portal = b24.installed_portal()
    client = b24.services.portal_services.clients.portal(portal.member_id)
    assert client.call("profile").result["ID"] in (1, "1")
    b24.sandbox.fire_user(portal, 1)
    with pytest.raises(OwnerCannotAct):
        client.call("profile")
    record = b24.services.store.get(portal.member_id)
    assert record.state == PortalState.NEEDS_REAUTH
    assert "authorization_error" in record.last_error
    page = b24.sandbox.open_app(portal, user_id=2)
    assert b24.services.store.get(portal.member_id).state == PortalState.NEEDS_REAUTH, "a non-admin cannot take over"
    assert page.status == 409
    assert b24.sandbox.open_app(portal, user_id=3).status == 200
    record = b24.services.store.get(portal.member_id)
    assert (record.state, record.owner_user_id) == (PortalState.ACTIVE, 3)
    assert b24.services.portal_services.clients.portal(portal.member_id).call("profile").result["ID"] in (3, "3")
