"""Reads (docs/DESIGN.md §9): cached GET /api/v1/badges responses per second on this machine (2 cores).

The badge list of one portal (20 badges) is in the app's cache; wrk (Debian package `wrk`) keeps
`connections` keep-alive connections busy for `seconds`, and every response is checked to be 200 by a wrk
Lua script. Without wrk, a Python load generator (threads over keep-alive sessions) is used and said so.
The load generator shares the 2 cores with the app, Redis and the sandbox, as it would on one box.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from typing import Any

import requests

from bench.harness import App, Harness

_WRK_SCRIPT = """
non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("NON200 %d\\n", summary.errors.status))
  io.write(string.format("LAT50 %f\\nLAT99 %f\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(url: str, token: str, seconds: int, connections: int, script_path: str) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script_path,
               "-H", f"Authorization: Bearer {token}", url]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {"tool": "wrk", "requests": total, "responses_per_second": rps,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else "",
            "latency_median_ms": round(float(re.search(r"LAT50 ([\d.]+)", output).group(1)) / 1000, 3),
            "latency_p99_ms": round(float(re.search(r"LAT99 ([\d.]+)", output).group(1)) / 1000, 3)}


def _python_load(url: str, token: str, seconds: int, connections: int) -> dict[str, Any]:
    counts = {"ok": 0, "bad": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        ok = bad = 0
        while time.monotonic() < stop_at:
            if http.get(url, timeout=10).status_code == 200:
                ok += 1
            else:
                bad += 1
        with lock:
            counts["ok"] += ok
            counts["bad"] += bad

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"tool": "python threads (wrk not installed)", "requests": counts["ok"] + counts["bad"],
            "responses_per_second": round(counts["ok"] / elapsed, 1), "non_2xx": counts["bad"]}


def run(h: Harness, app: App, *, seconds: int = 10, runs: int = 3, connections: int = 32,
        badges: int = 20, portal: dict[str, Any] | None = None) -> dict[str, Any]:
    """`portal`: one already in the deployment's store (default: a portal installed through the main app)."""
    portal = portal or h.installed_portal(rate=None)
    token = h.session_token(portal["member_id"], portal["domain"])
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    for i in range(badges):
        http.post(f"{app.url}/api/v1/badges", json={"code": f"read{i}", "title": f"Read {i}", "value": "v",
                                                   "type": "secondary"}, timeout=30).raise_for_status()
    url = f"{app.url}/api/v1/badges"
    assert http.get(url, timeout=30).headers["X-Cache"] == "miss"
    assert http.get(url, timeout=30).headers["X-Cache"] == "hit"
    script = h.results / "wrk-check.lua"
    script.write_text(_WRK_SCRIPT)
    results = []
    for run_no in range(runs):
        http.get(url, timeout=30)  # refill the 30 s cache if it lapsed between runs
        outcome = _wrk(url, token, seconds, connections, str(script)) if shutil.which("wrk") else \
            _python_load(url, token, seconds, connections)
        results.append({"run": run_no + 1, "seconds": seconds, "connections": connections, **outcome})
    return {"benchmark": "reads", "app_workers": app.workers, "runs": results, "target_per_second": 1000}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"reads: cached GET /api/v1/badges, app workers {result['app_workers']} (target ≥ 1000/s)"]
    for r in result["runs"]:
        latency = f", latency median {r['latency_median_ms']} ms p99 {r['latency_p99_ms']} ms" \
            if "latency_median_ms" in r else ""
        lines.append(f"  run {r['run']} ({r['tool']}, {r['connections']} connections, {r['seconds']} s): "
                     f"{r['responses_per_second']}/s, non-200 {r['non_2xx']}{latency}")
    return lines
