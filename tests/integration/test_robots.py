"""The "Set activity badge" robot end to end (docs/bitrix24-protocol.md §11): registered on install and
after each catalogue change, run by the sandbox portal's automation when a deal enters a stage, verified
like an event, done once, and every outcome reported to the workflow through bizproc.event.send."""
from __future__ import annotations

import pytest
import requests

from b24app.sandbox.models import RUN_ANSWERED, RUN_PENDING
from b24app.sandbox.phpquery import flatten
from tests.integration.api import session_for
from tests.integration.helpers import eventually, portal_requests

ROBOT = "activity_badge"
PAID = {"code": "paid", "title": "Payment", "value": "Paid", "type": "success"}
OVERDUE = {"code": "overdue", "title": "Payment", "value": "Overdue", "type": "failure"}


def _installed_with_badges(b24, *badges: dict):
    portal = b24.installed_portal()
    admin = session_for(b24, portal)
    for badge in badges:
        assert admin.post("/badges", json=badge).status_code == 201
    b24.services.jobs.wait()
    return portal


def _finished(b24, portal, run_id: int, timeout: float = 10.0):
    eventually(lambda: b24.sandbox.robot_run(portal, run_id).status != RUN_PENDING, timeout=timeout)
    return b24.sandbox.robot_run(portal, run_id)


def test_install_registers_the_robot_once_with_the_portals_badges(b24) -> None:
    portal = b24.installed_portal()
    [robot] = b24.sandbox.robots(portal, b24.card.client_id)
    assert robot.code == ROBOT and robot.handler == f"{b24.url}/robots/badge"
    assert robot.name == {"EN": "Set activity badge", "DE": "Aktivitäts-Badge setzen",  # core upper-cases keys
                          "RU": "Установить бейдж активности"}
    assert robot.use_subscription == "Y"
    assert "OPTIONS" not in robot.properties["badge"], "no badges yet: the code is typed in"
    assert set(robot.properties["action"]["OPTIONS"]) == {"set", "clear"}

    admin = session_for(b24, portal)
    for badge in (PAID, OVERDUE):
        admin.post("/badges", json=badge)
    b24.services.jobs.wait()
    [robot] = b24.sandbox.robots(portal, b24.card.client_id)
    assert robot.properties["badge"]["OPTIONS"] == {"overdue": "Payment: Overdue", "paid": "Payment: Paid"}

    assert admin.delete("/badges/paid").status_code == 204
    b24.services.jobs.wait()
    [robot] = b24.sandbox.robots(portal, b24.card.client_id)
    assert robot.properties["badge"]["OPTIONS"] == {"overdue": "Payment: Overdue"}
    assert portal_requests(b24.sandbox, portal.member_id).get("bizproc.robot.add") == 1, "later: update, not add"


def test_an_import_in_chunks_registers_the_robot_once_after_the_last_chunk(b24, monkeypatch) -> None:
    portal = b24.installed_portal()
    admin = session_for(b24, portal)
    monkeypatch.setattr(b24.services.portal_services.binder, "robots_quiet", 1.0)
    updates = portal_requests(b24.sandbox, portal.member_id).get("bizproc.robot.update", 0)
    for chunk in range(4):  # as the UI sends a file, one request after the other
        items = [{"code": f"c{chunk}x{i}", "title": "T", "value": "V", "type": "primary"} for i in range(3)]
        assert all(r["ok"] for r in admin.post("/badges/import", json={"badges": items}).json()["results"])
    b24.services.jobs.wait()
    assert portal_requests(b24.sandbox, portal.member_id).get("bizproc.robot.update", 0) == updates + 1
    [robot] = b24.sandbox.robots(portal, b24.card.client_id)
    assert len(robot.properties["badge"]["OPTIONS"]) == 12


def test_an_update_and_a_hand_deletion_register_it_again(b24) -> None:
    portal = _installed_with_badges(b24, PAID)
    b24.sandbox.update(portal, version=2)
    eventually(lambda: len(b24.sandbox.robots(portal, b24.card.client_id)) == 1, timeout=15)
    b24.services.jobs.wait()
    [robot] = b24.sandbox.robots(portal, b24.card.client_id)
    assert robot.properties["badge"]["OPTIONS"] == {"paid": "Payment: Paid"}

    b24.sandbox.automation.forget_app(b24.sandbox.portal(portal), b24.card.client_id)  # an admin deletes it
    assert b24.sandbox.robots(portal, b24.card.client_id) == []
    session_for(b24, portal).post("/badges", json=OVERDUE)
    b24.services.jobs.wait()
    [robot] = b24.sandbox.robots(portal, b24.card.client_id)
    assert set(robot.properties["badge"]["OPTIONS"]) == {"paid", "overdue"}


