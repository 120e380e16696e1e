"""The sandbox as the embedded default Bitrix24: `make run` and `flask b24 sandbox`."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.processes import ROOT, clean_env, free_port, gunicorn


def _addresses(output: str) -> tuple[str, str]:
    portal = re.search(r"Open (http://127\.0\.0\.1:\d+)/ and click Install", output)
    control = re.search(r"Sandbox overview and control API: (http://127\.0\.0\.1:\d+)/", output)
    assert portal and control, output
    return portal.group(1), control.group(1)


def _install_and_open(control: str) -> None:
    """Drive the portal through the control API exactly as the Install button would, then open the app."""
    portals = requests.get(f"{control}/_sandbox/portals", timeout=5).json()
    ref = portals[0]["member_id"]
    installed = requests.post(f"{control}/_sandbox/portals/{ref}/install", json={}, timeout=30).json()
    assert installed["status"] == 200, installed
    finished = requests.post(f"{control}/_sandbox/portals/{ref}/install-finish", json={}, timeout=30).json()
    assert [(d["event"], d["status"]) for d in finished] == [("ONAPPINSTALL", 200)]
    page = requests.post(f"{control}/_sandbox/portals/{ref}/open-app", json={}, timeout=30).json()
    assert page["status"] == 200
    assert 'name="b24-session"' in page["body"]


def _wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_run_without_credentials_serves_the_sandbox(tmp_path: Path) -> None:
    env = clean_env(B24_ENV="development", B24_DATA_DIR=str(tmp_path / "var"))
    with gunicorn(env, tmp_path / "run.log", workers=2) as served:
        _wait_for(lambda: "click Install" in served.output())
        portal, control = _addresses(served.output())
        assert requests.get(f"{served.url}/readyz", timeout=5).json() == {"status": "ready"}
        _install_and_open(control)
        assert requests.get(f"{portal}/", timeout=5).status_code == 200
    assert not _answers(f"{control}/_sandbox/portals"), "the sandbox stops with the app"


def test_run_with_credentials_serves_real_portals_only(tmp_path: Path) -> None:
    env = clean_env(B24_ENV="development", B24_DATA_DIR=str(tmp_path / "var"), B24_CLIENT_ID="app.real.1",
                    B24_CLIENT_SECRET="s" * 30, B24_APP_URL="https://badges.example.com")
    with gunicorn(env, tmp_path / "run.log", workers=1) as served:
        assert "sandbox" not in served.output()
    assert not (tmp_path / "var" / "sandbox-app.json").exists()


def test_flask_b24_sandbox_wires_both_in_one_process(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "flask.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "b24", "sandbox", "--port", str(port)],
                               cwd=ROOT, env=clean_env(B24_DATA_DIR=str(tmp_path / "var")), stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: "click Install" in (tmp_path / "flask.log").read_text())
        _portal, control = _addresses((tmp_path / "flask.log").read_text())
        _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"))
        _install_and_open(control)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False
