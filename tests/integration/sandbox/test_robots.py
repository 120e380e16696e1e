"""Robots: bizproc.robot.add/update/list/delete, the run POST, bizproc.event.send and bizproc.activity.log
(docs/bitrix24-protocol.md §11)."""
from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from b24app.sandbox import AppCard, Portal, Sandbox, SandboxError

from .conftest import Installed, add_robot, call, posts, robot_fields
from .stub_app import Received

ROBOT_KEYS = ["workflow_id", "code", "document_id[0]", "document_id[1]", "document_id[2]", "document_type[0]",
              "document_type[1]", "document_type[2]", "event_token", "properties[badge]", "properties[action]",
              "use_subscription", "timeout_duration", "ts", "auth[access_token]", "auth[expires]",
              "auth[expires_in]", "auth[scope]", "auth[domain]", "auth[server_endpoint]", "auth[status]",
              "auth[client_endpoint]", "auth[member_id]", "auth[user_id]", "auth[refresh_token]",
              "auth[application_token]"]
VALIDATION = "ERROR_ACTIVITY_VALIDATION_FAILURE"


def error(resp: requests.Response) -> tuple[int, str, str]:
    body = resp.json()
    return resp.status_code, body.get("error"), body.get("error_description")


# -- registration --------------------------------------------------------------------------------------
def test_add_list_update_delete(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§11.1/§11.2: add -> true; list -> the CODEs only; update -> true; delete -> true."""
    token = installed.admin["access_token"]
    resp = add_robot(http, installed, stub)
    assert (resp.status_code, resp.json()["result"]) == (200, True)
    assert call(http, installed.portal, "bizproc.robot.list", token).json()["result"] == ["activity_badge"]
    [stored] = sb.robots(installed.portal)
    assert stored.auth_user_id == 3 and stored.use_subscription == "Y" and stored.handler == stub.url + "/robot"
    updated = call(http, installed.portal, "bizproc.robot.update", token, CODE="activity_badge",
                   FIELDS={"AUTH_USER_ID": "2", "NAME": "Renamed", "USE_SUBSCRIPTION": "N"})
    assert updated.json()["result"] is True
    assert (stored.auth_user_id, stored.name, stored.use_subscription) == (2, "Renamed", "N")
    deleted = call(http, installed.portal, "bizproc.robot.delete", token, CODE="activity_badge")
    assert deleted.json()["result"] is True
    assert call(http, installed.portal, "bizproc.robot.list", token).json()["result"] == []


def test_keys_are_case_insensitive_except_under_properties(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§11.1: core upper-cases every key except those directly under PROPERTIES, RETURN_PROPERTIES, OPTIONS."""
    resp = call(http, installed.portal, "bizproc.robot.add", installed.admin["access_token"], code="r1",
                handler=stub.url + "/robot", name="R", use_subscription="Y",
                properties={"myKey": {"name": "My key", "type": "select", "options": {"OptA": "A", "optB": "B"}}},
                return_properties={"Out": {"Name": "Out"}})
    assert resp.json()["result"] is True
    [stored] = sb.robots(installed.portal)
    assert stored.properties == {"myKey": {"NAME": "My key", "TYPE": "select", "OPTIONS": {"OptA": "A", "optB": "B"}}}
    assert stored.return_properties == {"Out": {"NAME": "Out"}}
    assert stored.use_subscription == "Y"


def test_form_encoded_registration(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§3.1: bracket parameters work as well as JSON."""
    form = {"auth": installed.admin["access_token"], "CODE": "form_robot", "HANDLER": stub.url + "/robot",
            "NAME[en]": "Form robot", "PROPERTIES[text][Name]": "Text", "PROPERTIES[text][Type]": "string"}
    resp = http.post(installed.endpoint + "bizproc.robot.add", data=form, timeout=10)
    assert resp.json()["result"] is True
    assert sb.robots(installed.portal)[0].properties == {"text": {"NAME": "Text", "TYPE": "string"}}


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"CODE": None}, (VALIDATION, "Empty activity code!")),
    ({"CODE": "0"}, (VALIDATION, "Empty activity code!")),
    ({"CODE": "has space"}, (VALIDATION, "Wrong activity code!")),
    ({"CODE": ["a"]}, (VALIDATION, "Wrong activity code!")),
    ({"HANDLER": None}, ("ERROR_WRONG_HANDLER_URL", "Wrong handler URL")),
    ({"HANDLER": "http://localhost/robot"}, ("ERROR_WRONG_HANDLER_URL", "Wrong handler URL")),
    ({"HANDLER": "ftp://a.example/robot"}, ("ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol")),
    ({"NAME": ""}, (VALIDATION, "Empty activity NAME!")),
    ({"PROPERTIES": "text"}, (VALIDATION, "Wrong properties array!")),
    ({"PROPERTIES": {"1st": {"Name": "x"}}}, (VALIDATION, "Wrong property key (1st)!")),
    ({"PROPERTIES": {"ok": {"Type": "string"}}}, (VALIDATION, "Empty property NAME (ok)!")),
    ({"PROPERTIES": {"ok": "Name"}}, (VALIDATION, "Empty property NAME (ok)!")),
    ({"DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal"]}, (VALIDATION, "Wrong activity DOCUMENT_TYPE!")),
    ({"RETURN_PROPERTIES": {"bad-key": {"Name": "x"}}}, (VALIDATION, "Wrong property key (bad-key)!")),
    ({"FILTER": "deals"}, (VALIDATION, "Wrong activity FILTER!")),
    ({"USE_PLACEMENT": "Y"}, ("ERROR_WRONG_HANDLER_URL", "Wrong handler URL")),
])
def test_add_validation(http, installed: Installed, stub, overrides: dict[str, Any],
                        expected: tuple[str, str]) -> None:
    """§11.1: each check answers 400 with core's code and text."""
    fields = {k: v for k, v in robot_fields(stub, **overrides).items() if v is not None}
    resp = call(http, installed.portal, "bizproc.robot.add", installed.admin["access_token"], **fields)
    assert error(resp) == (400, *expected)


def test_add_checks_run_in_core_order(http, installed: Installed, stub) -> None:
    """§11.1: the first failing check wins: data, code, handler, NAME, PROPERTIES, DOCUMENT_TYPE,
    RETURN_PROPERTIES, FILTER, duplicate, placement handler."""
    token = installed.admin["access_token"]
    assert error(call(http, installed.portal, "bizproc.robot.add", token)) == (400, VALIDATION, "Empty data!")
    steps = [({"CODE": "bad code", "HANDLER": "x", "NAME": ""}, "Wrong activity code!"),
             ({"HANDLER": "x", "NAME": ""}, "Wrong handler URL"),
             ({"NAME": "", "PROPERTIES": "x"}, "Empty activity NAME!"),
             ({"PROPERTIES": "x", "DOCUMENT_TYPE": "x"}, "Wrong properties array!"),
             ({"DOCUMENT_TYPE": "x", "RETURN_PROPERTIES": "x"}, "Wrong activity DOCUMENT_TYPE!"),
             ({"RETURN_PROPERTIES": "x", "FILTER": "x"}, "Wrong properties array!"),
             ({"FILTER": "x"}, "Wrong activity FILTER!")]
    for bad, message in steps:
        fields = robot_fields(stub, **bad)
        assert error(call(http, installed.portal, "bizproc.robot.add", token, **fields))[2] == message, bad
    assert add_robot(http, installed, stub).json()["result"] is True
    again = add_robot(http, installed, stub, USE_PLACEMENT="Y")  # the duplicate check comes first
    assert error(again) == (400, "ERROR_ACTIVITY_ALREADY_INSTALLED", "Activity or Robot already installed!")


def test_codes_are_unique_per_app(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§11.1/§11.2: two apps may use one CODE; each sees, updates and deletes only its own robots."""
    assert add_robot(http, installed, stub).json()["result"] is True
    other = sb.register_app(app_url=stub.url, name="Other app")
    sb.install(installed.portal, rest_only=True, client_id=other.client_id)
    other_token = sb.issue_tokens(installed.portal, 1, other.client_id)["access_token"]
    assert call(http, installed.portal, "bizproc.robot.list", other_token).json()["result"] == []
    for method, params in (("bizproc.robot.update", {"CODE": "activity_badge", "FIELDS": {"NAME": "x"}}),
                           ("bizproc.robot.delete", {"CODE": "activity_badge"})):
        resp = call(http, installed.portal, method, other_token, **params)
        assert error(resp) == (400, "ERROR_ACTIVITY_NOT_FOUND", "Activity or Robot not found!"), method
    again = call(http, installed.portal, "bizproc.robot.add", other_token, **robot_fields(stub))
    assert again.json()["result"] is True
    assert sorted(r.client_id for r in sb.robots(installed.portal)) == sorted([other.client_id,
                                                                              sb.app().client_id])


def test_robot_methods_need_app_context_an_admin_and_the_scope(http, installed: Installed, stub,
                                                              sb: Sandbox) -> None:
    """§11.1/§11.2: a webhook -> 403 "Access denied! Application context required"; a non-admin -> 403
    "Access denied!"; without the bizproc scope -> insufficient_scope."""
    hook = sb.create_webhook(installed.portal, 1, scope="crm,bizproc")
    for method in ("bizproc.robot.add", "bizproc.robot.update", "bizproc.robot.list", "bizproc.robot.delete"):
        resp = http.post(hook["url"] + method, json=robot_fields(stub), timeout=10)
        assert error(resp) == (403, "ACCESS_DENIED", "Access denied! Application context required"), method
        resp = call(http, installed.portal, method, installed.user["access_token"], **robot_fields(stub))
        assert error(resp) == (403, "ACCESS_DENIED", "Access denied!"), method
    narrow = sb.create_webhook(installed.portal, 1, scope="crm")
    assert http.post(narrow["url"] + "bizproc.robot.list", json={}, timeout=10).status_code == 401
    no_bizproc = sb.register_app(app_url=stub.url, scope="crm,placement,user_brief")
    portal = sb.create_portal()
    sb.install(portal, rest_only=True, client_id=no_bizproc.client_id)
    token = sb.issue_tokens(portal, 1, no_bizproc.client_id)["access_token"]
    assert error(call(http, portal, "bizproc.robot.list", token))[:2] == (403, "insufficient_scope")


def test_the_default_app_has_the_bizproc_scope(card: AppCard) -> None:
    """install.json asks for crm, placement, user_brief and bizproc: so does register_app by default."""
    assert card.scopes == {"crm", "placement", "user_brief", "bizproc"}


def test_update_validation(http, robot: Installed, stub, sb: Sandbox) -> None:
    """§11.2: code checks, then NOT_FOUND, then FIELDS; each field validated as in add; empty
    DOCUMENT_TYPE/FILTER clear it; nothing updatable -> "No fields to update"."""
    token = robot.admin["access_token"]

    def update(**params: Any) -> requests.Response:
        return call(http, robot.portal, "bizproc.robot.update", token, **params)

    assert error(update(FIELDS={"NAME": "x"})) == (400, VALIDATION, "Empty activity code!")
    assert error(update(CODE="no such", FIELDS={"NAME": "x"})) == (400, VALIDATION, "Wrong activity code!")
    assert error(update(CODE="nope", FIELDS={"NAME": "x"}))[1] == "ERROR_ACTIVITY_NOT_FOUND"
    assert error(update(CODE="activity_badge")) == (400, VALIDATION, "No fields to update")
    assert error(update(CODE="activity_badge", FIELDS="x")) == (400, VALIDATION, "No fields to update")
    assert error(update(CODE="activity_badge", FIELDS={"COLOUR": "red"})) == (400, VALIDATION, "No fields to update")
    assert error(update(CODE="activity_badge", FIELDS={"NAME": ""})) == (400, VALIDATION, "No fields to update")
    assert error(update(CODE="activity_badge", FIELDS={"HANDLER": "http://localhost/x"}))[1] == \
        "ERROR_WRONG_HANDLER_URL"
    assert error(update(CODE="activity_badge", FIELDS={"PROPERTIES": {"x": {}}}))[2] == "Empty property NAME (x)!"
    assert error(update(CODE="activity_badge", FIELDS={"DOCUMENT_TYPE": ["crm"]}))[2] == \
        "Wrong activity DOCUMENT_TYPE!"
    assert error(update(CODE="activity_badge", FIELDS={"FILTER": "x"}))[2] == "Wrong activity FILTER!"
    [stored] = sb.robots(robot.portal)
    assert stored.filter == {"INCLUDE": [["crm", "CCrmDocumentDeal"]]}
    assert update(code="activity_badge", fields={"filter": [], "document_type": ["crm", "CCrmDocumentDeal", "DEAL"],
                                                 "properties": {"Note": {"name": "Note"}}}).json()["result"] is True
    assert stored.filter is None and stored.document_type == ["crm", "CCrmDocumentDeal", "DEAL"]
    assert stored.properties == {"Note": {"NAME": "Note"}}


def test_delete_validation(http, robot: Installed) -> None:
    """§11.2: empty CODE -> "Empty activity code!"; unknown -> ERROR_ACTIVITY_NOT_FOUND."""
    token = robot.admin["access_token"]
    assert error(call(http, robot.portal, "bizproc.robot.delete", token)) == (400, VALIDATION, "Empty activity code!")
    assert error(call(http, robot.portal, "bizproc.robot.delete", token, CODE="other")) == \
        (400, "ERROR_ACTIVITY_NOT_FOUND", "Activity or Robot not found!")


def test_update_and_uninstall_delete_the_apps_robots(http, robot: Installed, stub, sb: Sandbox) -> None:
    """§11.2: an app update and an uninstall delete its robots; rules stay and fail until it registers again."""
    portal = robot.portal
    sb.add_automation(portal, "WON", "activity_badge", {"badge": "missedCall"})
    sb.update(portal, 2)
    assert sb.robots(portal) == []
    [failed] = sb.move_deal(portal, 1, "WON")
    assert (failed.status, failed.deliveries) == ("failed", [])
    assert "bizproc.robot.add" in failed.error
    token = sb.issue_tokens(portal, 1)["access_token"]
    assert call(http, portal, "bizproc.robot.add", token, **robot_fields(stub)).json()["result"] is True
    [ok] = sb.move_deal(portal, 2, "WON")
    assert ok.status == "pending" and ok.delivery_status == 200
    sb.uninstall(portal)
    assert sb.robots(portal) == []


# -- runs ----------------------------------------------------------------------------------------------
def test_moving_a_deal_posts_the_run(http, robot: Installed, stub, sb: Sandbox, server) -> None:
    """§11.3: the handler gets a form POST with bracket keys, in core's order; tokens of AUTH_USER_ID."""
    portal = robot.portal
    rule = sb.add_automation(portal, "FINAL_INVOICE", "activity_badge", {"badge": "missedCall"})
    [run] = sb.move_deal(portal, 3, "FINAL_INVOICE")
    [got] = posts(stub, portal)
    assert got.method == "POST" and got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert list(got.form) == ROBOT_KEYS
    form = got.form
    assert re.fullmatch(r"[0-9a-f]{13}\.\d{8}", form["workflow_id"])
    assert form["code"] == "activity_badge"
    assert [form[f"document_id[{i}]"] for i in range(3)] == ["crm", "CCrmDocumentDeal", "DEAL_3"]
    assert [form[f"document_type[{i}]"] for i in range(3)] == ["crm", "CCrmDocumentDeal", "DEAL"]
    token = re.fullmatch(rf"{re.escape(form['workflow_id'])}\|(A\d{{5}}_\d{{5}}_\d{{5}}_\d{{5}})\|"
                         r"[A-Za-z0-9]{32}\.[0-9a-f]{64}", form["event_token"])
    assert token and token.group(1) == rule.activity_name
    assert (form["properties[badge]"], form["properties[action]"]) == ("missedCall", "set")  # the Default
    assert (form["use_subscription"], form["timeout_duration"]) == ("Y", "0")
    assert int(form["ts"]) == pytest.approx(sb.clock.now(), abs=5)
    assert form["auth[application_token]"] == sb.application_token(portal)
    assert (form["auth[domain]"], form["auth[member_id]"]) == (portal.domain, portal.member_id)
    assert form["auth[client_endpoint]"] == portal.client_endpoint
    assert form["auth[server_endpoint]"] == server.server_endpoint
    assert (form["auth[user_id]"], form["auth[expires_in]"], form["auth[status]"]) == ("3", "3600", "F")
    assert form["auth[scope]"] == sb.app().scope
    profile = call(http, portal, "profile", form["auth[access_token]"]).json()["result"]
    assert profile["ID"] == "3", "the token is the robot's AUTH_USER_ID user's"
    assert run.status == "pending" and run.delivery_status == 200 and run.stage_id == "FINAL_INVOICE"
    [delivery] = sb.deliveries(portal, "BIZPROC_ROBOT")
    assert delivery.status == 200 and delivery.data() == form
    assert portal.deals[3].stage_id == "FINAL_INVOICE"


def test_auth_user_zero_sends_the_admins_token(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§11.3/§11.5: with AUTH_USER_ID 0 and no user chosen, the sandbox sends the installing admin's token; a
    rule's "run as" user wins over AUTH_USER_ID."""
    add_robot(http, installed, stub, AUTH_USER_ID=0)
    first = sb.run_robot(installed.portal, 1, "activity_badge", {"badge": "x"})
    assert first.user_id == 1 and first.payload["auth"]["user_id"] == 1
    second = sb.run_robot(installed.portal, 1, "activity_badge", {"badge": "x"}, auth_user_id=2)
    assert posts(stub, installed.portal)[-1].form["auth[user_id]"] == "2" and second.user_id == 2


def test_properties_and_use_subscription_choices(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§11.3: only registered properties are sent (null -> "", multiple -> [0], [1]); USE_SUBSCRIPTION ""
    leaves the choice to the rule, Y/N registered wins."""
    add_robot(http, installed, stub, USE_SUBSCRIPTION="", PROPERTIES={
        "flag": {"Name": "Flag", "Type": "bool"}, "users": {"Name": "Users", "Type": "user", "Multiple": "Y"},
        "note": {"Name": "Note"}})
    run = sb.run_robot(installed.portal, 2, "activity_badge", {"FLAG": True, "users": ["user_1", "user_3"]},
                       use_subscription=False)
    form = posts(stub, installed.portal)[-1].form
    props = {k: v for k, v in form.items() if k.startswith("properties")}
    assert props == {"properties[flag]": "Y", "properties[users][0]": "user_1", "properties[users][1]": "user_3",
                     "properties[note]": ""}
    assert form["use_subscription"] == "N" and run.status == "completed"
    waiting = sb.run_robot(installed.portal, 2, "activity_badge", use_subscription="Y")
    assert waiting.status == "pending" and posts(stub, installed.portal)[-1].form["use_subscription"] == "Y"
    with pytest.raises(SandboxError, match="no property colour"):
        sb.add_automation(installed.portal, "WON", "activity_badge", {"colour": "red"})


def test_event_send_answers_the_run(http, robot: Installed, stub, sb: Sandbox) -> None:
    """§11.4: bizproc.event.send (any user) closes the waiting run with the whitelisted RETURN_VALUES (matched
    case-insensitively, stored under the registered name) and LOG_MESSAGE; a second answer is ignored."""
    run = sb.run_robot(robot.portal, 5, "activity_badge", {"badge": "missedCall"})
    bob = robot.user["access_token"]
    sent = call(http, robot.portal, "bizproc.event.send", bob, EVENT_TOKEN=run.event_token,
                RETURN_VALUES={"BADGE": "missedCall", "Activity_Id": 77, "unknown": "x"}, LOG_MESSAGE="Shown.")
    assert sent.status_code == 200 and sent.json()["result"] is True
    assert run.status == "answered" and run.answered_at is not None
    assert run.return_values == {"badge": "missedCall", "activity_id": 77}
    assert run.log_message == "Shown."
    again = call(http, robot.portal, "bizproc.event.send", bob, event_token=run.event_token,
                 return_values={"badge": "other"}, log_message="Again")
    assert again.json()["result"] is True
    assert (run.return_values["badge"], run.log_message, run.ignored_answers) == ("missedCall", "Shown.", 1)


def test_event_send_default_log_message_and_webhooks(http, robot: Installed, sb: Sandbox) -> None:
    """§11.4: without LOG_MESSAGE the log says "Received response from the application."; a webhook with the
    bizproc scope may answer too (no app context needed)."""
    run = sb.run_robot(robot.portal, 5, "activity_badge")
    hook = sb.create_webhook(robot.portal, 2, scope="bizproc")
    resp = http.post(hook["url"] + "bizproc.event.send", json={"event_token": run.event_token}, timeout=10)
    assert resp.json()["result"] is True
    assert (run.status, run.log_message, run.return_values) == ("answered", "Received response from the application.",
                                                                {})


def test_forged_and_foreign_tokens_are_access_denied(http, robot: Installed, sb: Sandbox) -> None:
    """§11.4: a token this portal did not sign -> 403 ACCESS_DENIED, for event.send and activity.log alike."""
    run = sb.run_robot(robot.portal, 5, "activity_badge")
    token = robot.admin["access_token"]
    value, _, signature = run.event_token.rpartition(".")
    forged = [f"{value}.{'0' * 64}", value, f"{value.replace(run.workflow_id, '1' + run.workflow_id[1:])}.{signature}",
              "", None]
    for bad in forged:
        for method in ("bizproc.event.send", "bizproc.activity.log"):
            params = {"LOG_MESSAGE": "x"} if bad is None else {"EVENT_TOKEN": bad, "LOG_MESSAGE": "x"}
            assert error(call(http, robot.portal, method, token, **params)) == (403, "ACCESS_DENIED", "Access denied!")
    other = sb.create_portal()
    sb.install(other, rest_only=True)
    foreign = call(http, other, "bizproc.event.send", sb.issue_tokens(other, 1)["access_token"],
                   EVENT_TOKEN=run.event_token)
    assert error(foreign) == (403, "ACCESS_DENIED", "Access denied!")
    assert run.status == "pending"


def test_activity_log_keeps_the_run_waiting(http, robot: Installed, sb: Sandbox) -> None:
    """§11.4: bizproc.activity.log writes to the log without closing; an empty message -> 400
    ERROR_EMPTY_LOG_MESSAGE "Empty log message!"."""
    run = sb.run_robot(robot.portal, 6, "activity_badge")
    token = robot.user["access_token"]
    empty = call(http, robot.portal, "bizproc.activity.log", token, EVENT_TOKEN=run.event_token)
    assert error(empty) == (400, "ERROR_EMPTY_LOG_MESSAGE", "Empty log message!")
    logged = call(http, robot.portal, "bizproc.activity.log", token, EVENT_TOKEN=run.event_token,
                  LOG_MESSAGE="Working on it")
    assert logged.json()["result"] is True
    assert run.status == "pending" and [e["message"] for e in run.log] == ["Working on it"]


def test_runs_that_do_not_wait_ignore_answers(http, installed: Installed, stub, sb: Sandbox) -> None:
    """§11.3/§11.4: use_subscription=N closes the run at once; timeouts close waiting runs; answers to a closed
    run are accepted and ignored."""
    add_robot(http, installed, stub, USE_SUBSCRIPTION="N")
    run = sb.run_robot(installed.portal, 1, "activity_badge")
    token = installed.admin["access_token"]
    assert run.status == "completed"
    assert call(http, installed.portal, "bizproc.event.send", token, EVENT_TOKEN=run.event_token,
                RETURN_VALUES={"badge": "x"}).json()["result"] is True
    assert run.return_values == {} and run.ignored_answers == 1
    call(http, installed.portal, "bizproc.robot.update", token, CODE="activity_badge",
         FIELDS={"USE_SUBSCRIPTION": "Y"})
    timed = sb.run_robot(installed.portal, 1, "activity_badge", timeout_duration=60)
    assert posts(stub, installed.portal)[-1].form["timeout_duration"] == "60"
    sb.clock.advance(61)
    assert sb.robot_run(installed.portal, timed.id).status == "timeout"
    call(http, installed.portal, "bizproc.event.send", sb.issue_tokens(installed.portal, 1)["access_token"],
         EVENT_TOKEN=timed.event_token)
    assert timed.status == "timeout" and timed.ignored_answers == 1


def test_redelivery_sends_the_same_run_again(robot: Installed, stub, sb: Sandbox) -> None:
    """A queue that delivers twice: same workflow_id, event_token, ts and tokens; both deliveries recorded."""
    run = sb.run_robot(robot.portal, 7, "activity_badge", {"badge": "b"})
    delivery = sb.redeliver_run(robot.portal, run.id)
    first, second = posts(stub, robot.portal)
    assert first.form == second.form and delivery.data() == first.form
    assert [d["status"] for d in run.deliveries] == [200, 200]
    assert len(sb.deliveries(robot.portal, "BIZPROC_ROBOT")) == 2


def test_handler_status_is_recorded(robot: Installed, stub, sb: Sandbox) -> None:
    """The handler's answer is recorded per delivery, and a failed delivery leaves the run waiting (no retries)."""
    stub.hooks["/robot"] = lambda item: (403, "no")
    try:
        run = sb.run_robot(robot.portal, 8, "activity_badge")
    finally:
        stub.hooks.pop("/robot", None)
    assert run.delivery_status == 403 and run.status == "pending"
    assert sb.counters.snapshot()["events"]["failed"]["BIZPROC_ROBOT"] >= 1


def test_the_app_can_answer_from_its_handler(robot: Installed, stub, sb: Sandbox) -> None:
    """The handler may call bizproc.event.send before it answers the POST (the sandbox holds no lock)."""
    def answer(item: Received) -> None:
        requests.post(item.form["auth[client_endpoint]"] + "bizproc.event.send",
                      json={"auth": item.form["auth[access_token]"], "EVENT_TOKEN": item.form["event_token"],
                            "RETURN_VALUES": {"badge": "done"}}, timeout=10)
    stub.hooks["/robot"] = answer
    try:
        run = sb.run_robot(robot.portal, 9, "activity_badge")
    finally:
        stub.hooks.pop("/robot", None)
    assert run.status == "answered" and run.return_values == {"badge": "done"}


def test_stage_moves(robot: Installed, sb: Sandbox) -> None:
    """Moving into the current stage runs nothing; unknown stages and deals are misuse; rules of a stage run in
    order; the timeline has the moves and the runs."""
    portal = robot.portal
    deal = sb.add_deal(portal, "Robots", stage="NEW")
    assert sb.move_deal(portal, deal.id, "new") == []
    with pytest.raises(SandboxError, match="unknown deal stage"):
        sb.move_deal(portal, deal.id, "NOWHERE")
    with pytest.raises(SandboxError, match="no deal"):
        sb.move_deal(portal, 9999, "WON")
    first = sb.add_automation(portal, "EXECUTING", "activity_badge", {"badge": "a"})
    second = sb.add_automation(portal, "EXECUTING", "activity_badge", {"badge": "b", "action": "clear"})
    sb.add_automation(portal, "WON", "activity_badge", {"badge": "c"})
    runs = sb.move_deal(portal, deal.id, "EXECUTING")
    assert [(r.rule_id, r.properties["badge"]) for r in runs] == [(first.id, "a"), (second.id, "b")]
    assert [r.activity_name for r in runs] == [first.activity_name, second.activity_name]
    assert {s: [r.id for r in rules] for s, rules in sb.automation_rules(portal).items()} == {
        "EXECUTING": [first.id, second.id], "WON": [sb.automation_rules(portal)["WON"][0].id]}
    timeline = sb.deal_timeline(portal, deal.id)
    assert [(i["kind"], i.get("to") or i.get("robot")) for i in timeline] == [
        ("stage", "EXECUTING"), ("robot", "activity_badge"), ("robot", "activity_badge")]
    assert sb.remove_automation(portal, stage="EXECUTING") == 2
    assert sb.remove_automation(portal) == 1


def test_runs_fail_unsent_when_the_app_is_not_installed(stub, sb: Sandbox, portal: Portal) -> None:
    """A rule whose app is gone records a failed run and sends nothing."""
    sb.add_automation(portal, "WON", "activity_badge")
    [run] = sb.move_deal(portal, 1, "WON")
    assert run.status == "failed" and "not installed" in run.error and run.deliveries == []
    with pytest.raises(SandboxError, match="never sent"):
        sb.redeliver_run(portal, run.id)