def test_a_deal_entering_a_stage_gets_the_badge_and_another_stage_clears_it(b24) -> None:
    portal = _installed_with_badges(b24, PAID, OVERDUE)
    deal = b24.sandbox.add_deal(portal, "Boxes")
    b24.sandbox.add_automation(portal, "FINAL_INVOICE", ROBOT, {"badge": "overdue", "action": "set"})
    b24.sandbox.add_automation(portal, "WON", ROBOT, {"action": "clear"})

    [run] = b24.sandbox.move_deal(portal, deal.id, "FINAL_INVOICE")
    assert run.deliveries[0]["status"] == 200
    run = _finished(b24, portal, run.id)
    assert run.status == RUN_ANSWERED
    assert b24.sandbox.deal_badge(portal, deal.id).code == "overdue"
    assert run.return_values["badge"] == "overdue" and int(run.return_values["activity_id"]) > 0
    assert run.return_values["error"] == ""
    assert "badge overdue shown" in run.log_message

    admin = session_for(b24, portal)
    assert admin.get(f"/deals/{deal.id}/badge").json()["code"] == "overdue", "the deal tab sees what the robot did"

    [run] = b24.sandbox.move_deal(portal, deal.id, "WON")
    run = _finished(b24, portal, run.id)
    assert run.status == RUN_ANSWERED and "cleared" in run.log_message
    assert b24.sandbox.deal_badge(portal, deal.id) is None
    assert admin.get(f"/deals/{deal.id}/badge").json()["badge"] is None


def test_a_run_replaces_the_badge_the_deal_tab_set(b24) -> None:
    portal = _installed_with_badges(b24, PAID, OVERDUE)
    deal = b24.sandbox.add_deal(portal, "Crates")
    session_for(b24, portal, user_id=2).post(f"/deals/{deal.id}/badge", json={"code": "overdue"})
    run = _finished(b24, portal, b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}).id)
    assert run.status == RUN_ANSWERED and run.return_values["error"] == ""
    assert b24.sandbox.deal_badge(portal, deal.id).code == "paid"
    portal_state = b24.sandbox.portal(portal)
    open_badges = [a for a in portal_state.activities.values()
                   if a.owner_id == deal.id and a.shows_badge and not a.completed]
    assert len(open_badges) == 1, "one open badge activity per deal"


def test_a_redelivered_run_is_done_once(b24) -> None:
    portal = _installed_with_badges(b24, PAID)
    deal = b24.sandbox.add_deal(portal, "Pallets")
    run = _finished(b24, portal, b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}).id)
    adds = portal_requests(b24.sandbox, portal.member_id).get("crm.activity.configurable.add")
    again = b24.sandbox.redeliver_run(portal, run.id)
    assert again.status == 200
    b24.services.jobs.wait()
    assert portal_requests(b24.sandbox, portal.member_id).get("crm.activity.configurable.add") == adds == 1
    assert b24.sandbox.robot_run(portal, run.id).ignored_answers == 0, "reported once"


def test_a_run_with_a_foreign_application_token_is_refused_and_nothing_is_done(b24) -> None:
    portal = _installed_with_badges(b24, PAID)
    deal = b24.sandbox.add_deal(portal, "Forged")
    run = b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}, deliver=False)
    forged = {**_form(run.payload), "auth[application_token]": "a" * 32}
    answer = requests.post(f"{b24.url}/robots/badge", data=forged, timeout=10)
    assert answer.status_code == 403 and answer.json()["error"] == "ACCESS_DENIED"
    other = b24.installed_portal()  # a genuine token, of another portal
    stolen = {**_form(run.payload), "auth[application_token]": b24.sandbox.application_token(other)}
    assert requests.post(f"{b24.url}/robots/badge", data=stolen, timeout=10).status_code == 403
    b24.services.jobs.wait()
    assert b24.sandbox.deal_badge(portal, deal.id) is None
    assert b24.sandbox.robot_run(portal, run.id).status == RUN_PENDING

    genuine = b24.sandbox.redeliver_run(portal, run.id)
    assert genuine.status == 200, "the refusals did not burn the run"
    assert _finished(b24, portal, run.id).status == RUN_ANSWERED
    assert b24.sandbox.deal_badge(portal, deal.id).code == "paid"


