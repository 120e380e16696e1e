"""What a portal's own non-admin user, holding genuine tokens of that portal, cannot do (docs/SECURITY.md).

Each test is an attack that once worked: the sandbox hands out a non-admin's genuine token, keeps the
events it delivered (so they can be replayed) and can demote or fire a user.
"""
from __future__ import annotations

import requests
from cryptography.fernet import Fernet

from b24app.storage import keys
from b24app.storage.crypto import TokenCipher
from b24app.storage.installations import PortalState
from b24app.storage.user_tokens import UserTokens
from tests.integration.api import session_for

BADGE = {"code": "paid", "title": "Payment", "value": "Paid", "type": "success"}


def _captured(b24, portal, event: str) -> dict[str, str]:
    (delivery, *_) = b24.sandbox.deliveries(portal, event=event)
    return dict(delivery.form)


def _post_event(b24, form: dict[str, str]) -> requests.Response:
    return requests.post(f"{b24.url}/events", data=form, timeout=10)


def test_a_non_admins_update_event_cannot_replace_the_application_token(b24) -> None:
    portal = b24.installed_portal()
    genuine = b24.services.store.get(portal.member_id)
    bob = b24.sandbox.frame_auth(portal, user_id=2)["AUTH_ID"]
    forged = {**_captured(b24, portal, "ONAPPINSTALL"), "event": "ONAPPUPDATE", "data[VERSION]": "2",
              "auth[access_token]": bob, "auth[application_token]": "attacker"}
    refused = _post_event(b24, forged)
    assert (refused.status_code, refused.json()["error"]) == (403, "EVENT_REJECTED")
    after = b24.services.store.get(portal.member_id)
    assert (after.application_token, after.app_version) == (genuine.application_token, genuine.app_version)

    uninstall = {"event": "ONAPPUNINSTALL", "data[CLEAN]": "1", "auth[member_id]": portal.member_id,
                 "auth[domain]": portal.domain, "auth[application_token]": "attacker"}
    assert _post_event(b24, uninstall).status_code == 403
    assert b24.services.store.get(portal.member_id).state == PortalState.ACTIVE

    (delivery,) = b24.sandbox.uninstall(portal, clean=True)
    assert delivery.status == 200, "the portal's genuine uninstall still works"
    assert b24.services.store.get(portal.member_id).state == PortalState.UNINSTALLED


def test_a_replayed_older_update_changes_nothing(b24) -> None:
    portal = b24.installed_portal()
    b24.sandbox.update(portal, version=2, rotate_application_token=True)
    version_two = _captured(b24, portal, "ONAPPUPDATE")
    b24.services.portal_services.binder.wait()  # an update wipes the bindings; the app binds again
    b24.sandbox.update(portal, version=3, rotate_application_token=True)
    current = b24.services.store.get(portal.member_id)
    assert current.app_version == 3

    replay = _post_event(b24, version_two)
    assert replay.status_code == 403
    assert "older" in replay.json()["error_description"]
    after = b24.services.store.get(portal.member_id)
    assert (after.app_version, after.application_token) == (3, current.application_token)
    b24.services.portal_services.binder.wait()
    (delivery,) = b24.sandbox.uninstall(portal, clean=False)
    assert delivery.status == 200


def test_a_non_admins_install_event_cannot_take_over_a_dead_chain(b24) -> None:
    portal = b24.installed_portal()
    b24.sandbox.revoke_refresh(portal)
    b24.sandbox.expire_tokens(portal)
    b24.services.store.needs_reauth(portal.member_id, "invalid_grant: test")
    genuine = b24.services.store.get(portal.member_id)
    bob = b24.sandbox.issue_tokens(portal, user_id=2)
    forged = {**_captured(b24, portal, "ONAPPINSTALL"), "auth[access_token]": bob["access_token"],
              "auth[refresh_token]": bob["refresh_token"], "auth[user_id]": "2", "auth[application_token]": "attacker"}
    assert _post_event(b24, forged).status_code == 403
    record = b24.services.store.get(portal.member_id)
    assert (record.state, record.owner_user_id, record.application_token) == (
        PortalState.NEEDS_REAUTH, 1, genuine.application_token)


def test_an_admins_update_still_rotates_the_token_and_binds(b24) -> None:
    portal = b24.installed_portal()
    (delivery,) = b24.sandbox.update(portal, version=2, rotate_application_token=True)
    assert delivery.status == 200
    assert b24.services.store.get(portal.member_id).application_token == b24.sandbox.application_token(portal)


