"""Methods a CRM app meets that the official SDK's live tests call (docs/bitrix24-protocol.md §5.7, §5.8, §5.9,
§6.5, §6.6): crm.activity.add/fields, placement.list, events, user.fields, user.access, app.option.get/set."""
from __future__ import annotations

from typing import Any

from b24app.sandbox import Sandbox

from .conftest import Installed, call

CALL = {"OWNER_TYPE_ID": 2, "OWNER_ID": 3, "TYPE_ID": 2, "SUBJECT": "Call back", "RESPONSIBLE_ID": 1,
        "COMPLETED": "N", "START_TIME": "2030-01-01T10:00:00+03:00", "DESCRIPTION": "about the order",
        "COMMUNICATIONS": [{"VALUE": "+18005551234", "ENTITY_ID": 1, "ENTITY_TYPE_ID": 3}]}


def add(http, inst: Installed, **changes: Any):
    fields = {k: v for k, v in {**CALL, **changes}.items() if v is not None}
    return call(http, inst.portal, "crm.activity.add", inst.admin["access_token"], fields=fields)


def error_of(resp) -> tuple[int, str, str]:
    body = resp.json()
    return resp.status_code, body["error"], body["error_description"]


def test_activity_add_returns_an_id_listed_as_a_call(http, installed: Installed) -> None:
    """§5.8: crm.activity.add -> `{"result": <int id>}`; crm.activity.list shows it with string values."""
    resp = add(http, installed)
    assert resp.status_code == 200
    activity_id = resp.json()["result"]
    assert isinstance(activity_id, int) and activity_id > 0
    [row] = call(http, installed.portal, "crm.activity.list", installed.admin["access_token"],
                 filter={"ID": activity_id}, select=["*", "COMMUNICATIONS"]).json()["result"]
    assert (row["OWNER_TYPE_ID"], row["OWNER_ID"], row["TYPE_ID"], row["SUBJECT"], row["COMPLETED"]) == (
        "2", "3", "2", "Call back", "N")
    assert row["COMMUNICATIONS"][0]["VALUE"] == "+18005551234"
    assert row["DEADLINE"] == CALL["START_TIME"]  # calls take their deadline from START_TIME


def test_activity_add_errors_are_the_proxy_ones(http, installed: Installed) -> None:
    """§5.8: 400 with an empty `error` and the docs' messages, in their order; a missing owner is "not found"."""
    assert error_of(add(http, installed, SUBJECT="")) == (400, "", "The field SUBJECT is not defined or empty.")
    assert error_of(add(http, installed, RESPONSIBLE_ID=0))[2] == "The field RESPONSIBLE_ID is not defined or invalid."
    assert error_of(add(http, installed, TYPE_ID=9))[2] == "The field TYPE_ID is not defined or invalid."
    assert error_of(add(http, installed, COMMUNICATIONS=None))[2] == (
        "The field COMMUNICATIONS is not defined or invalid.")
    two = [{"VALUE": "+1"}, {"VALUE": "+2"}]
    assert error_of(add(http, installed, COMMUNICATIONS=two))[2] == (
        "The only one communication is allowed for activity of specified type.")
    assert error_of(add(http, installed, OWNER_TYPE_ID=1, OWNER_ID=43))[2] == "Could not find 'LEAD' with ID: 43"
    assert error_of(add(http, installed, PROVIDER_ID="CONFIGURABLE_REST_APP"))[2] == (
        "Use crm.activity.configurable.add for this activity provider")
    assert error_of(call(http, installed.portal, "crm.activity.add", installed.admin["access_token"]))[2] == (
        "The parameter 'fields' must be array.")


def test_activity_fields_describe_every_field(http, installed: Installed) -> None:
    """§5.8: crm.activity.fields -> {FIELD: {type, isRequired, isReadOnly, isImmutable, isMultiple, isDynamic,
    title}}."""
    fields = call(http, installed.portal, "crm.activity.fields", installed.admin["access_token"]).json()["result"]
    for name in ("ID", "OWNER_TYPE_ID", "OWNER_ID", "TYPE_ID", "SUBJECT", "RESPONSIBLE_ID", "COMMUNICATIONS"):
        assert set(fields[name]) == {"type", "isRequired", "isReadOnly", "isImmutable", "isMultiple", "isDynamic",
                                     "title"}
    assert fields["SUBJECT"]["isRequired"] is True
    assert fields["COMMUNICATIONS"]["isMultiple"] is True


