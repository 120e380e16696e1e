"""Badge writes resolve unknown outcomes instead of repeating them blindly (docs/DESIGN.md §7, protocol §5.2–§5.5).

A `badge.add` or `batch` that times out or answers 5xx is settled by asking the portal (`badge.get`,
`badge.list`): an identical badge means it was created, a different one means the code is taken, none
means it is sent once more — never twice more. Portal refusals become the use case's errors, and the
badge-list cache is invalidated after every write, failed or not. Unit tests: `MockTransport` plays the
portal, the in-memory store and a fake OAuth server and cache replace Redis; nothing sleeps.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

import pytest

from b24app.badges.rules import BadgeValidationError
from b24app.badges.service import BadgeExists, BadgeInUse, BadgeNotFound, Badges
from b24app.bitrix.errors import AccessDenied, PortalServerError, TransportError
from b24app.bitrix.transport import Reply, Request, TransportFailure
from tests.unit.fakes import FakeBadgeCache, Portal, Script, error, ok

ADD = "crm.activity.badge.add"
GET = "crm.activity.badge.get"
LIST = "crm.activity.badge.list"
DELETE = "crm.activity.badge.delete"
BADGE = {"code": "missed", "title": "Call", "value": "Missed", "type": "failure"}
NOT_FOUND = error("NOT_FOUND", 400, "Badge not found for code `missed`")
UNKNOWN_OUTCOMES = [TransportFailure("ReadTimeout"), error("INTERNAL_SERVER_ERROR", 500)]


def wired(handler: Callable[[Request], Reply]) -> tuple[Badges, Portal, FakeBadgeCache]:
    cache = FakeBadgeCache()
    return Badges(cache), Portal.build(handler), cache


# -- create ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("failure", UNKNOWN_OUTCOMES, ids=["timeout", "500"])
def test_an_add_of_unknown_outcome_that_happened_returns_the_badge_found(failure: Any) -> None:
    badges, portal, cache = wired(Script({ADD: [failure, ok({"badge": BADGE})], GET: ok({"badge": BADGE})}))

    assert badges.create(portal.client, badges.validate(BADGE)) == BADGE

    assert len(portal.sent(ADD)) == 1
    [get] = portal.sent(GET)
    assert get.payload["code"] == "missed"
    assert cache.invalidated == ["m1"]


def test_an_add_of_unknown_outcome_that_did_not_happen_is_sent_once_more() -> None:
    created = {**BADGE, "title": {"en": "Call"}}
    badges, portal, cache = wired(Script({ADD: [TransportFailure("ReadTimeout"), ok({"badge": created})],
                                          GET: NOT_FOUND}))

    assert badges.create(portal.client, badges.validate(BADGE)) == created

    first, second = portal.sent(ADD)
    assert first.payload == second.payload == {**BADGE, "auth": "a1"}
    assert cache.invalidated == ["m1"]


@pytest.mark.parametrize("failure", UNKNOWN_OUTCOMES, ids=["timeout", "500"])
def test_an_add_failing_twice_with_unknown_outcome_raises_and_is_never_sent_a_third_time(failure: Any) -> None:
    badges, portal, cache = wired(Script({ADD: [failure, failure, ok({"badge": BADGE})], GET: NOT_FOUND}))

    with pytest.raises((TransportError, PortalServerError)):
        badges.create(portal.client, badges.validate(BADGE))

    assert len(portal.sent(ADD)) == 2
    assert len(portal.sent(GET)) == 2
    assert cache.invalidated == ["m1"]


def test_an_add_of_unknown_outcome_finding_a_different_badge_with_the_code_is_a_conflict() -> None:
    other = {**BADGE, "title": "Another app's badge"}
    badges, portal, cache = wired(Script({ADD: TransportFailure("ReadTimeout"), GET: ok({"badge": other})}))

    with pytest.raises(BadgeExists):
        badges.create(portal.client, badges.validate(BADGE))

    assert len(portal.sent(ADD)) == 1
    assert cache.invalidated == ["m1"]


def test_a_duplicate_code_refused_by_the_portal_is_badge_exists() -> None:
    badges, portal, cache = wired(Script({ADD: error("BX_INVALID_VALUE", 400, "Code must be unique")}))

    with pytest.raises(BadgeExists):
        badges.create(portal.client, badges.validate(BADGE))

    assert len(portal.requests) == 1
    assert cache.invalidated == ["m1"]


@pytest.mark.parametrize(("code", "description", "field"), [
    (0, "Wrong value of field `title` for language xx", "title"),
    ("REQUIRED_ARG_MISSING", "Argument 'value' is required", "value"),
    (0, "The length of the `code` field must not exceed 30 characters", "code"),
    (0, "Language `xx` was not found", "badge"),
    ("WRONG_TYPE_VALUE", "Wrong value of field `type`", "type"),
    (100, "Could not find value for parameter code", "code"),
])
def test_input_the_portal_refuses_is_a_validation_error_naming_the_field(code: str | int, description: str,
                                                                         field: str) -> None:
    badges, portal, cache = wired(Script({ADD: error(code, 400, description)}))

    with pytest.raises(BadgeValidationError) as caught:
        badges.create(portal.client, badges.validate(BADGE))

    assert list(caught.value.fields) == [field]
    assert description in caught.value.fields[field]
    assert len(portal.requests) == 1
    assert cache.invalidated == ["m1"]


def test_an_add_refused_for_rights_still_invalidates_the_cache() -> None:
    badges, portal, cache = wired(Script({ADD: error("ACCESS_DENIED", 403, "Access denied")}))

    with pytest.raises(AccessDenied):
        badges.create(portal.client, badges.validate(BADGE))

    assert cache.invalidated == ["m1"]


# -- delete ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("failure", UNKNOWN_OUTCOMES, ids=["timeout", "500"])
def test_a_delete_of_unknown_outcome_whose_badge_is_gone_counts_as_done(failure: Any) -> None:
    badges, portal, cache = wired(Script({DELETE: [failure, ok(True)], GET: NOT_FOUND}))

    badges.delete(portal.client, "missed")

    assert len(portal.sent(DELETE)) == 1
    assert len(portal.sent(GET)) == 1
    assert cache.invalidated == ["m1"]


def test_a_delete_of_unknown_outcome_whose_badge_is_still_there_raises() -> None:
    badges, portal, cache = wired(Script({DELETE: error("INTERNAL_SERVER_ERROR", 500), GET: ok({"badge": BADGE})}))

    with pytest.raises(PortalServerError):
        badges.delete(portal.client, "missed")

    assert len(portal.sent(DELETE)) == 1
    assert cache.invalidated == ["m1"]


@pytest.mark.parametrize(("answer", "raised"), [
    (error("ENTITY_WITH_BADGE_EXISTS", 400, "There are entities with this badge. Delete them first."), BadgeInUse),
    (NOT_FOUND, BadgeNotFound),
])
def test_a_delete_the_portal_refuses_raises_the_use_case_error(answer: Reply, raised: type[Exception]) -> None:
    badges, portal, cache = wired(Script({DELETE: answer}))

    with pytest.raises(raised):
        badges.delete(portal.client, "missed")

    assert len(portal.requests) == 1
    assert cache.invalidated == ["m1"]


def test_a_delete_that_succeeds_invalidates_the_cache() -> None:
    badges, portal, cache = wired(Script({DELETE: ok(True)}))

    badges.delete(portal.client, "missed")

    assert portal.sent(DELETE)[0].payload == {"code": "missed", "auth": "a1"}
    assert cache.invalidated == ["m1"]


# -- replace --------------------------------------------------------------------------------------

NEW = {**BADGE, "value": "Not answered", "type": "warning"}


def test_a_replacement_deletes_then_adds_the_new_badge() -> None:
    badges, portal, cache = wired(Script({GET: ok({"badge": BADGE}), DELETE: ok(True), ADD: ok({"badge": NEW})}))

    assert badges.replace(portal.client, badges.validate(NEW)) == NEW

    assert [r.method for r in portal.requests] == [GET, DELETE, ADD]
    assert portal.sent(ADD)[0].payload == {**NEW, "auth": "a1"}
    assert cache.invalidated


def test_a_refused_replacement_puts_the_old_badge_back() -> None:
    refused = error("WRONG_TYPE_VALUE", 400, "Wrong value of field `type`")
    badges, portal, _cache = wired(Script({GET: ok({"badge": BADGE}), DELETE: ok(True),
                                           ADD: [refused, ok({"badge": BADGE})]}))

    with pytest.raises(BadgeValidationError):
        badges.replace(portal.client, badges.validate(NEW))

    new, old = portal.sent(ADD)
    assert (new.payload["type"], old.payload) == ("warning", {**BADGE, "auth": "a1"})


def test_a_replacement_whose_old_badge_cannot_be_put_back_says_so_in_the_log(caplog: Any) -> None:
    refused = error("WRONG_TYPE_VALUE", 400, "Wrong value of field `type`")
    badges, portal, _cache = wired(Script({GET: ok({"badge": BADGE}), DELETE: ok(True),
                                           ADD: [refused, error("ACCESS_DENIED", 403, "Access denied")]}))

    with pytest.raises(AccessDenied):
        badges.replace(portal.client, badges.validate(NEW))

    assert any("lost the badge" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_a_replacement_of_a_badge_in_use_changes_nothing() -> None:
    in_use = error("ENTITY_WITH_BADGE_EXISTS", 400, "There are entities with this badge. Delete them first.")
    badges, portal, _cache = wired(Script({GET: ok({"badge": BADGE}), DELETE: in_use}))

    with pytest.raises(BadgeInUse):
        badges.replace(portal.client, badges.validate(NEW))

    assert portal.sent(ADD) == []


# -- import ---------------------------------------------------------------------------------------

def item(i: int, **changes: Any) -> dict[str, Any]:
    return {"code": f"imp_{i:03d}", "title": f"Title {i}", "value": f"V{i}", "type": "primary", **changes}


class BadgePortal:
    """A portal's badge table behind `batch` and `badge.list`; `failures` are raised by the batch calls in turn
    (None answers), after the batch was applied when `applied` says so."""

    def __init__(self, existing: Sequence[dict[str, Any]] = (), failures: Sequence[Exception | None] = (), *,
                 applied: bool = False, refused: dict[str, Reply] | None = None) -> None:
        self.badges = {b["code"]: b for b in existing}
        self.failures = list(failures)
        self.applied = applied
        self.refused = refused or {}

    def __call__(self, request: Request) -> Reply:
        if request.method == LIST:
            return ok({"badges": list(self.badges.values())})
        assert request.method == "batch"
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and not self.applied:
            raise failure
        results, errors = {}, {}
        for key, query in request.payload["cmd"].items():
            badge = {k: v[0] for k, v in parse_qs(query.partition("?")[2]).items()}
            if badge["code"] in self.refused:
                errors[key] = _body(self.refused[badge["code"]])
            elif badge["code"] in self.badges:
                errors[key] = {"error": "BX_INVALID_VALUE", "error_description": "Code must be unique"}
            else:
                self.badges[badge["code"]] = badge
                results[key] = {"badge": badge}
        if failure is not None:
            raise failure
        return ok({"result": results or [], "result_error": errors or [], "result_total": [], "result_next": [],
                   "result_time": []})


def _body(answer: Reply) -> dict[str, Any]:
    body = answer.json_object()
    assert body is not None
    return body


def batch_sizes(portal: Portal) -> list[int]:
    return [len(r.payload["cmd"]) for r in portal.sent("batch")]


def test_an_import_sends_fifty_per_request_and_answers_every_item_in_order() -> None:
    items: list[Any] = [item(i) for i in range(120)]
    items.insert(3, item(1, title="Same code again"))
    items.insert(60, {"code": "not a code", "title": "", "value": "V", "type": "primary"})
    badges, portal, cache = wired(BadgePortal())

    results = badges.import_many(portal.client, items)

    assert batch_sizes(portal) == [50, 50, 20]
    assert [r["code"] for r in results] == [i.get("code") for i in items]
    assert results[3]["error"] == "BADGE_EXISTS"
    assert results[60]["error"] == "VALIDATION_ERROR"
    assert set(results[60]["fields"]) == {"code", "title"}
    assert all(r["ok"] for i, r in enumerate(results) if i not in (3, 60))
    assert results[0]["badge"] == item(0)
    sent_codes = [parse_qs(query.partition("?")[2])["code"][0]
                  for request in portal.sent("batch") for query in request.payload["cmd"].values()]
    assert sorted(sent_codes) == sorted(f"imp_{i:03d}" for i in range(120))
    assert cache.invalidated == ["m1"]


def test_per_command_errors_of_an_import_become_per_item_results() -> None:
    portal_side = BadgePortal([item(1)], refused={"imp_002": error("ACCESS_DENIED", 403, "Access denied")})
    badges, portal, _cache = wired(portal_side)

    results = badges.import_many(portal.client, [item(0), item(1), item(2)])

    assert [(r["ok"], r.get("error")) for r in results] == [(True, None), (False, "BADGE_EXISTS"),
                                                            (False, "ACCESS_DENIED")]


@pytest.mark.parametrize("applied", [False, True], ids=["lost-request", "lost-answer"])
def test_a_timed_out_import_is_settled_with_the_badge_list(applied: bool) -> None:
    existing = [item(1), item(2, title="Another app's title")]
    portal_side = BadgePortal(existing, [TransportFailure("ReadTimeout")], applied=applied)
    badges, portal, cache = wired(portal_side)

    results = badges.import_many(portal.client, [item(0), item(1), item(2), item(3)])

    assert [(r["code"], r["ok"], r.get("error")) for r in results] == [
        ("imp_000", True, None), ("imp_001", True, None), ("imp_002", False, "BADGE_EXISTS"), ("imp_003", True, None)]
    assert len(portal.sent(LIST)) == 1
    assert batch_sizes(portal) == ([4] if applied else [4, 2])
    if not applied:
        assert set(portal.sent("batch")[1].payload["cmd"]) == {"b0", "b3"}
    assert cache.invalidated == ["m1"]


def test_an_import_whose_second_chunk_times_out_resends_only_what_is_missing() -> None:
    portal_side = BadgePortal(failures=[None, TransportFailure("ReadTimeout")])
    badges, portal, _cache = wired(portal_side)

    results = badges.import_many(portal.client, [item(i) for i in range(120)])

    assert all(r["ok"] for r in results)
    assert batch_sizes(portal) == [50, 50, 50, 20]
    assert len(portal_side.badges) == 120


def test_an_import_timing_out_again_after_settling_raises_without_a_third_batch() -> None:
    portal_side = BadgePortal(failures=[TransportFailure("ReadTimeout")] * 5)
    badges, portal, cache = wired(portal_side)

    with pytest.raises(TransportError):
        badges.import_many(portal.client, [item(0), item(1)])

    assert batch_sizes(portal) == [2, 2]
    assert len(portal.sent(LIST)) == 1
    assert cache.invalidated == ["m1"]