def test_a_demoted_admin_loses_write_access_within_the_recheck_window(b24, redis_client) -> None:
    portal = b24.installed_portal()
    alice, carol = session_for(b24, portal, user_id=1), session_for(b24, portal, user_id=3)
    assert carol.post("/badges", json=BADGE).status_code == 201
    b24.sandbox.set_admin(portal, 3, False)
    assert carol.post("/badges", json={**BADGE, "code": "paid2"}).status_code == 201, \
        "the portal's answer is trusted for up to a minute"
    b24.services.portal_services.users.forget_answer(portal.member_id, 3)  # the minute has passed
    refused = carol.post("/badges", json={**BADGE, "code": "paid3"})
    assert (refused.status_code, refused.json()["error"]) == (403, "ACCESS_DENIED")
    assert carol.delete("/badges/paid").status_code == 403
    assert "paid3" not in portal.badges
    assert alice.post("/badges", json={**BADGE, "code": "alice"}).status_code == 201, "the installer's chain works"
    assert carol.get("/badges").status_code == 200, "reads stay open to every user"


def test_a_fired_admin_loses_write_access(b24, redis_client) -> None:
    portal = b24.installed_portal()
    carol = session_for(b24, portal, user_id=3)
    b24.sandbox.fire_user(portal, 3)
    b24.services.portal_services.users.forget_answer(portal.member_id, 3)
    assert carol.post("/badges", json=BADGE).status_code == 403


def test_an_admin_whose_frame_token_expired_keeps_the_sessions_word(b24, redis_client) -> None:
    portal = b24.installed_portal()
    carol = session_for(b24, portal, user_id=3)
    b24.sandbox.expire_tokens(portal, user_id=3)
    b24.services.portal_services.users.forget_answer(portal.member_id, 3)
    assert carol.post("/badges", json=BADGE).status_code == 201


def test_an_admin_whose_frame_token_is_no_longer_kept_keeps_the_sessions_word_for_the_window(
        b24, redis_client, monkeypatch) -> None:
    """The token went (evicted, a Redis that lost its data): the session's word is kept like the portal's
    answer, so the window's other writes do not look for the token again; a frame the user opens meanwhile
    brings the portal's own word, which decides at once."""
    portal = b24.installed_portal()
    carol = session_for(b24, portal, user_id=3)
    users = b24.services.portal_services.users
    redis_client.delete(keys.user_token(portal.member_id, 3))
    users.forget_answer(portal.member_id, 3)
    assert carol.post("/badges", json=BADGE).status_code == 201
    assert redis_client.get(keys.admin_answer(portal.member_id, 3)) == b"1"
    looked: list[object] = []
    monkeypatch.setattr(users, "token", lambda *args: looked.append(args))
    assert carol.post("/badges", json={**BADGE, "code": "paid2"}).status_code == 201
    assert looked == [], "the kept word answered"
    monkeypatch.undo()
    b24.sandbox.set_admin(portal, 3, False)
    session_for(b24, portal, user_id=3)  # carol opens the app again: the portal says she is no admin now
    refused = carol.post("/badges", json={**BADGE, "code": "paid3"})
    assert (refused.status_code, refused.json()["error"]) == (403, "ACCESS_DENIED")


def test_users_tokens_are_kept_encrypted_and_go_with_the_uninstall(b24, redis_client) -> None:
    portal = b24.installed_portal()
    auth = b24.sandbox.frame_auth(portal, user_id=3)
    requests.post(f"{b24.url}/api/v1/session", timeout=10,
                  json={"AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id, "DOMAIN": portal.domain})
    stored = redis_client.get(keys.user_token(portal.member_id, 3))
    assert stored and auth["AUTH_ID"].encode() not in stored
    b24.sandbox.uninstall(portal, clean=False)
    assert list(redis_client.scan_iter(match=f"b24:user:{{{portal.member_id}}}*")) == []


def test_each_process_trusts_an_admin_answer_exactly_as_long_as_redis_keeps_it(redis_client) -> None:
    """The per-process copy saves a write its round-trip but never outlives the stored answer."""
    now = [1000.0]
    cipher = TokenCipher([Fernet.generate_key().decode()])
    first, second = (UserTokens(redis_client, cipher, answer_ttl=60, clock=lambda: now[0]) for _ in range(2))
    first.remember_answer("M", 3, True)
    redis_client.pexpire(keys.admin_answer("M", 3), 20_000)  # the answer was stored 40 s ago
    assert second.admin_answer("M", 3) is True
    redis_client.set(keys.admin_answer("M", 3), "0", px=20_000)  # another process was told "no" meanwhile
    now[0] += 19.5
    assert second.admin_answer("M", 3) is True, "the copy it read holds until the stored answer's own expiry"
    now[0] += 1.0
    assert second.admin_answer("M", 3) is False, "past that moment the process reads Redis again"
    second.forget_answer("M", 3)
    assert redis_client.exists(keys.admin_answer("M", 3)) == 0
    assert second.admin_answer("M", 3) is None


def test_the_per_process_copies_of_admin_answers_stay_bounded(redis_client) -> None:
    now = [0.0]
    users = UserTokens(redis_client, TokenCipher([Fernet.generate_key().decode()]), answer_ttl=60,
                       clock=lambda: now[0], memo_size=8)
    for user_id in range(20):
        users.remember_answer("M", user_id, True)
        now[0] += 5  # the oldest answers lapse as time goes on
    assert len(users._answers) <= 8
    assert users.admin_answer("M", 19) is True
