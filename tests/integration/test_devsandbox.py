"""The sandbox as the embedded default Bitrix24: `make run` and `flask b24 sandbox`."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.processes import GUNICORN, ROOT, clean_env, free_port, gunicorn


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


def _flask(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A CLI command with nothing set but the data dir, as a developer types it next to `make run`."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env=clean_env(B24_DATA_DIR=str(data)))


def test_a_second_run_from_the_same_checkout_says_in_one_line_where_the_first_is(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = clean_env(B24_ENV="development", B24_DATA_DIR=str(data))
    with gunicorn(env, tmp_path / "first.log", workers=1) as first:
        _wait_for(lambda: "click Install" in first.output())
        second = subprocess.run(GUNICORN, cwd=ROOT, env={**env, "PORT": str(free_port())}, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 1
        lines = (second.stdout + second.stderr).strip().splitlines()
        pid = first.process.pid
        assert lines == [f"Activity Badges is already running from {data} at {first.url} (pid {pid}): use that "
                         f"one, stop it first, or give this one its own B24_DATA_DIR."]
        assert requests.get(f"{first.url}/readyz", timeout=5).json() == {"status": "ready"}, "the first one is fine"
    with gunicorn(env, tmp_path / "third.log", workers=1) as third:
        assert requests.get(f"{third.url}/readyz", timeout=5).ok, "a stopped run leaves nothing held"


def test_a_restart_keeps_the_addresses(tmp_path: Path) -> None:
    env = clean_env(B24_ENV="development", B24_DATA_DIR=str(tmp_path / "var"))
    seen = []
    for run in range(2):
        with gunicorn(env, tmp_path / f"run{run}.log", workers=1, own_port=True) as served:
            _wait_for(lambda served=served: "click Install" in served.output())
            for _ in range(5):  # connections the server closes leave its port in TIME_WAIT
                requests.get(f"{served.url}/healthz", headers={"Connection": "close"}, timeout=5)
            seen.append((served.url, _addresses(served.output())[1]))
    assert seen[0] == seen[1]


def test_the_cli_reaches_the_sandbox_with_nothing_set(tmp_path: Path) -> None:
    data = tmp_path / "var"
    with gunicorn(clean_env(B24_ENV="development", B24_DATA_DIR=str(data)), tmp_path / "run.log", workers=1) as served:
        _wait_for(lambda: "click Install" in served.output())
        _install_and_open(_addresses(served.output())[1])
        listed = _flask(data, "b24", "portals")
        assert listed.returncode == 0, listed.stderr
        assert '"level": "warning"' not in listed.stderr
        member_id = listed.stdout.splitlines()[2].split()[0]
        assert listed.stdout.splitlines()[2].split()[2] == "active"
        refreshed = _flask(data, "b24", "refresh", member_id)
        assert refreshed.returncode == 0 and "refreshed" in refreshed.stdout, refreshed.stderr
        called = _flask(data, "b24", "call", member_id, "crm.activity.badge.list")
        assert called.returncode == 0, called.stderr
        assert '"badges"' in called.stdout
        kept = _flask(data, "b24", "keepalive", "--idle-days", "0")
        assert "1 refreshed, 0 failed" in kept.stdout, kept.stderr


def test_help_says_nothing_else_and_starts_nothing(tmp_path: Path) -> None:
    data = tmp_path / "var"
    for args in (("b24", "--help"), ("b24", "sandbox", "--help")):
        shown = _flask(data, *args)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("Usage:")
        assert shown.stderr == ""
    assert not (data / "redis.sock").exists() and not (data / "redis.pid").exists()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False