def test_placement_list_by_scope(http, installed: Installed, sb: Sandbox) -> None:
    """§5.7: placement.list(SCOPE=crm) -> codes starting with CRM_; without SCOPE the app's scopes plus the global
    ones; a webhook gets 403 WRONG_AUTH_TYPE."""
    token = installed.admin["access_token"]
    crm = call(http, installed.portal, "placement.list", token, SCOPE="crm").json()["result"]
    assert crm and all(code.startswith("CRM_") for code in crm)
    assert "CRM_DEAL_DETAIL_TAB" in crm
    default = call(http, installed.portal, "placement.list", token).json()["result"]
    assert "LEFT_MENU" in default and "CRM_DEAL_DETAIL_TAB" in default
    hook = sb.create_webhook(installed.portal, 1)
    refused = http.post(hook["url"] + "placement.list", json={}, timeout=10)
    assert (refused.status_code, refused.json()["error"]) == (403, "WRONG_AUTH_TYPE")


def test_events_by_scope(http, installed: Installed) -> None:
    """§5.9: events(SCOPE=crm) -> ONCRM... names; FULL -> every event, the ONAPP* ones too."""
    token = installed.admin["access_token"]
    crm = call(http, installed.portal, "events", token, SCOPE="crm").json()["result"]
    assert crm and all(name.startswith("ONCRM") for name in crm)
    full = call(http, installed.portal, "events", token, FULL=True).json()["result"]
    assert {"ONAPPINSTALL", "ONCRMDEALADD", "ONUSERADD"} <= set(full)


def test_user_fields_lists_titles(http, installed: Installed, sb: Sandbox) -> None:
    """§6.6: user.fields -> {FIELD: title}; EMAIL only for the `user`/`user_basic` scopes."""
    brief = call(http, installed.portal, "user.fields", installed.admin["access_token"]).json()["result"]
    assert brief["LAST_LOGIN"] == "Last Login" and "EMAIL" not in brief
    hook = sb.create_webhook(installed.portal, 1, scope="user")
    full = http.post(hook["url"] + "user.fields", json={}, timeout=10).json()["result"]
    for name in ("ID", "EMAIL", "TIMESTAMP_X", "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT"):
        assert isinstance(full[name], str)


def test_user_access(http, installed: Installed) -> None:
    """§6.6: true when the user holds one of ACCESS (AU, G2, U<id>, D1...), always for an admin."""
    admin, user = installed.admin["access_token"], installed.user["access_token"]
    assert call(http, installed.portal, "user.access", admin, ACCESS=["SG9_K"]).json()["result"] is True
    assert call(http, installed.portal, "user.access", user, ACCESS=["AU", "G2"]).json()["result"] is True
    assert call(http, installed.portal, "user.access", user, ACCESS="U2").json()["result"] is True
    assert call(http, installed.portal, "user.access", user, ACCESS=["U1", "CR"]).json()["result"] is False
    assert call(http, installed.portal, "user.access", user).json()["result"] is False


def test_app_option_set_and_get(http, installed: Installed, sb: Sandbox) -> None:
    """§6.5: set (admin, app context) -> true, only the given keys change; get -> one value, null for an unknown key,
    everything without `option` (`[]` when empty); JSON types survive."""
    admin, user = installed.admin["access_token"], installed.user["access_token"]
    portal = installed.portal
    assert call(http, portal, "app.option.get", user).json()["result"] == []
    assert call(http, portal, "app.option.set", admin, options={"mode": "digest", "limit": 5}).json()["result"] is True
    assert call(http, portal, "app.option.set", admin, options={"limit": 7}).json()["result"] is True
    assert call(http, portal, "app.option.get", user, option="limit").json()["result"] == 7
    assert call(http, portal, "app.option.get", user, option="nope").json()["result"] is None
    assert call(http, portal, "app.option.get", user).json()["result"] == {"mode": "digest", "limit": 7}


def test_app_option_errors(http, installed: Installed, sb: Sandbox) -> None:
    """§6.5: a non-admin set -> 403 "Access denied! Administrator authorization required"; nothing to set -> 400
    ERROR_ARGUMENT (argument `options`); a webhook -> 403 "Access denied! Application context required"."""
    portal = installed.portal
    assert error_of(call(http, portal, "app.option.set", installed.user["access_token"], options={"a": 1})) == (
        403, "ACCESS_DENIED", "Access denied! Administrator authorization required")
    empty = call(http, portal, "app.option.set", installed.admin["access_token"], options={})
    assert (empty.status_code, empty.json()["error"], empty.json()["argument"]) == (400, "ERROR_ARGUMENT", "options")
    hook = sb.create_webhook(portal, 1)
    refused = http.post(hook["url"] + "app.option.get", json={"option": "a"}, timeout=10)
    assert error_of(refused) == (403, "ACCESS_DENIED", "Access denied! Application context required")
