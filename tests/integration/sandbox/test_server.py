"""The sockets layer: keep-alive, one accept loop for many ports, thread safety under load.

These check the sandbox's own architecture (docs/DESIGN.md §8: several portals at once, tests from many threads
and processes); the protocol facts they rely on are docs/bitrix24-protocol.md §3.1 (REST over HTTP/1.1).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
import requests

from b24app.sandbox import AppCard, Sandbox, SandboxServer

from .conftest import Installed, call


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "connection closed early"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        body += sock.recv(4096)
    return int(lines[0].split()[1]), headers, body[:length]


def test_http11_keep_alive(installed: Installed) -> None:
    """§3.1: several requests travel over one HTTP/1.1 connection (no `Connection: close`)."""
    host, port = installed.portal.domain.split(":")
    body = json.dumps({"auth": installed.admin["access_token"]}).encode()
    request = (f"POST /rest/profile HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(request)
            status, headers, payload = _read_response(sock)
            assert status == 200
            assert headers.get("connection", "").lower() != "close"
            assert json.loads(payload)["result"]["ID"] == "1"


def test_connection_close_is_honoured(installed: Installed) -> None:
    """§3.1: a client that asks for `Connection: close` gets it."""
    host, port = installed.portal.domain.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET /rest/server.time HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, headers, _ = _read_response(sock)
        assert status == 401
        assert headers["connection"] == "close"
        assert sock.recv(10) == b""


def test_many_portals_share_one_accept_loop(sb: Sandbox, card: AppCard) -> None:
    """docs/DESIGN.md §8: up to ~1,000 portals, each on its own port, without a thread per listening socket."""
    threads_before = threading.active_count()
    portals = [sb.create_portal(rate=None, deals=1) for _ in range(1000)]
    try:
        assert len({p.port for p in portals}) == 1000
        assert threading.active_count() - threads_before < 20
        with requests.Session() as http:
            for portal in portals[::50]:
                resp = http.post(portal.client_endpoint + "server.time", timeout=10)
                assert resp.json()["error"] == "NO_AUTH_FOUND"
    finally:
        for portal in portals:
            sb.remove_portal(portal)


def test_removed_portal_stops_listening(sb: Sandbox, card: AppCard) -> None:
    """Portals can be removed at runtime: their port refuses connections afterwards."""
    portal = sb.create_portal()
    url = portal.client_endpoint + "server.time"
    assert requests.post(url, timeout=5).status_code == 401
    sb.remove_portal(portal)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url, timeout=5)


CLIENT = textwrap.dedent("""
    import json, sys, threading, requests
    endpoint, token, refresh_url, refresh_data, worker = sys.argv[1:6]
    refresh_data = json.loads(refresh_data)
    results = {"ok": 0, "fail": 0, "refresh_ok": 0}
    lock = threading.Lock()
    def run(thread):
        with requests.Session() as s:
            for i in range(20):
                r = s.post(endpoint + "crm.activity.badge.add", json={
                    "auth": token, "code": f"p{worker}t{thread}n{i}", "title": "t", "value": "v",
                    "type": "success"}, timeout=30)
                with lock:
                    results["ok" if r.status_code == 200 else "fail"] += 1
            r = s.post(refresh_url, data=refresh_data, timeout=30)
            with lock:
                results["refresh_ok"] += r.status_code == 200
    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(json.dumps(results))
""")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_64_threads_in_8_processes(installed: Installed, sb: Sandbox, card: AppCard, server: SandboxServer) -> None:
    """§2.3 and §5.2 under load: 8 processes × 8 threads adding badges all succeed; of 64 concurrent uses of one
    refresh token exactly one wins (single-use holds under concurrency)."""
    sb.set_rate(installed.portal, None)
    refresh = json.dumps({"grant_type": "refresh_token", "client_id": card.client_id,
                          "client_secret": card.client_secret, "refresh_token": installed.user["refresh_token"]})
    before = sb.counters.snapshot()["oauth"]["refresh_ok"]
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, installed.endpoint, installed.admin["access_token"],
                               server.oauth_url + "/oauth/token/", refresh, str(w)], stdout=subprocess.PIPE, text=True)
             for w in range(8)]
    outputs = [json.loads(p.communicate(timeout=110)[0]) for p in procs]
    assert sum(o["ok"] for o in outputs) == 8 * 8 * 20
    assert sum(o["fail"] for o in outputs) == 0
    assert sum(o["refresh_ok"] for o in outputs) == 1
    assert sb.counters.snapshot()["oauth"]["refresh_ok"] - before == 1
    assert sb.counters.portal(installed.portal.member_id)["oauth"]["refresh_ok"] == 1
    assert len(installed.portal.badges) == 8 * 8 * 20
    assert call(requests.Session(), installed.portal, "crm.activity.badge.list",
                installed.admin["access_token"]).json()["total"] == 1280
