"""The badge API against the sandbox over real HTTP."""
from __future__ import annotations

import time

import pytest

from b24app.storage import keys
from b24app.storage.badge_cache import QUIET, BadgeListCache
from tests.integration.api import Api, session_for
from tests.integration.helpers import portal_requests, redis_commands

SEED = {"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}
MULTI = {"code": "callStatus", "title": {"en": "Call status", "de": "Anrufstatus", "ru": "Статус звонка"},
         "value": {"en": "Missed", "de": "Verpasst", "ru": "Пропущен"}, "type": "warning"}


def _count(b24, portal, method: str) -> int:
    return portal_requests(b24.sandbox, portal.member_id).get(method, 0)


def test_create_get_list_delete(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    created = api.post("/badges", json=SEED)
    assert created.status_code == 201
    assert created.json() == {"badge": SEED}
    assert api.post("/badges", json=MULTI).json()["badge"] == MULTI
    assert portal.badges["callStatus"].title == MULTI["title"]
    assert api.get("/badges/missedCall").json() == {"badge": SEED}
    listed = api.get("/badges").json()["badges"]
    assert sorted(b["code"] for b in listed) == ["callStatus", "missedCall"]
    deleted = api.delete("/badges/missedCall")
    assert deleted.status_code == 204
    assert "missedCall" not in portal.badges
    missing = api.get("/badges/missedCall")
    assert missing.status_code == 404
    assert missing.json()["error"] == "NOT_FOUND"
    assert api.delete("/badges/missedCall").status_code == 404


def test_duplicate_code_is_409_badge_exists(b24) -> None:
    api = session_for(b24, portal := b24.installed_portal())
    api.post("/badges", json=SEED)
    again = api.post("/badges", json={**SEED, "title": "Other"})
    assert again.status_code == 409
    assert again.json()["error"] == "BADGE_EXISTS"
    assert len(portal.badges) == 1


def test_a_code_the_portal_refuses_as_too_long_comes_back_naming_code(b24) -> None:
    """One core version refuses codes over 30 characters (docs/bitrix24-protocol.md §5.2), the docs state
    no limit: the app sends what it may (up to 255) and passes the portal's refusal on as a field error."""
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    refused = api.post("/badges", json={**SEED, "code": "c" * 36})
    assert refused.status_code == 400
    assert refused.json()["error"] == "VALIDATION_ERROR"
    assert list(refused.json()["fields"]) == ["code"]
    assert "30" in refused.json()["fields"]["code"]
    assert _count(b24, portal, "crm.activity.badge.add") == 1, "the portal decided, not the app"


def test_a_portal_without_the_30_character_limit_takes_the_long_code(b24) -> None:
    """The other side of the same dispute: where the portal takes long codes, so does the app."""
    portal = b24.installed_portal(settings={"badge_code_limit": None})
    api = session_for(b24, portal)
    code = "c" * 36
    created = api.post("/badges", json={**SEED, "code": code})
    assert created.status_code == 201, created.text
    assert code in portal.badges
    assert api.post("/deals/2/badge", json={"code": code}).status_code == 201
    assert api.post("/badges", json={**SEED, "code": "c" * 256}).status_code == 400
    assert _count(b24, portal, "crm.activity.badge.add") == 1, "256 characters never leave the app"


@pytest.mark.parametrize(("payload", "field"), [
    ({**SEED, "code": "9bad"}, "code"),
    ({**SEED, "code": "x" * 256}, "code"),
    ({**SEED, "type": "lavender"}, "type"),
    ({**SEED, "title": ""}, "title"),
    ({**SEED, "title": {"xx": "Unknown language"}}, "title.xx"),
    ({**SEED, "value": "v" * 256}, "value"),
    ({k: v for k, v in SEED.items() if k != "value"}, "value"),
])
def test_invalid_badges_never_reach_the_portal(b24, payload: dict, field: str) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    response = api.post("/badges", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert field in body["fields"]
    assert _count(b24, portal, "crm.activity.badge.add") == 0


def test_catalogue_writes_need_an_admin_reads_do_not(b24) -> None:
    portal = b24.installed_portal()
    session_for(b24, portal).post("/badges", json=SEED)
    user = session_for(b24, portal, user_id=2)
    assert user.get("/badges").status_code == 200
    assert user.get("/badges/missedCall").status_code == 200
    for response in (user.post("/badges", json=MULTI), user.delete("/badges/missedCall"),
                     user.post("/badges/import", json={"badges": [MULTI]})):
        assert response.status_code == 403
        assert response.json()["error"] == "ACCESS_DENIED"
    assert _count(b24, portal, "crm.activity.badge.add") == 1


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer not-a-token", "Basic abc"])
def test_api_needs_a_valid_session(b24, header: str) -> None:
    portal = b24.installed_portal()
    api = Api(b24.url, "x")
    api.headers = {"Authorization": header} if header else {}
    response = api.get("/badges")
    assert response.status_code == 401
    assert response.json()["error"] in ("UNAUTHORIZED", "INVALID_SESSION")
    assert portal


def test_a_session_of_another_deployment_is_refused(b24) -> None:
    from b24app.portals.sessions import SessionSigner

    portal = b24.installed_portal()
    foreign = SessionSigner("another-secret-key-" * 3, audience=b24.config.client_id).issue(
        portal.member_id, 1, True, portal.domain)
    response = Api(b24.url, foreign).get("/badges")
    assert response.status_code == 401


def test_badge_list_is_served_from_the_cache_until_a_write(b24) -> None:
    """One badge.list per write once the write's quiet second has passed, whoever asks first: the UI, or the
    robot's registration (portals/binding.py) whose badge select needs the list too. Within that second a
    list is read from the portal each time and never kept: the write may not have landed when it was read."""
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    for _ in range(2):
        within = api.get("/badges")
        assert (within.headers["X-Cache"], len(within.json()["badges"])) == ("miss", 1)
    b24.services.jobs.wait()
    time.sleep(QUIET)
    listed = _count(b24, portal, "crm.activity.badge.list")
    first = api.get("/badges")
    for _ in range(5):
        again = api.get("/badges")
        assert again.headers["X-Cache"] == "hit"
        assert again.json() == first.json()
    kept_by_this_read = first.headers["X-Cache"] == "miss"  # else the robot's registration, if it ran late
    assert _count(b24, portal, "crm.activity.badge.list") == listed + kept_by_this_read
    api.post("/badges", json=MULTI)
    b24.services.jobs.wait()
    after_write = api.get("/badges")
    assert len(after_write.json()["badges"]) == 2, "the write dropped the cached list"
    assert _count(b24, portal, "crm.activity.badge.list") == listed + 2 + (after_write.headers["X-Cache"] == "miss")


def test_a_write_marks_the_list_stale_as_it_is_admitted_and_a_slow_one_bumps_it_after(b24, monkeypatch) -> None:
    """A write that comes back within the quiet second needs no round-trip after it (the list was marked
    stale as it was admitted, and nothing read meanwhile is kept); a slower one bumps the list once done,
    since a list read more than a second after its admission could predate it."""
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    b24.services.jobs.wait()
    sent = redis_commands(b24.services.redis, monkeypatch)
    bump = b24.services.badges._cache._bump.sha

    def bumps() -> list[str]:
        """The keys of the generation bumps the app's cache sent after a write."""
        return [key for name, *named in sent if name == "EVALSHA" and named[0] == bump for key in named[1:]]
    for attempt in range(3):  # the app's clock runs inside the request's: a fast answer was a fast write
        sent.clear()
        started = time.monotonic()
        assert api.post("/badges", json={**SEED, "code": f"fast{attempt}"}).status_code == 201
        took = time.monotonic() - started
        if took < QUIET / 2:
            break
    assert took < QUIET / 2, f"three writes of a badge took {took:.3f} s and more each: the machine is too busy"
    assert bumps() == [], "no round-trip after a write back within the quiet second"
    assert [b["code"] for b in api.get("/badges").json()["badges"]][-1] == f"fast{attempt}"
    b24.sandbox.faults.add(portal, "crm.activity.badge.add", "delay", seconds=QUIET)
    assert api.post("/badges", json=MULTI).status_code == 201
    assert bumps() == [keys.badge_cache(portal.member_id)]
    assert MULTI["code"] in [b["code"] for b in api.get("/badges").json()["badges"]]


def test_a_cached_list_is_never_served_for_a_portal_that_cannot_use_the_app(b24) -> None:
    """The cache-hit path checks the portal's record in the same Redis call: uninstalled → 410, dead → 409."""
    reauth, gone = b24.installed_portal(), b24.installed_portal()
    apis = {portal.member_id: session_for(b24, portal) for portal in (reauth, gone)}
    for portal in (reauth, gone):
        apis[portal.member_id].post("/badges", json=SEED)
    b24.services.jobs.wait()
    time.sleep(QUIET)  # past the writes' quiet second, a list read is kept
    listed = [_count(b24, portal, "crm.activity.badge.list") for portal in (reauth, gone)]
    for portal in (reauth, gone):
        api = apis[portal.member_id]
        api.get("/badges")
        assert api.get("/badges").headers["X-Cache"] == "hit"
    b24.services.store.needs_reauth(reauth.member_id, "")
    b24.sandbox.uninstall(gone)
    refused = apis[reauth.member_id].get("/badges")
    assert (refused.status_code, refused.json()["error"]) == (409, "NEEDS_REAUTH")
    refused = apis[gone.member_id].get("/badges")
    assert (refused.status_code, refused.json()["error"]) == (410, "APP_UNINSTALLED")
    assert [_count(b24, portal, "crm.activity.badge.list") for portal in (reauth, gone)] == [n + 1 for n in listed]


def test_idempotency_key_replays_without_a_second_portal_call(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    headers = {"Idempotency-Key": "create-missed-call-1"}
    first = api.post("/badges", json=SEED, headers=headers)
    second = api.post("/badges", json=SEED, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert _count(b24, portal, "crm.activity.badge.add") == 1
    reused = api.post("/badges", json=MULTI, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    other_portal = session_for(b24, b24.installed_portal())
    assert other_portal.post("/badges", json=SEED, headers=headers).status_code == 201, "keys are per portal"


@pytest.mark.parametrize("mode", ["apply_then_500", "500", "timeout"])
def test_unknown_outcome_of_badge_add_is_resolved_without_duplicates(b24, mode: str) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    b24.sandbox.faults.add(portal, "crm.activity.badge.add", mode, seconds=1)
    response = api.post("/badges", json=SEED)
    assert response.status_code == 201, response.text
    assert response.json() == {"badge": SEED}
    assert list(portal.badges) == ["missedCall"]


def test_delete_of_a_badge_still_shown_on_a_deal_is_explained(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    assert api.post("/deals/3/badge", json={"code": "missedCall"}).status_code == 201
    refused = api.delete("/badges/missedCall")
    assert refused.status_code == 409
    assert refused.json()["error"] == "ENTITY_WITH_BADGE_EXISTS"
    assert "missedCall" in portal.badges
    assert api.delete("/deals/3/badge").status_code == 204
    assert api.delete("/badges/missedCall").status_code == 204


def test_deal_badge_switches_within_one_open_activity(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    api.post("/badges", json=MULTI)
    shown = api.post("/deals/5/badge", json={"code": "missedCall"})
    assert shown.status_code == 201
    body = shown.json()
    assert body["deal_id"] == 5
    assert body["code"] == "missedCall"
    assert b24.sandbox.deal_badge(portal, 5).code == "missedCall"
    switched = api.post("/deals/5/badge", json={"code": "callStatus"})
    assert switched.status_code == 200
    assert switched.json()["activity_id"] == body["activity_id"]
    assert b24.sandbox.deal_badge(portal, 5).code == "callStatus"
    assert session_for(b24, portal, user_id=2).get("/deals/5/badge").json() == {
        "deal_id": 5, "code": "callStatus", "activity_id": body["activity_id"],
        "badge": {"code": "callStatus", "activity_id": body["activity_id"]}}
    open_activities = [a for a in portal.activities.values() if a.owner_id == 5 and not a.completed]
    assert len(open_activities) == 1
    assert api.delete("/deals/5/badge").status_code == 204
    assert b24.sandbox.deal_badge(portal, 5) is None
    assert api.get("/deals/5/badge").json()["badge"] is None
    unknown = api.post("/deals/5/badge", json={"code": "noSuchBadge"})
    assert unknown.status_code == 404


def test_import_uses_batch_and_reports_each_item(b24) -> None:
    portal = b24.installed_portal(rate=(2, 50))
    api = session_for(b24, portal)
    items = [{"code": f"imp{i}", "title": f"Item {i}", "value": str(i), "type": "primary"} for i in range(120)]
    items[7] = {**items[7], "type": "lavender"}
    items[9] = {**items[3]}
    api.post("/badges", json={"code": "imp11", "title": "exists", "value": "x", "type": "success"})
    requests_before = portal_requests(b24.sandbox, portal.member_id)
    response = api.post("/badges/import", json={"badges": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 120
    assert [r["code"] for r in results] == [i["code"] for i in items]
    assert results[0] == {"code": "imp0", "ok": True, "badge": items[0]}
    assert results[7]["ok"] is False
    assert results[7]["error"] == "VALIDATION_ERROR"
    assert results[9]["error"] == "BADGE_EXISTS"
    assert results[11]["error"] == "BADGE_EXISTS"
    assert sum(r["ok"] for r in results) == 117
    after = portal_requests(b24.sandbox, portal.member_id)
    assert after.get("batch", 0) - requests_before.get("batch", 0) == 3, "118 commands → 3 batch requests"
    assert after.get("crm.activity.badge.add", 0) == requests_before.get("crm.activity.badge.add", 0)


def test_import_limits(b24) -> None:
    api = session_for(b24, b24.installed_portal())
    too_many = api.post("/badges/import", json={"badges": [SEED] * 501})
    assert too_many.status_code == 400
    assert too_many.json()["fields"] == {"badges": "Give at most 500 badges."}
    assert api.post("/badges/import", json={"badges": []}).status_code == 400
    assert api.post("/badges/import", json={"nope": 1}).status_code == 400


def test_portal_side_validation_errors_become_field_errors(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    b24.sandbox.faults.add(portal, "crm.activity.configurable.add", "error", error="WRONG_FIELD_VALUE",
                           status=400, description="Wrong value of field `badgeCode`")
    refused = api.post("/deals/2/badge", json={"code": "missedCall"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "VALIDATION_ERROR"
    b24.sandbox.faults.add(portal, "crm.activity.badge.add", "error", error=0, status=400,
                           description="Language `ua` was not found")
    language = api.post("/badges", json={**MULTI, "code": "uaBadge"})
    assert language.status_code == 400
    assert language.json()["fields"] == {"badge": "Language `ua` was not found"}


@pytest.mark.parametrize("mode", ["apply_then_500", "500"])
def test_unknown_outcome_of_badge_delete_is_resolved(b24, mode: str) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    api.post("/badges", json=SEED)
    b24.sandbox.faults.add(portal, "crm.activity.badge.delete", mode)
    response = api.delete("/badges/missedCall")
    if mode == "apply_then_500":
        assert response.status_code == 204
        assert "missedCall" not in portal.badges
    else:
        assert response.status_code == 503
        assert response.json()["error"] == "INTERNAL_SERVER_ERROR"
        assert "missedCall" in portal.badges


def test_no_list_read_that_a_write_in_flight_could_predate_is_kept(b24) -> None:
    """The orders of a list read and a write (storage/badge_cache.py): read before the write's admission and
    offered after it → refused (the generation moved); read within the quiet second after the admission →
    not kept; read after it → kept. Then what a finished write does to a kept list."""
    portal = b24.installed_portal()
    member = portal.member_id
    cache = BadgeListCache(b24.services.redis)
    _data, before = cache.read(member)
    b24.services.portal_services.clients.limiter.admit(member, marks_stale=cache.key(member))  # a write goes
    assert not cache.fill(member, before, b'["read before the write"]')
    data, within = cache.read(member)
    assert (data, within) == (None, "")
    assert not cache.fill(member, within, b'["read while it may be in flight"]')
    time.sleep(QUIET)
    _data, after = cache.read(member)
    assert cache.fill(member, after, b'["read after"]')
    assert cache.read(member)[0] == b'["read after"]'
    cache.written(member, QUIET * 0.5, marked=True)
    assert cache.read(member)[0] == b'["read after"]', "a marked write back within the quiet second: nothing to do"
    cache.written(member, QUIET, marked=True)
    assert cache.read(member)[0] is None, "a slower one bumps"
    assert cache.fill(member, cache.read(member)[1], b'["again"]')
    cache.written(member, 0.0, marked=False)
    assert cache.read(member)[0] is None, "an unmarked one bumps"
