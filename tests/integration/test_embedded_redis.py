"""The embedded default Redis: one server for all workers, data kept across restarts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from tests.conftest import TEST_REDIS_URL
from tests.support.processes import ROOT, clean_env, free_port, gunicorn

COMPLETE = {"B24_ENV": "development", "B24_CLIENT_ID": "app.t.1", "B24_CLIENT_SECRET": "x" * 20,
            "B24_APP_URL": "http://127.0.0.1:1", "B24_ALLOW_HTTP": "1"}


def _worker_names(client: redis.Redis) -> set[str]:
    return {c["name"] for c in client.client_list() if c.get("name", "").startswith("b24app-")}


def _hit_all_workers(url: str, expected: int) -> None:
    for _ in range(200):
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
        if expected <= 0:
            return


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_share_one_embedded_server_and_data_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = clean_env(**COMPLETE, B24_DATA_DIR=str(data))
    socket_path = data / "redis.sock"
    with gunicorn(env, tmp_path / "first.log", workers=3) as served:
        server_pid = int((data / "redis.pid").read_text())
        embedded = redis.Redis(unix_socket_path=str(socket_path))
        deadline = time.monotonic() + 20
        while len(_worker_names(embedded)) < 3 and time.monotonic() < deadline:
            requests.get(f"{served.url}/readyz", timeout=5).raise_for_status()
        assert len(_worker_names(embedded)) == 3, "every worker talks to the one embedded server"
        redis_children = subprocess.run(["pgrep", "-f", f"unixsocket:{socket_path}"], capture_output=True, text=True)
        assert redis_children.stdout.split() == [str(server_pid)], "exactly one redis-server"
        embedded.set("survivor", "kept")
        assert "redis: embedded" in served.output()
    assert served.process.returncode == 0
    assert not socket_path.exists()
    assert not _pid_alive(server_pid), "the server stops with the app"

    with gunicorn(env, tmp_path / "second.log", workers=2):
        assert redis.Redis(unix_socket_path=str(socket_path)).get("survivor") == b"kept"


def test_redis_url_wins_and_no_embedded_server_starts(tmp_path: Path, redis_client: redis.Redis) -> None:
    data = tmp_path / "var"
    env = clean_env(**COMPLETE, B24_DATA_DIR=str(data), REDIS_URL=TEST_REDIS_URL)
    with gunicorn(env, tmp_path / "app.log", workers=2) as served:
        deadline = time.monotonic() + 20
        while len(_worker_names(redis_client)) < 2 and time.monotonic() < deadline:
            requests.get(f"{served.url}/readyz", timeout=5).raise_for_status()
        assert len(_worker_names(redis_client)) >= 2
        assert not (data / "redis.sock").exists()
        assert not (data / "redis.pid").exists()
        assert "redis: REDIS_URL" in served.output()


def test_flask_run_uses_and_stops_the_embedded_server(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    env = clean_env(**COMPLETE, B24_DATA_DIR=str(data))
    log = (tmp_path / "flask.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "flask.log").read_text()
            time.sleep(0.1)
        server_pid = int((data / "redis.pid").read_text())
        assert _pid_alive(server_pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        log.close()
    deadline = time.monotonic() + 10
    while _pid_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(server_pid)
    assert not (data / "redis.sock").exists()
