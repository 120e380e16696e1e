"""Robots through the control API and the portal page: automation rules, stage moves, runs, the deal
card's timeline (docs/bitrix24-protocol.md §11; docs/SANDBOX.md)."""
from __future__ import annotations

import re
from html import unescape

from b24app.sandbox import Sandbox, SandboxServer

from .conftest import Installed, call, posts


def test_automation_over_http(http, server: SandboxServer, robot: Installed, stub) -> None:
    """POST/GET/DELETE /portals/<ref>/automation, POST /deals/<id>/stage, GET/POST /robot-runs, redeliver,
    GET /deals/<id>, GET /robots; misuse is 400 SANDBOX_ERROR, an unknown portal 404."""
    api, portal = server.control_url, robot.portal
    ref = portal.member_id
    robots = http.get(f"{api}/portals/{ref}/robots", timeout=10).json()
    assert [r["code"] for r in robots] == ["activity_badge"]
    rule = http.post(f"{api}/portals/{ref}/automation", json={
        "stage": "final_invoice", "robot": "activity_badge", "properties": {"badge": "missedCall", "action": "set"}},
        timeout=10)
    assert rule.status_code == 201
    assert rule.json()["stage"] == "FINAL_INVOICE" and rule.json()["properties"]["badge"] == "missedCall"
    listed = http.get(f"{api}/portals/{ref}/automation", timeout=10).json()
    assert [r["id"] for r in listed["FINAL_INVOICE"]] == [rule.json()["id"]]

    moved = http.post(f"{api}/portals/{ref}/deals/2/stage", json={"stage": "FINAL_INVOICE"}, timeout=10).json()
    [run] = moved
    assert (run["status"], run["delivery_status"], run["deal_id"]) == ("pending", 200, 2)
    assert posts(stub, portal)[-1].form["event_token"] == run["event_token"]

    answered = call(http, portal, "bizproc.event.send", robot.user["access_token"],
                    EVENT_TOKEN=run["event_token"], RETURN_VALUES={"badge": "missedCall"}, LOG_MESSAGE="Done")
    assert answered.json()["result"] is True
    got = http.get(f"{api}/portals/{ref}/robot-runs/{run['id']}", timeout=10).json()
    assert (got["status"], got["return_values"], got["log_message"]) == ("answered", {"badge": "missedCall"}, "Done")
    assert [r["id"] for r in http.get(f"{api}/portals/{ref}/robot-runs", params={"deal_id": 2, "status": "answered"},
                                      timeout=10).json()] == [run["id"]]

    deal = http.get(f"{api}/portals/{ref}/deals/2", timeout=10).json()
    assert deal["stage_id"] == "FINAL_INVOICE"
    assert [(i["kind"], i.get("status")) for i in deal["timeline"]] == [("stage", None), ("robot", "answered")]

    direct = http.post(f"{api}/portals/{ref}/robot-runs", json={"deal_id": 3, "robot": "activity_badge",
                                                                "properties": {"badge": "x"}}, timeout=10)
    assert direct.status_code == 201 and direct.json()["properties"]["badge"] == "x"
    again = http.post(f"{api}/portals/{ref}/robot-runs/{direct.json()['id']}/redeliver", json={}, timeout=10).json()
    assert again["status"] == 200 and dict(again["form"])["event_token"] == direct.json()["event_token"]

    for bad in ({"stage": "MARS", "robot": "activity_badge"}, {"stage": "WON", "robot": "activity_badge",
                                                               "properties": {"colour": "red"}}, {"stage": "WON"}):
        refused = http.post(f"{api}/portals/{ref}/automation", json=bad, timeout=10)
        assert (refused.status_code, refused.json()["error"]) == (400, "SANDBOX_ERROR"), bad
    assert http.post(f"{api}/portals/{ref}/deals/999/stage", json={"stage": "WON"}, timeout=10).status_code == 400
    assert http.get(f"{api}/portals/nope/robot-runs", timeout=10).status_code == 404
    assert http.delete(f"{api}/portals/{ref}/automation/{rule.json()['id']}", timeout=10).json() == {"removed": 1}
    assert http.delete(f"{api}/portals/{ref}/automation", timeout=10).json() == {"removed": 0}


