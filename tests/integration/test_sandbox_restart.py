"""`make run` twice: the sandbox portal keeps what happened on it (b24app/sandbox/persist.py, docs/SANDBOX.md).

The installed portal is still installed after a restart — same address, same member_id, tokens the app
stored still valid — so `b24 portals` lists it as active, the portal page opens the app, and the app's
robot keeps working on the deal pipeline.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.integration.test_devsandbox import _addresses, _flask, _install_and_open, _wait_for
from tests.support.processes import ROOT, clean_env, gunicorn


def _portal(control: str) -> dict[str, Any]:
    [portal] = requests.get(f"{control}/_sandbox/portals", timeout=5).json()
    return portal


def _robot_run(control: str, ref: str, deal_id: int) -> dict[str, Any]:
    """Move the deal to WON (where the app's robot is placed) and wait until the app has answered."""
    [run] = requests.post(f"{control}/_sandbox/portals/{ref}/deals/{deal_id}/stage", json={"stage": "WON"},
                          timeout=30).json()
    assert run["delivery_status"] == 200, run
    deadline = time.monotonic() + 30
    while run["status"] == "pending":
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
        run = requests.get(f"{control}/_sandbox/portals/{ref}/robot-runs/{run['id']}", timeout=5).json()
    return run


def _badge(control: str, ref: str, deal_id: int) -> str | None:
    badge = requests.get(f"{control}/_sandbox/portals/{ref}/deals/{deal_id}/badge", timeout=5).json()["badge"]
    return badge["code"] if badge else None


def test_a_restart_keeps_the_installed_portal(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = clean_env(B24_ENV="development", B24_DATA_DIR=str(data))
    with gunicorn(env, tmp_path / "first.log", workers=1, own_port=True) as first:
        _wait_for(lambda: "click Install" in first.output())
        portal_url, control = _addresses(first.output())
        _install_and_open(control)
        portal = _portal(control)
        ref = portal["member_id"]
        robots = requests.get(f"{control}/_sandbox/portals/{ref}/robots", timeout=5).json()
        assert [r["code"] for r in robots] == ["activity_badge"], "the app registered its robot on install"
        tokens = requests.post(f"{control}/_sandbox/portals/{ref}/tokens", json={}, timeout=5).json()
        created = requests.post(portal["client_endpoint"] + "crm.activity.badge.add", timeout=5, json={
            "auth": tokens["access_token"], "code": "missedCall", "title": "Call", "value": "Missed",
            "type": "failure"})
        assert created.ok, created.text
        rule = requests.post(f"{control}/_sandbox/portals/{ref}/automation", timeout=5, json={
            "stage": "WON", "robot": "activity_badge", "properties": {"badge": "missedCall", "action": "set"}})
        assert rule.status_code == 201
        run = _robot_run(control, ref, 2)
        assert run["status"] == "answered" and run["return_values"]["badge"] == "missedCall", run
        assert _badge(control, ref, 2) == "missedCall"
    state = json.loads((data / "sandbox-state.json").read_text())
    assert [p["member_id"] for p in state["portals"]] == [ref]

    with gunicorn(env, tmp_path / "second.log", workers=1, own_port=True) as second:
        _wait_for(lambda: "click Install" in second.output())
        assert _addresses(second.output()) == (portal_url, control), "same portal page and control API"
        again = _portal(control)
        assert (again["member_id"], again["domain"]) == (ref, portal["domain"])
        assert again["installations"] and all(i["installed"] for i in again["installations"].values())

        listed = _flask(data, "b24", "portals")
        assert listed.returncode == 0, listed.stderr
        row = listed.stdout.splitlines()[2].split()
        assert (row[0], row[1], row[2]) == (ref, portal["domain"], "active")
        called = _flask(data, "b24", "call", ref, "crm.activity.badge.list")
        assert called.returncode == 0 and "missedCall" in called.stdout, called.stderr

        opened = requests.post(f"{control}/_sandbox/portals/{ref}/open-app", json={}, timeout=30).json()
        assert opened["status"] == 200 and 'name="b24-session"' in opened["body"]
        client_id = next(iter(again["installations"]))
        page = requests.get(f"{portal_url}/marketplace/app/{client_id}/", timeout=10)
        assert page.ok and 'id="b24-frame-form"' in page.text and "Installing" not in page.text
        action = re.search(r'<form id="b24-frame-form" method="post" action="([^"]+)"', page.text)
        assert action and "PLACEMENT" in page.text

        assert _badge(control, ref, 2) == "missedCall", "the deal keeps its badge"
        card = requests.get(f"{portal_url}/crm/deal/details/2/", timeout=10).text
        assert 'data-status="answered"' in card, "the timeline keeps the answered run"
        run = _robot_run(control, ref, 3)
        assert run["status"] == "answered" and _badge(control, ref, 3) == "missedCall", run


def test_flask_b24_sandbox_keeps_its_portal_too(tmp_path: Path) -> None:
    """The in-process `flask --app app b24 sandbox` uses the same state file; Ctrl-C writes it."""
    data = tmp_path / "var"
    seen = []
    for run in range(2):
        log_path = tmp_path / f"flask{run}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "b24", "sandbox"], cwd=ROOT,
                                       env=clean_env(B24_DATA_DIR=str(data)), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda log_path=log_path: "click Install" in log_path.read_text())
            portal_url, control = _addresses(log_path.read_text())
            portal = _portal(control)
            if run == 0:
                _install_and_open(control)
            else:
                assert all(i["installed"] for i in portal["installations"].values()) and portal["installations"]
            seen.append((portal_url, portal["member_id"]))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)
    assert seen[0] == seen[1]
