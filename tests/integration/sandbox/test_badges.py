"""crm.activity.badge.* validation and errors (docs/bitrix24-protocol.md §5.1–§5.5)."""
from __future__ import annotations

from typing import Any

import pytest

from b24app.sandbox import Sandbox

from .conftest import Installed, call

LAYOUT = {"icon": {"code": "info"}, "header": {"title": "Missed call"},
          "body": {"logo": {"code": "call"}, "blocks": {"t1": {"type": "text", "properties": {"value": "x"}}}}}


def add(http, inst: Installed, token: str | None = None, **fields: Any):
    params = {"code": "b_one", "title": "Call status", "value": "Missed", "type": "failure", **fields}
    params = {k: v for k, v in params.items() if v is not None}
    return call(http, inst.portal, "crm.activity.badge.add", token or inst.admin["access_token"], **params)


def err(resp) -> tuple[int, Any, str]:
    body = resp.json()
    return resp.status_code, body["error"], body["error_description"]


def test_add_returns_the_badge(http, installed: Installed) -> None:
    """§5.2: 200 {"result":{"badge":{code,title,value,type}}}."""
    resp = add(http, installed, title={"en": "Call status", "de": "Anrufstatus"})
    assert resp.status_code == 200
    assert resp.json()["result"] == {"badge": {"code": "b_one", "title": {"en": "Call status", "de": "Anrufstatus"},
                                               "value": "Missed", "type": "failure"}}


@pytest.mark.parametrize("missing", ["code", "title", "value", "type"])
def test_missing_parameter_is_error_100(http, installed: Installed, missing: str) -> None:
    """§5.2: a parameter missing entirely -> `100` "Could not find value for parameter {name}" (400)."""
    assert err(add(http, installed, **{missing: None})) == (400, 100,
                                                            f"Could not find value for parameter {{{missing}}}")


def test_non_admin_gets_access_denied(http, installed: Installed) -> None:
    """§5.1/§5.2: only an admin can add (ACCESS_DENIED, HTTP 400 for this controller)."""
    status, code, _ = err(add(http, installed, installed.user["access_token"]))
    assert (status, code) == (400, "ACCESS_DENIED")


def test_empty_title_is_required_arg_missing(http, installed: Installed) -> None:
    """§5.2: empty string title -> REQUIRED_ARG_MISSING "Argument 'title' is required"."""
    assert err(add(http, installed, title="")) == (400, "REQUIRED_ARG_MISSING", "Argument 'title' is required")


def test_non_string_value_is_required_arg_missing(http, installed: Installed) -> None:
    """§5.2: value neither string nor array -> REQUIRED_ARG_MISSING."""
    assert err(add(http, installed, value=5)) == (400, "REQUIRED_ARG_MISSING", "Argument 'value' is required")


def test_unknown_language_is_error_0(http, installed: Installed) -> None:
    """§5.2: unknown language key -> error `0` "Language `xx` was not found"."""
    assert err(add(http, installed, title={"en": "ok", "xx": "bad"})) == (400, 0, "Language `xx` was not found")


def test_portal_languages_are_accepted(http, installed: Installed) -> None:
    """§5.2: keys that exist in the portal's CultureTable are fine (en, de, ru, ua, ja, ...)."""
    title = {lang: "t" for lang in ("en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it",
                                    "tr", "ja", "sc", "tc", "vn", "id", "ms", "th", "ar")}
    assert add(http, installed, title=title).status_code == 200


def test_empty_language_value_is_error_0(http, installed: Installed) -> None:
    """§5.2: empty value for a language -> `0` "Wrong value of field `title` for language de"."""
    assert err(add(http, installed, title={"en": "ok", "de": ""})) == (
        400, 0, "Wrong value of field `title` for language de")


def test_bad_type_is_wrong_type_value(http, installed: Installed) -> None:
    """§5.2: a type outside success|failure|warning|primary|secondary -> WRONG_TYPE_VALUE."""
    assert err(add(http, installed, type="lavender")) == (400, "WRONG_TYPE_VALUE", "Wrong value of field `type`")


def test_code_longer_than_30_is_error_0(http, installed: Installed) -> None:
    """§5.1: by default (the core version that checks) code ≤ 30 chars; longer -> `0` "The length of the `code`
    field must not exceed 30 characters"."""
    assert installed.portal.settings.badge_code_limit == 30
    assert add(http, installed, code="c" * 30).status_code == 200
    assert err(add(http, installed, code="c" * 31)) == (
        400, 0, "The length of the `code` field must not exceed 30 characters")


