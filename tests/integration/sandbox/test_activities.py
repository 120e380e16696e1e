"""Configurable activities and how a badge becomes visible (docs/bitrix24-protocol.md §5.6)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from b24app.sandbox import Sandbox

from .conftest import Installed, call

LAYOUT: dict[str, Any] = {
    "icon": {"code": "info"},
    "header": {"title": {"en": "Missed call", "de": "Verpasster Anruf"}},
    "body": {"logo": {"code": "call"}, "blocks": {"t1": {"type": "text", "properties": {"value": "Call back"}}}},
}


def badge(http, inst: Installed, code: str, value: str = "Missed", kind: str = "failure") -> None:
    resp = call(http, inst.portal, "crm.activity.badge.add", inst.admin["access_token"], code=code,
                title="Status", value=value, type=kind)
    assert resp.status_code == 200, resp.text


def add(http, inst: Installed, token: str | None = None, owner: int = 5, layout: Any = None, **fields: Any):
    return call(http, inst.portal, "crm.activity.configurable.add", token or inst.admin["access_token"],
                ownerTypeId=2, ownerId=owner, fields=fields, layout=LAYOUT if layout is None else layout)


def error_of(resp) -> tuple[int, Any]:
    return resp.status_code, resp.json()["error"]


def test_add_shows_the_badge_on_the_deal(http, installed: Installed, sb: Sandbox) -> None:
    """§5.6: add -> {"activity":{"id":N}}; the badge shows on the deal while the activity is open."""
    badge(http, installed, "missed")
    resp = add(http, installed, badgeCode="missed", completed=False, responsibleId=1)
    assert resp.status_code == 200
    activity = resp.json()["result"]["activity"]
    assert set(activity) == {"id"}
    assert sb.deal_badge(installed.portal, 5).code == "missed"
    assert sb.deal_badge(installed.portal, 6) is None


def test_unknown_badge_code_is_wrong_field_value(http, installed: Installed) -> None:
    """§5.6: badgeCode must exist, otherwise WRONG_FIELD_VALUE."""
    assert error_of(add(http, installed, badgeCode="nope")) == (400, "WRONG_FIELD_VALUE")


def test_empty_layout_is_error_empty_layout(http, installed: Installed) -> None:
    """§5.6: layout required on add; empty -> ERROR_EMPTY_LAYOUT; missing -> 100."""
    assert error_of(add(http, installed, layout={})) == (400, "ERROR_EMPTY_LAYOUT")
    missing = call(http, installed.portal, "crm.activity.configurable.add", installed.admin["access_token"],
                   ownerTypeId=2, ownerId=1, fields={})
    assert missing.json() == {"error": 100, "error_description": "Could not find value for parameter {layout}"}


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda lay: lay.pop("icon"), "FIELD_IS_REQUIRED"),
    (lambda lay: lay["icon"].pop("code"), "FIELD_IS_REQUIRED"),
    (lambda lay: lay["header"].pop("title"), "FIELD_IS_REQUIRED"),
    (lambda lay: lay["body"]["logo"].pop("code"), "FIELD_IS_REQUIRED"),
    (lambda lay: lay["body"].update(blocks={}), "FIELD_IS_REQUIRED"),
    (lambda lay: lay["body"].update(blocks={f"b{i}": {"type": "text"} for i in range(21)}), "TOO_MANY_ITEMS"),
    (lambda lay: lay["body"].update(blocks={"bad key!": {"type": "text"}}), "KEY_CONTAIN_WRONG_SYMBOLS"),
    (lambda lay: lay["header"].update(tags={f"t{i}": {"type": "success", "title": "x"} for i in range(3)}),
     "TOO_MANY_ITEMS"),
    (lambda lay: lay["header"].update(tags={"t": {"type": "lavender", "title": "x"}}), "ENUM_FIELD"),
    (lambda lay: lay["header"].update(title={"xx": "bad"}), "WRONG_LANG"),
], ids=["no-icon", "no-icon-code", "no-title", "no-logo-code", "no-blocks", "21-blocks", "bad-key", "3-tags",
        "lavender-tag", "wrong-lang"])
def test_layout_validation(http, installed: Installed, mutate, code: str) -> None:
    """§5.6 LayoutDto rules: icon.code/header.title/body.logo.code required, 1–20 blocks, key charset,
    ≤ 2 tags of known types, portal languages only."""
    layout = copy.deepcopy(LAYOUT)
    mutate(layout)
    assert error_of(add(http, installed, layout=layout)) == (400, code)


def test_twenty_blocks_are_fine(http, installed: Installed) -> None:
    """§5.6: up to 20 blocks; keys of Latin letters, digits, `-`, `_`."""
    layout = copy.deepcopy(LAYOUT)
    layout["body"]["blocks"] = {f"Block-{i}_x": {"type": "text"} for i in range(20)}
    assert add(http, installed, layout=layout).status_code == 200


def test_completing_or_clearing_hides_the_badge(http, installed: Installed, sb: Sandbox) -> None:
    """§5.6: completed=Y or badgeCode='' removes the badge from the card."""
    badge(http, installed, "b1")
    token = installed.admin["access_token"]
    first = add(http, installed, owner=7, badgeCode="b1").json()["result"]["activity"]["id"]
    call(http, installed.portal, "crm.activity.configurable.update", token, id=first, fields={"completed": "Y"})
    assert sb.deal_badge(installed.portal, 7) is None
    second = add(http, installed, owner=7, badgeCode="b1").json()["result"]["activity"]["id"]
    assert sb.deal_badge(installed.portal, 7).code == "b1"
    call(http, installed.portal, "crm.activity.configurable.update", token, id=second, fields={"badgeCode": ""})
    assert sb.deal_badge(installed.portal, 7) is None


def test_kanban_shows_the_most_recently_added_badge(http, installed: Installed, sb: Sandbox) -> None:
    """§5.1: with several badges on one item the kanban shows only the latest one."""
    badge(http, installed, "old")
    badge(http, installed, "new", kind="success")
    add(http, installed, owner=9, badgeCode="old")
    add(http, installed, owner=9, badgeCode="new")
    assert sb.deal_badge(installed.portal, 9).code == "new"


def test_bad_field_values(http, installed: Installed) -> None:
    """§5.6: completed must be Y/N, 1/0, true/false; responsibleId > 0 (WRONG_FIELD_VALUE);
    isIncomingChannel cannot be combined with a deadline."""
    assert error_of(add(http, installed, completed="maybe")) == (400, "WRONG_FIELD_VALUE")
    assert error_of(add(http, installed, responsibleId=0)) == (400, "WRONG_FIELD_VALUE")
    assert error_of(add(http, installed, isIncomingChannel="Y", deadline="2030-01-01T10:00:00+00:00")) == (
        400, "INCOMING_ACTIVITY_CAN_NOT_BE_WITH_DEADLINE")


def test_only_the_creating_app_may_update(http, installed: Installed, sb: Sandbox, stub) -> None:
    """§5.6: another app updating the activity -> ERROR_WRONG_APPLICATION."""
    created = add(http, installed).json()["result"]["activity"]["id"]
    other = sb.register_app(app_url=stub.url)
    sb.install(installed.portal, rest_only=True, client_id=other.client_id)
    token = sb.issue_tokens(installed.portal, 1, other.client_id)["access_token"]
    resp = call(http, installed.portal, "crm.activity.configurable.update", token, id=created,
                fields={"completed": True})
    assert error_of(resp) == (400, "ERROR_WRONG_APPLICATION")


def test_update_unknown_id_is_not_found(http, installed: Installed) -> None:
    """§5.6: update of an id that does not exist -> NOT_FOUND."""
    resp = call(http, installed.portal, "crm.activity.configurable.update", installed.admin["access_token"],
                id=999999, fields={"completed": True})
    assert error_of(resp) == (400, "NOT_FOUND")


def test_get_returns_fields_and_layout(http, installed: Installed) -> None:
    """§5.6: get -> activity {id, ownerTypeId, ownerId, fields{completed, badgeCode, ...}, layout}."""
    badge(http, installed, "g1")
    created = add(http, installed, owner=4, badgeCode="g1", pingOffsets=[15, 60]).json()["result"]["activity"]["id"]
    got = call(http, installed.portal, "crm.activity.configurable.get", installed.user["access_token"],
               id=created).json()["result"]["activity"]
    assert (got["id"], got["ownerTypeId"], got["ownerId"]) == (created, 2, 4)
    assert got["fields"]["badgeCode"] == "g1"
    assert got["fields"]["completed"] is False
    assert got["fields"]["pingOffsets"] == [15, 60]
    assert got["layout"] == LAYOUT


def test_activity_list_filter_and_pages(http, installed: Installed, sb: Sandbox) -> None:
    """§3.2/§5.6: crm.activity.list filters PROVIDER_ID=CONFIGURABLE_REST_APP, OWNER_*, COMPLETED; pages of 50
    with `next`/`total`; `start` moves on."""
    sb.set_rate(installed.portal, None)
    token = installed.admin["access_token"]
    for i in range(55):
        add(http, installed, owner=1 if i < 52 else 2, completed=(i % 2 == 0))
    flt = {"PROVIDER_ID": "CONFIGURABLE_REST_APP", "OWNER_TYPE_ID": 2, "OWNER_ID": 1}
    page1 = call(http, installed.portal, "crm.activity.list", token, filter=flt).json()
    assert (len(page1["result"]), page1["next"], page1["total"]) == (50, 50, 52)
    page2 = call(http, installed.portal, "crm.activity.list", token, filter=flt, start=50).json()
    assert (len(page2["result"]), page2["total"]) == (2, 52)
    assert "next" not in page2
    open_only = call(http, installed.portal, "crm.activity.list", token,
                     filter={**flt, "COMPLETED": "N"}).json()
    assert open_only["total"] == 26
    assert all(row["COMPLETED"] == "N" and row["PROVIDER_ID"] == "CONFIGURABLE_REST_APP"
               for row in open_only["result"])


def test_unknown_owner_is_refused(http, installed: Installed) -> None:
    """§5.6: the activity is bound to an existing CRM item (deals 1..20 exist on a new portal)."""
    assert error_of(add(http, installed, owner=424242)) == (400, "OWNER_NOT_FOUND")