def test_an_unknown_robot_code_is_a_clear_400(b24) -> None:
    portal = _installed_with_badges(b24, PAID)
    deal = b24.sandbox.add_deal(portal, "Odd")
    run = b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}, deliver=False)
    answer = requests.post(f"{b24.url}/robots/badge", data={**_form(run.payload), "code": "other"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["fields"] == {"code": f"One of: {ROBOT}."}


def test_failures_are_reported_to_the_workflow_in_words_a_person_can_act_on(b24) -> None:
    portal = _installed_with_badges(b24, PAID)
    deal = b24.sandbox.add_deal(portal, "Trouble")

    unknown = _finished(b24, portal, b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "gone"}).id)
    assert unknown.status == RUN_ANSWERED
    assert "no badge gone on this portal" in unknown.return_values["error"]
    assert "pick another one" in unknown.log_message

    lead = b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"},
                                 document_id=["crm", "CCrmDocumentLead", "LEAD_5"])
    lead = _finished(b24, portal, lead.id)
    assert "deals only" in lead.return_values["error"] and "crm/CCrmDocumentLead/LEAD_5" in lead.log_message

    nothing = _finished(b24, portal, b24.sandbox.run_robot(portal, deal.id, ROBOT, {"action": "set"}).id)
    assert "No badge is chosen" in nothing.return_values["error"]

    late = b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}, deliver=False)
    b24.sandbox.delete_deal(portal, deal.id)  # deleted while the run waited in the portal's queue
    assert b24.sandbox.redeliver_run(portal, late.id).status == 200
    late = _finished(b24, portal, late.id)
    assert late.status == RUN_ANSWERED
    assert late.return_values["error"].startswith(f"Deal {deal.id}: ")
    assert "does not exist any more" in late.return_values["error"]
    assert all(not run.return_values.get("activity_id") for run in (unknown, lead, nothing, late))


def _form(payload: dict) -> dict[str, str]:
    """The run's payload as the portal's form POST flattens it."""
    return dict(flatten(payload))


def test_a_run_that_meets_the_portals_rate_limit_waits_and_is_done(b24) -> None:
    portal = _installed_with_badges(b24, PAID)
    deal = b24.sandbox.add_deal(portal, "Busy portal")
    b24.sandbox.faults.add(portal, "crm.activity.configurable.add", "error", error="QUERY_LIMIT_EXCEEDED",
                           status=503, count=2)
    run = _finished(b24, portal, b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}).id, timeout=30)
    assert run.status == RUN_ANSWERED and run.return_values["error"] == "", run.log_message
    assert b24.sandbox.deal_badge(portal, deal.id).code == "paid"
    assert portal_requests(b24.sandbox, portal.member_id)["crm.activity.configurable.add"] == 3, "2 refused, 1 done"


def test_a_run_the_process_cannot_queue_is_refused_and_done_when_delivered_again(b24, redis_client) -> None:
    from b24app.badges.robots import RobotRun, RobotRuns
    from b24app.jobs import JobQueueFull, Jobs
    from b24app.storage.robot_runs import RobotRunLog

    portal = _installed_with_badges(b24, PAID)
    deal = b24.sandbox.add_deal(portal, "Saturated")
    sandbox_run = b24.sandbox.run_robot(portal, deal.id, ROBOT, {"badge": "paid"}, deliver=False)
    run = RobotRun.parse(sandbox_run.payload)
    full = Jobs(workers=1, max_queued=0)  # a process whose queue is full
    runs = RobotRuns(deals=b24.services.deals, log_store=RobotRunLog(redis_client), jobs=full)
    with pytest.raises(JobQueueFull):
        runs.accept(run, lambda: None)
    full.shutdown()
    assert RobotRunLog(redis_client).get(portal.member_id, run.digest) is None, "not marked as done"
    assert b24.sandbox.redeliver_run(portal, sandbox_run.id).status == 200
    assert _finished(b24, portal, sandbox_run.id).status == RUN_ANSWERED
    assert b24.sandbox.deal_badge(portal, deal.id).code == "paid"
