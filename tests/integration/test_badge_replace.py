"""Replacing a badge (PUT /api/v1/badges/<code>): Bitrix24 has no badge update, so the app deletes and adds
again (badges/service.py) — refused while deals show the badge, and never leaving the portal without it."""
from __future__ import annotations

from tests.integration.api import session_for

SEED = {"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}
NEW = {"title": {"en": "Call", "de": "Anruf"}, "value": "Not answered", "type": "warning"}


def _calls(b24, portal, method: str) -> int:
    return b24.sandbox.sandbox.counters.portal(portal.member_id)["requests"].get(method, 0)


def test_an_admin_gives_a_badge_new_texts_and_type(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    assert api.get("/badges").headers["X-Cache"] == "miss"
    replaced = api.put("/badges/missedCall", json=NEW)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["badge"]["type"] == "warning"
    stored = portal.badges["missedCall"]
    assert (stored.title, stored.value, stored.type) == (NEW["title"], "Not answered", "warning")
    listed = api.get("/badges")
    assert listed.headers["X-Cache"] == "miss", "the cached list was dropped"
    assert [b["type"] for b in listed.json()["badges"]] == ["warning"]


def test_an_unchanged_replacement_does_not_touch_the_portal(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    deletes = _calls(b24, portal, "crm.activity.badge.delete")
    assert api.put("/badges/missedCall", json=SEED).status_code == 200
    assert _calls(b24, portal, "crm.activity.badge.delete") == deletes


def test_a_badge_shown_on_deals_is_not_replaced_and_the_deals_are_named(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    assert api.post("/deals/7/badge", json={"code": "missedCall"}).status_code == 201
    refused = api.put("/badges/missedCall", json=NEW)
    assert refused.status_code == 409
    assert (refused.json()["error"], refused.json()["deals"]) == ("ENTITY_WITH_BADGE_EXISTS", [7])
    assert portal.badges["missedCall"].type == "failure", "nothing changed"


def test_when_the_portal_refuses_the_new_badge_the_old_one_is_put_back(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    b24.sandbox.faults.add(portal, "crm.activity.badge.add", "error", error=0, status=400,
                           description="Language `de` was not found")
    refused = api.put("/badges/missedCall", json=NEW)
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"badge": "Language `de` was not found"}
    stored = portal.badges["missedCall"]
    assert (stored.title, stored.value, stored.type) == ("Call Status", "Missed", "failure")
    assert [b["code"] for b in api.get("/badges").json()["badges"]] == ["missedCall"]


def test_the_code_is_the_urls_and_the_badge_must_exist(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    renamed = api.put("/badges/missedCall", json={**NEW, "code": "otherCode"})
    assert (renamed.status_code, list(renamed.json()["fields"])) == (400, ["code"])
    missing = api.put("/badges/noSuchBadge", json=NEW)
    assert (missing.status_code, missing.json()["error"]) == (404, "NOT_FOUND")
    invalid = api.put("/badges/missedCall", json={**NEW, "type": "loud"})
    assert (invalid.status_code, list(invalid.json()["fields"])) == (400, ["type"])
    assert session_for(b24, portal, user_id=2).put("/badges/missedCall", json=NEW).status_code == 403
    assert portal.badges["missedCall"].type == "failure"