def test_new_deals_take_a_stage_over_http(http, server: SandboxServer, robot: Installed) -> None:
    """POST /portals/<ref>/deals accepts a stage; the answer carries stage_id."""
    made = http.post(f"{server.control_url}/portals/{robot.portal.member_id}/deals",
                     json={"title": "Won already", "stage": "WON"}, timeout=10)
    assert made.status_code == 201 and made.json()["stage_id"] == "WON"


def test_the_deal_card_moves_and_shows_the_timeline(http, robot: Installed, stub, sb: Sandbox) -> None:
    """The deal card: a "Move to stage…" control that runs the stage's robots, and a timeline with the stage
    move, the run, the app's LOG_MESSAGE and return values; the kanban shows every stage of the pipeline."""
    portal = robot.portal
    sb.add_automation(portal, "WON", "activity_badge", {"badge": "missedCall"})
    card = http.get(portal.base_url + "/crm/deal/details/5/", timeout=10).text
    form = re.search(r'<form class="move-stage" method="post" action="([^"]+)">', card)
    assert form and form.group(1) == "/_portal/deals/5/stage"
    assert re.search(r'<option value="WON"[^>]*>Deal won \(1 robot\)</option>', card)
    moved = http.post(portal.base_url + form.group(1), data={"stage": "WON"}, allow_redirects=False, timeout=10,
                      headers={"Origin": portal.base_url})
    assert moved.status_code == 303 and moved.headers["Location"] == "/crm/deal/details/5/#timeline"
    [run] = sb.robot_runs(portal, deal_id=5)
    card = http.get(portal.base_url + "/crm/deal/details/5/", timeout=10).text
    assert 'data-kind="stage" data-stage="WON"' in card
    assert f'data-run-id="{run.id}"' in card and 'data-status="pending"' in card
    assert "Waiting for the application" in card
    call(http, portal, "bizproc.event.send", robot.admin["access_token"], EVENT_TOKEN=run.event_token,
         RETURN_VALUES={"badge": "missedCall", "activity_id": 12}, LOG_MESSAGE="Activity Badges: badge shown.")
    card = unescape(http.get(portal.base_url + "/crm/deal/details/5/", timeout=10).text)
    assert 'data-status="answered"' in card
    assert "Activity Badges: badge shown." in card
    assert "badge=missedCall" in card and "activity_id=12" in card
    assert re.search(r'class="deal-stage" data-stage="WON">Deal won<', card)
    cross = http.post(portal.base_url + "/_portal/deals/5/stage", data={"stage": "LOSE"}, allow_redirects=False,
                      headers={"Origin": "http://evil.test"}, timeout=10)
    assert cross.status_code == 403 and portal.deals[5].stage_id == "WON"
    kanban = http.get(portal.base_url + "/crm/deal/", timeout=10).text
    stages = re.findall(r'<div class="kanban-column" data-stage="([A-Z_]+)">', kanban)
    assert stages == list(sb.deal_stages)
    assert "1 robot" in kanban


def test_the_kanban_badge_follows_the_app(http, robot: Installed, sb: Sandbox) -> None:
    """What the app does in answer to a run shows on the deal's kanban card (the badge of its latest open
    configurable activity, docs/bitrix24-protocol.md §5.6)."""
    portal, token = robot.portal, robot.admin["access_token"]
    call(http, portal, "crm.activity.badge.add", token, code="missedCall", title="Call", value="Missed",
         type="failure")
    call(http, portal, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=6,
         fields={"badgeCode": "missedCall"},
         layout={"icon": {"code": "info"}, "header": {"title": "x"},
                 "body": {"logo": {"code": "call"}, "blocks": {"a": {"type": "text"}}}})
    card = http.get(portal.base_url + "/crm/deal/details/6/", timeout=10).text
    assert re.search(r'class="badge badge-failure"[^>]*>MISSED</span>', card)
