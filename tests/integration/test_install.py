"""Install: verified through the OAuth server, stored, bound idempotently."""
from __future__ import annotations

import requests

from b24app.storage.installations import PortalState
from tests.integration.helpers import keys_mentioning, oauth_counters, portal_requests, redis_dump, sandbox_secrets


def _bindings(b24, portal):
    state = b24.sandbox.state(portal)
    return state


def _bound(b24, portal) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    with b24.sandbox.sandbox.lock:
        events = [(h.event, h.handler) for h in portal.event_handlers]
        placements = [(p.placement, p.handler) for p in portal.placements]
    return events, placements


def test_install_verifies_stores_and_binds(b24, redis_client) -> None:
    portal = b24.new_portal()
    result = b24.sandbox.install(portal)
    assert result.status == 200
    assert "install.js" in result.body
    assert "b24jssdk.min.js" in result.body
    csp = result.headers.get("Content-Security-Policy", "")
    assert f"frame-ancestors http://{portal.domain}" in csp
    assert "script-src 'self'" in csp
    assert "X-Frame-Options" not in result.headers

    record = b24.services.store.get(portal.member_id)
    assert record.state == PortalState.ACTIVE
    assert record.domain == portal.domain
    assert record.client_endpoint == f"http://{portal.domain}/rest/"
    assert record.owner_user_id == 1
    assert record.plan == "F"
    assert record.has_tokens
    assert b24.services.store.find_by_domain(portal.domain).member_id == portal.member_id

    events, placements = _bound(b24, portal)
    assert sorted(events) == sorted((e, f"{b24.url}/events") for e in ("ONAPPINSTALL", "ONAPPUPDATE", "ONAPPUNINSTALL"))
    assert placements == [("CRM_DEAL_DETAIL_TAB", f"{b24.url}/app")]

    deliveries = b24.sandbox.install_finish(portal)
    assert [(d.event, d.status) for d in deliveries] == [("ONAPPINSTALL", 200)]
    assert b24.services.store.get(portal.member_id).application_token == b24.sandbox.application_token(portal)

    dump = redis_dump(redis_client)
    for secret in sandbox_secrets(b24.sandbox, portal.member_id):
        assert secret.encode() not in dump


def test_binding_is_idempotent(b24) -> None:
    portal = b24.installed_portal()
    report = b24.services.portal_services.binder.bind(portal.member_id)
    assert report.bound == []
    assert len(report.already) == 5, report
    assert report.already[-1] == "robot activity_badge", "an existing robot is updated, not added again"
    events, placements = _bound(b24, portal)
    assert len(events) == 3
    assert len(placements) == 1


def test_rest_only_install_form(b24) -> None:
    portal = b24.new_portal()
    result = b24.sandbox.install(portal, rest_only=True)
    assert result.status == 200, result.body
    record = b24.services.store.get(portal.member_id)
    assert record.state == PortalState.ACTIVE
    assert record.application_token == b24.sandbox.application_token(portal)
    from tests.integration.helpers import eventually

    eventually(lambda: len(_bound(b24, portal)[0]) == 3 and len(_bound(b24, portal)[1]) == 1)


def _post_install(b24, portal, **overrides) -> requests.Response:
    auth = b24.sandbox.frame_auth(portal) if portal is not None else {}
    form = {"AUTH_ID": auth.get("AUTH_ID", "x"), "AUTH_EXPIRES": "3600", "REFRESH_ID": auth.get("REFRESH_ID", "y"),
            "SERVER_ENDPOINT": b24.sandbox.server_endpoint, "member_id": portal.member_id if portal else "m",
            "status": "F", "PLACEMENT": "DEFAULT", "PLACEMENT_OPTIONS": "{}"}
    query = {"DOMAIN": portal.domain if portal else "x", "PROTOCOL": "0", "LANG": "en", "APP_SID": "sid"}
    for key, value in overrides.items():
        (query if key in query else form)[key] = value
    return requests.post(f"{b24.url}/install", params=query, data=form, timeout=10)


def _assert_rejected(b24, redis_client, response, member_id: str, status: int = 401) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in response.text
    assert keys_mentioning(redis_client, member_id) == []


def test_forged_token_is_refused_without_calling_the_claimed_portal(b24, redis_client) -> None:
    victim = b24.new_portal()
    before = oauth_counters(b24.sandbox)["app_info"]
    response = _post_install(b24, None, DOMAIN=victim.domain, member_id=victim.member_id, AUTH_ID="f" * 64)
    _assert_rejected(b24, redis_client, response, victim.member_id)
    assert portal_requests(b24.sandbox, victim.member_id) == {}
    assert oauth_counters(b24.sandbox)["app_info"] == before + 1


def test_token_of_another_portal_is_refused(b24, redis_client) -> None:
    real, claimed = b24.new_portal(), b24.new_portal()
    auth = b24.sandbox.frame_auth(b24.installed_portal())
    response = _post_install(b24, None, DOMAIN=claimed.domain, member_id=claimed.member_id,
                             AUTH_ID=auth["AUTH_ID"], REFRESH_ID=auth["REFRESH_ID"])
    _assert_rejected(b24, redis_client, response, claimed.member_id)
    assert portal_requests(b24.sandbox, claimed.member_id) == {}
    assert real.member_id


def test_mismatched_domain_is_refused(b24, redis_client) -> None:
    portal, other = b24.new_portal(), b24.new_portal()
    b24.sandbox.install(portal)  # make the app known on `portal` (installed=false until installFinish)
    redis_client.flushdb()
    response = _post_install(b24, portal, DOMAIN=other.domain)
    _assert_rejected(b24, redis_client, response, portal.member_id)
    assert portal_requests(b24.sandbox, other.member_id) == {}


def test_token_of_another_application_is_refused(b24, redis_client) -> None:
    portal = b24.new_portal()
    stranger = b24.sandbox.register_app(app_url="http://127.0.0.1:9")
    b24.sandbox.install(portal, client_id=stranger.client_id)
    try:
        auth = b24.sandbox.frame_auth(portal, client_id=stranger.client_id)
        response = _post_install(b24, None, DOMAIN=portal.domain, member_id=portal.member_id,
                                 AUTH_ID=auth["AUTH_ID"], REFRESH_ID=auth["REFRESH_ID"])
        _assert_rejected(b24, redis_client, response, portal.member_id)
    finally:
        with b24.sandbox.sandbox.lock:
            b24.sandbox.sandbox.apps.pop(stranger.client_id, None)


def test_non_admin_cannot_install(b24, redis_client) -> None:
    portal = b24.new_portal()
    b24.sandbox.install(portal)
    redis_client.flushdb()
    auth = b24.sandbox.frame_auth(portal, user_id=2)
    response = _post_install(b24, portal, AUTH_ID=auth["AUTH_ID"], REFRESH_ID=auth["REFRESH_ID"])
    assert response.status_code == 403
    assert b24.services.store.get(portal.member_id) is None


def test_get_install_is_a_clear_page(b24) -> None:
    response = requests.get(f"{b24.url}/install", timeout=5)
    assert response.status_code == 400
    assert "Bitrix24" in response.text
