"""A badge on a deal is set with the acting user's own authorization (docs/DESIGN.md §4): a sales rep
may do it when Bitrix24 lets them edit the deal, and the portal's stored chain is never lent to them."""
from __future__ import annotations

import contextlib

from b24app.storage import keys
from tests.integration.api import session_for
from tests.integration.helpers import redis_commands

SEED = {"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}


def test_a_sales_rep_puts_a_badge_on_a_deal_and_clears_it(b24) -> None:
    portal = b24.installed_portal()
    session_for(b24, portal).post("/badges", json=SEED)
    bob = session_for(b24, portal, user_id=2)
    shown = bob.post("/deals/4/badge", json={"code": "missedCall"})
    assert shown.status_code == 201, shown.text
    assert b24.sandbox.deal_badge(portal, 4).code == "missedCall"
    assert bob.get("/deals/4/badge").json()["code"] == "missedCall"
    assert bob.delete("/deals/4/badge").status_code == 204
    assert b24.sandbox.deal_badge(portal, 4) is None


def test_the_users_own_token_is_used_never_the_stored_chain(b24) -> None:
    portal = b24.installed_portal()
    alice = session_for(b24, portal)
    alice.post("/badges", json=SEED)
    bob = session_for(b24, portal, user_id=2)
    b24.sandbox.revoke_tokens(portal, user_id=2)
    refused = bob.post("/deals/4/badge", json={"code": "missedCall"})
    assert (refused.status_code, refused.json()["error"]) == (401, "INVALID_SESSION"), "the UI renews and retries"
    assert b24.sandbox.deal_badge(portal, 4) is None
    assert alice.post("/deals/4/badge", json={"code": "missedCall"}).status_code == 201, "Alice's token works"
    assert bob.get("/badges").status_code == 200, "the portal's chain is untouched"


def test_a_user_sets_a_deal_badge_while_the_stored_chain_is_dead(b24) -> None:
    portal = b24.installed_portal()
    session_for(b24, portal).post("/badges", json=SEED)
    bob = session_for(b24, portal, user_id=2)
    b24.services.store.needs_reauth(portal.member_id, "invalid_grant: test")
    assert bob.post("/deals/6/badge", json={"code": "missedCall"}).status_code == 201


def test_a_deal_without_a_badge_is_not_an_error(b24) -> None:
    portal = b24.installed_portal()
    answer = session_for(b24, portal, user_id=2).get("/deals/7/badge")
    assert answer.status_code == 200
    assert answer.json() == {"deal_id": 7, "code": None, "activity_id": None, "badge": None}


def test_deleting_a_badge_shown_on_deals_names_them(b24, redis_client) -> None:
    portal = b24.installed_portal()
    alice = session_for(b24, portal)
    alice.post("/badges", json=SEED)
    alice.post("/badges", json={**SEED, "code": "other"})
    for deal_id in (5, 3):
        assert alice.post(f"/deals/{deal_id}/badge", json={"code": "missedCall"}).status_code == 201
    assert alice.post("/deals/8/badge", json={"code": "other"}).status_code == 201
    redis_client.set(keys.deal_lock(portal.member_id, 9), "x")  # a lock is not a deal link
    refused = alice.delete("/badges/missedCall")
    assert refused.status_code == 409
    assert refused.json()["error"] == "ENTITY_WITH_BADGE_EXISTS"
    assert refused.json()["deals"] == [3, 5]


def test_a_write_refused_for_an_expired_user_token_is_not_replayed_after_renewal(b24) -> None:
    portal = b24.installed_portal()
    session_for(b24, portal).post("/badges", json=SEED)
    bob = session_for(b24, portal, user_id=2)
    b24.sandbox.revoke_tokens(portal, user_id=2)
    key = {"Idempotency-Key": "deal-4-missed"}
    refused = bob.post("/deals/4/badge", json={"code": "missedCall"}, headers=key)
    assert refused.status_code == 401
    renewed = session_for(b24, portal, user_id=2)  # the UI renews through b24jssdk and sends it again
    retried = renewed.post("/deals/4/badge", json={"code": "missedCall"}, headers=key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert renewed.post("/deals/4/badge", json={"code": "missedCall"}, headers=key).headers["Idempotent-Replayed"]


def test_a_flood_of_deal_writes_past_its_share_is_refused_before_anything_is_read(b24, monkeypatch) -> None:
    """Deal badges are anyone's to set: a portal's users flooding them, past the portal's share of waiting
    threads while its bucket is known full, are answered 503 before their token or the portal is read."""
    portal = b24.installed_portal(rate=None)
    api = session_for(b24, portal, user_id=2)
    b24.services.jobs.wait()
    clients = b24.services.portal_services.clients
    clients.limiter.saturate(portal.member_id)
    sent = redis_commands(b24.services.redis, monkeypatch)
    with contextlib.ExitStack() as held:
        for _ in range(clients.bulkhead.share):
            held.enter_context(clients.bulkhead.wait_slot(portal.member_id, "rate"))
        for _ in range(5):
            refused = api.post("/deals/3/badge", json={"code": "missedCall"})
            assert (refused.status_code, refused.json()["error"]) == (503, "QUERY_LIMIT_EXCEEDED"), refused.text
            assert float(refused.headers["Retry-After"]) > 0
    assert sent == [], "no refusal read anything"