def test_without_the_code_limit_36_characters_pass(http, installed: Installed, sb: Sandbox) -> None:
    """§5.1: the docs state no limit and the official SDK's live test adds 36-character codes: with the portal's
    `badge_code_limit` off, codes up to the 255-character column are accepted, longer ones refused."""
    sb.configure_portal(installed.portal, badge_code_limit=None)
    sdk_code = "b24pysdk_test_badge_" + "1" * 16
    assert len(sdk_code) == 36
    assert add(http, installed, code=sdk_code).status_code == 200
    assert add(http, installed, code="c" * 255).status_code == 200
    assert err(add(http, installed, code="c" * 256)) == (
        400, 0, "The length of the `code` field must not exceed 255 characters")


def test_code_limit_is_set_through_the_control_api(http, installed: Installed, server) -> None:
    """§5.1: the setting is per portal and reachable over HTTP (`/_sandbox/portals/<ref>/settings`)."""
    url = f"{server.control_url}/portals/{installed.portal.member_id}/settings"
    assert http.post(url, json={"badge_code_limit": 40}, timeout=10).json()["badge_code_limit"] == 40
    assert add(http, installed, code="c" * 40).status_code == 200
    assert err(add(http, installed, code="d" * 41))[2] == "The length of the `code` field must not exceed 40 characters"
    refused = http.post(url, json={"badge_code_limit": 0}, timeout=10)
    assert (refused.status_code, refused.json()["error"]) == (400, "SANDBOX_ERROR")
    assert http.get(url, timeout=10).json()["badge_code_limit"] == 40


def test_duplicate_code_is_bx_invalid_value(http, installed: Installed) -> None:
    """§5.2: a duplicate code -> BX_INVALID_VALUE "Code must be unique"."""
    assert add(http, installed).status_code == 200
    assert err(add(http, installed)) == (400, "BX_INVALID_VALUE", "Code must be unique")


def test_only_the_first_error_is_returned(http, installed: Installed) -> None:
    """§5.2: several problems -> only the first (title before type)."""
    assert err(add(http, installed, title="", type="nope"))[1] == "REQUIRED_ARG_MISSING"


def test_get_and_not_found(http, installed: Installed) -> None:
    """§5.3: get -> {"badge": {...}}; unknown -> 400 NOT_FOUND "Not found." (the docs' text)."""
    add(http, installed)
    token = installed.user["access_token"]  # get/list are open to any user (§5.1)
    got = call(http, installed.portal, "crm.activity.badge.get", token, code="b_one")
    assert got.json()["result"]["badge"]["code"] == "b_one"
    assert err(call(http, installed.portal, "crm.activity.badge.get", token, code="nope")) == (
        400, "NOT_FOUND", "Not found.")


def test_list_returns_badges_and_total(http, installed: Installed) -> None:
    """§5.4: {"result":{"badges":[...]}, "total": N}; not paginated."""
    for i in range(3):
        add(http, installed, code=f"b_{i}")
    body = call(http, installed.portal, "crm.activity.badge.list", installed.user["access_token"]).json()
    assert [b["code"] for b in body["result"]["badges"]] == ["b_0", "b_1", "b_2"]
    assert body["total"] == 3
    assert "next" not in body


def test_delete(http, installed: Installed) -> None:
    """§5.5: delete -> {"result": true}; non-admin ACCESS_DENIED; unknown NOT_FOUND "Not found."."""
    add(http, installed)
    portal = installed.portal
    assert err(call(http, portal, "crm.activity.badge.delete", installed.user["access_token"], code="b_one"))[1] \
        == "ACCESS_DENIED"
    assert call(http, portal, "crm.activity.badge.delete", installed.admin["access_token"],
                code="b_one").json()["result"] is True
    assert err(call(http, portal, "crm.activity.badge.delete", installed.admin["access_token"], code="b_one")) == (
        400, "NOT_FOUND", "Not found.")


def test_delete_refused_while_an_open_activity_shows_it(http, installed: Installed, sb: Sandbox) -> None:
    """§5.5: ENTITY_WITH_BADGE_EXISTS while an open configurable activity carries the badge."""
    token = installed.admin["access_token"]
    add(http, installed)
    created = call(http, installed.portal, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=3,
                   fields={"badgeCode": "b_one"}, layout=LAYOUT).json()["result"]["activity"]["id"]
    assert err(call(http, installed.portal, "crm.activity.badge.delete", token, code="b_one")) == (
        400, "ENTITY_WITH_BADGE_EXISTS", "There are entities with this badge. Delete them first.")
    call(http, installed.portal, "crm.activity.configurable.update", token, id=created, fields={"completed": True})
    assert call(http, installed.portal, "crm.activity.badge.delete", token, code="b_one").json()["result"] is True


def test_badges_are_portal_global(http, installed: Installed, sb: Sandbox) -> None:
    """§5.1: badges have no app/owner column: one portal's code space, separate per portal."""
    add(http, installed)
    other = sb.create_portal()
    sb.install(other, rest_only=True)
    token = sb.issue_tokens(other, 1)["access_token"]
    assert call(http, other, "crm.activity.badge.list", token).json()["result"]["badges"] == []
