"""The sandbox's state file: a development portal survives a restart (docs/SANDBOX.md, "Persistence")."""
from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest
import requests

from b24app.sandbox import start_sandbox

from .conftest import robot_fields


def _call(portal_endpoint: str, method: str, token: str, **params) -> requests.Response:
    return requests.post(portal_endpoint + method, json={"auth": token, **params}, timeout=10)


def test_a_restarted_sandbox_has_everything_back(tmp_path: Path, stub) -> None:
    """Apps, portals on their ports, users, installs, tokens and refresh chains, badges, activities, deals with
    their stages and moves, bindings, robots, automation rules, runs and webhooks are back after a restart."""
    state = tmp_path / "sandbox-state.json"
    with start_sandbox(state_path=state, save_interval=0.05) as first:
        sb = first.sandbox
        assert first.restored is False
        card = sb.register_app(app_url=stub.url)
        portal = sb.create_portal(name="kept", language="de", settings={"time_zone": "+01:00"})
        sb.add_user(portal, "Dora", "Dev", admin=True)
        sb.install(portal, rest_only=True)
        tokens = sb.issue_tokens(portal, 1)
        endpoint, token = portal.client_endpoint, tokens["access_token"]
        assert _call(endpoint, "crm.activity.badge.add", token, code="hot", title="Hot", value="Hot",
                     type="failure").ok
        assert _call(endpoint, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=3,
                     fields={"badgeCode": "hot"},
                     layout={"icon": {"code": "info"}, "header": {"title": "x"},
                             "body": {"logo": {"code": "call"}, "blocks": {"a": {"type": "text"}}}}).ok
        assert _call(endpoint, "event.bind", token, event="ONAPPUNINSTALL", handler=stub.url + "/events").ok
        assert _call(endpoint, "placement.bind", token, PLACEMENT="CRM_DEAL_DETAIL_TAB", HANDLER=stub.url + "/app",
                     TITLE="Badges").ok
        assert _call(endpoint, "app.option.set", token, options={"mode": "full"}).ok
        assert _call(endpoint, "bizproc.robot.add", token, **robot_fields(stub)).json()["result"] is True
        rule = sb.add_automation(portal, "WON", "activity_badge", {"badge": "hot"})
        [run] = sb.move_deal(portal, 3, "WON")
        hook = sb.create_webhook(portal, 1, scope="crm")
        chain = sb.issue_tokens(portal, 2)
        before = sb.state(portal)
        application_token = sb.application_token(portal)
    assert state.exists() and oct(state.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"

    with start_sandbox(state_path=state) as second:
        sb = second.sandbox
        assert second.restored is True
        again = sb.portal("kept")
        assert (again.member_id, again.port, again.domain) == (portal.member_id, portal.port, portal.domain)
        assert sb.app().client_id == card.client_id and sb.app().client_secret == card.client_secret
        after = sb.state(again)
        for key in ("users", "badges", "activities", "event_handlers", "placements", "webhooks", "deals", "robots",
                    "automation", "robot_runs", "settings", "installations", "language"):
            assert after[key] == before[key], key
        assert sb.application_token(again) == application_token
        assert sb.deal_badge(again, 3).code == "hot"
        assert again.deals[3].stage_id == "WON" and [m.to_stage for m in again.deals[3].moves] == ["WON"]
        # tokens: the access token still works; the refresh chain goes on; the webhook answers
        assert _call(endpoint, "profile", token).json()["result"]["ID"] == "1"
        refreshed = requests.get(second.oauth_url + "/oauth/token/", params={
            "grant_type": "refresh_token", "client_id": card.client_id, "client_secret": card.client_secret,
            "refresh_token": chain["refresh_token"]}, timeout=10).json()
        assert refreshed["user_id"] == 2 and _call(endpoint, "profile", refreshed["access_token"]).ok
        assert requests.post(hook["url"] + "crm.activity.badge.list", json={}, timeout=10).ok
        # the run waits still: the app's answer is accepted (the token was signed with the kept key)
        answered = _call(endpoint, "bizproc.event.send", token, EVENT_TOKEN=run.event_token, LOG_MESSAGE="late")
        assert answered.json()["result"] is True
        assert sb.robot_run(again, run.id).status == "answered"
        assert sb.automation_rules(again)["WON"][0].activity_name == rule.activity_name
        assert requests.get(again.base_url + "/crm/deal/details/3/", timeout=10).ok


def test_a_taken_port_gives_the_portal_a_new_one(tmp_path: Path, caplog: pytest.LogCaptureFixture, stub) -> None:
    """A saved port that someone else holds now: the portal gets another (its domain changes), logged."""
    state = tmp_path / "state.json"
    with start_sandbox(state_path=state) as first:
        first.sandbox.register_app(app_url=stub.url)
        portal = first.sandbox.create_portal(name="moved")
        other = first.sandbox.create_portal(name="stays")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", portal.port))
        squatter.listen(1)
        with caplog.at_level(logging.WARNING, logger="b24app.sandbox"), start_sandbox(state_path=state) as second:
            moved = second.sandbox.portal(portal.member_id)
            assert moved.port != portal.port
            assert second.sandbox.portal(other.member_id).port == other.port
            assert requests.get(moved.base_url + "/", timeout=10).ok
    assert any(f"{portal.domain}" in r.getMessage() and moved.domain in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "something else"}),
                                     json.dumps({"format": "b24-sandbox-state", "version": 1,
                                                 "portals": [{"member_id": 5}]})])
def test_a_corrupt_state_file_is_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str) -> None:
    """Unreadable: start fresh, keep the bad file as .corrupt, say so in one log line."""
    state = tmp_path / "sandbox-state.json"
    state.write_text(content)
    with caplog.at_level(logging.WARNING, logger="b24app.sandbox"), start_sandbox(state_path=state) as server:
        assert server.restored is False and server.sandbox.portals == {}
    assert (tmp_path / "sandbox-state.json.corrupt").read_text() == content
    lines = [r.getMessage() for r in caplog.records if "starting fresh" in r.getMessage()]
    assert len(lines) == 1 and "sandbox-state.json.corrupt" in lines[0]
    assert json.loads(state.read_text())["format"] == "b24-sandbox-state", "a fresh state is written at stop"


def test_the_file_is_written_when_the_state_changes(tmp_path: Path, stub) -> None:
    """At most once per interval, and only when something changed."""
    state = tmp_path / "state.json"
    with start_sandbox(state_path=state, save_interval=3600) as server:
        keeper = server.state_file
        assert keeper is not None
        assert keeper.save() is True and keeper.save() is False
        server.sandbox.register_app(app_url=stub.url)
        assert keeper.save() is True
        assert [a["client_id"] for a in json.loads(state.read_text())["apps"]] == [server.sandbox.app().client_id]
