"""Lifecycle events: ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL, forged events."""
from __future__ import annotations

import requests

from b24app.storage.installations import PortalState
from tests.integration.helpers import eventually, keys_mentioning, redis_dump, sandbox_secrets


def _bound(b24, portal):
    with b24.sandbox.sandbox.lock:
        return ([(h.event, h.handler) for h in portal.event_handlers],
                [(p.placement, p.handler) for p in portal.placements])


def test_update_stores_the_new_token_and_rebinds(b24) -> None:
    portal = b24.installed_portal()
    old_token = b24.services.store.get(portal.member_id).application_token
    deliveries = b24.sandbox.update(portal, version=2, rotate_application_token=True)
    assert [(d.event, d.status) for d in deliveries] == [("ONAPPUPDATE", 200)]
    record = b24.services.store.get(portal.member_id)
    assert record.application_token == b24.sandbox.application_token(portal) != old_token
    assert record.app_version == 2
    assert record.state == PortalState.ACTIVE
    eventually(lambda: len(_bound(b24, portal)[0]) == 3 and len(_bound(b24, portal)[1]) == 1)
    b24.services.portal_services.binder.bind(portal.member_id)
    assert len(_bound(b24, portal)[0]) == 3, "rebinding never duplicates"


def test_uninstall_with_the_right_token_drops_the_tokens(b24, redis_client) -> None:
    portal = b24.installed_portal()
    cache_key = f"b24:cache:{{{portal.member_id}}}:badges"
    redis_client.set(cache_key, "[]")
    secrets = sandbox_secrets(b24.sandbox, portal.member_id)
    deliveries = b24.sandbox.uninstall(portal, clean=True)
    assert [(d.event, d.status) for d in deliveries] == [("ONAPPUNINSTALL", 200)]
    record = b24.services.store.get(portal.member_id)
    assert record.state == PortalState.UNINSTALLED
    assert not record.has_tokens
    assert record.application_token is None
    assert not redis_client.exists(cache_key), "data[CLEAN]=1 removes the portal's data"
    dump = redis_dump(redis_client)
    for secret in secrets:
        assert secret.encode() not in dump


def test_uninstall_without_clean_keeps_the_data(b24, redis_client) -> None:
    portal = b24.installed_portal()
    cache_key = f"b24:deal:{{{portal.member_id}}}:7"
    redis_client.set(cache_key, "1")
    b24.sandbox.uninstall(portal, clean=False)
    assert b24.services.store.get(portal.member_id).state == PortalState.UNINSTALLED
    assert redis_client.exists(cache_key)


def _uninstall_form(portal, token: str | None) -> dict[str, str]:
    form = {"event": "ONAPPUNINSTALL", "data[LANGUAGE_ID]": "en", "data[CLEAN]": "1", "ts": "1",
            "auth[domain]": portal.domain, "auth[member_id]": portal.member_id,
            "auth[client_endpoint]": f"http://{portal.domain}/rest/"}
    if token is not None:
        form["auth[application_token]"] = token
    return form


def test_uninstall_with_a_wrong_or_missing_token_changes_nothing(b24, redis_client) -> None:
    portal = b24.installed_portal()
    before = b24.services.store.get(portal.member_id)
    dump_before = redis_dump(redis_client)
    for token in ("wrong" * 6, "", None):
        response = requests.post(f"{b24.url}/events", data=_uninstall_form(portal, token), timeout=5)
        assert response.status_code == 403
        assert response.json()["error"] == "EVENT_REJECTED"
    after = b24.services.store.get(portal.member_id)
    assert after == before
    assert redis_dump(redis_client) == dump_before


def test_forged_install_event_for_an_unknown_portal_stores_nothing(b24, redis_client) -> None:
    form = {"event": "ONAPPINSTALL", "auth[member_id]": "f" * 32, "auth[domain]": "evil.example.com",
            "auth[access_token]": "a" * 64, "auth[refresh_token]": "r" * 64, "auth[application_token]": "t" * 32,
            "auth[client_endpoint]": "https://evil.example.com/rest/"}
    response = requests.post(f"{b24.url}/events", data=form, timeout=5)
    assert response.status_code == 401
    assert keys_mentioning(redis_client, "f" * 32) == []


def test_forged_update_cannot_replace_the_token(b24) -> None:
    portal = b24.installed_portal()
    before = b24.services.store.get(portal.member_id)
    form = {"event": "ONAPPUPDATE", "auth[member_id]": portal.member_id, "auth[domain]": portal.domain,
            "auth[access_token]": "a" * 64, "auth[application_token]": "attacker-token-00000000"}
    assert requests.post(f"{b24.url}/events", data=form, timeout=5).status_code == 401
    assert b24.services.store.get(portal.member_id) == before


def test_other_events_need_the_application_token(b24) -> None:
    portal = b24.installed_portal()
    form = {"event": "ONCRMDEALUPDATE", "auth[member_id]": portal.member_id, "auth[application_token]": "nope"}
    assert requests.post(f"{b24.url}/events", data=form, timeout=5).status_code == 403
    form["auth[application_token]"] = b24.sandbox.application_token(portal)
    assert requests.post(f"{b24.url}/events", data=form, timeout=5).status_code == 200


def test_an_update_the_portal_cannot_vouch_for_right_now_is_503_and_changes_nothing(b24) -> None:
    """A busy or failing portal decides nothing: the event is not called forged (401), and nothing moves."""
    portal = b24.installed_portal()
    before = b24.services.store.get(portal.member_id)
    b24.sandbox.faults.add(portal, "user.admin", "error", error="QUERY_LIMIT_EXCEEDED", status=503,
                           description="Too many requests")
    (delivery,) = b24.sandbox.update(portal, version=2, rotate_application_token=True)
    assert delivery.status == 503
    after = b24.services.store.get(portal.member_id)
    assert (after.application_token, after.app_version) == (before.application_token, before.app_version)
