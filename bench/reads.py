"""Reads (docs/DESIGN.md §9): cached GET /api/v1/badges responses per second, as a ratio to the hello-world floor.

The badge list of one portal (20 badges) is in the app's cache; wrk (Debian package `wrk`) keeps
`connections` keep-alive connections busy for `seconds`, and every response is checked to be 200 by a wrk
Lua script. Each run measures the app and the floor (bench/floor_app.py: `GET /floor`, a trivial Flask route
answering a small JSON object under the app's own gunicorn configuration, with the same Authorization header)
in interleaved one-second slices, so both see the same neighbours; the headline is app / floor per run
(target ≥ 0.7).
Without wrk, a Python load generator (threads over keep-alive sessions) is used and said so; it is itself
CPU-bound on this machine, so its ratios understate the gap.
The load generator shares the 2 cores with the app, Redis and the sandbox, as it would on one box.
"""
from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time
from typing import Any

import requests

from b24app.storage.badge_cache import QUIET
from bench.harness import FLOOR_PATH, App, Harness, spread

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
    took = re.search(r"requests in ([\d.]+)(m?s)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    elapsed = (float(took.group(1)) / (1000 if took.group(2) == "ms" else 1)) if took else seconds
    return {"tool": "wrk", "requests": total, "responses_per_second": rps, "elapsed": elapsed,
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
            "responses_per_second": round(counts["ok"] / elapsed, 1), "non_2xx": counts["bad"], "elapsed": elapsed}


TARGET_RATIO = 0.7


def _load(url: str, token: str, seconds: int, connections: int, script: str) -> dict[str, Any]:
    return _wrk(url, token, seconds, connections, script) if shutil.which("wrk") else \
        _python_load(url, token, seconds, connections)


def run(h: Harness, app: App, floor: App, *, seconds: int = 10, runs: int = 3, connections: int = 32,
        badges: int = 20, slice_seconds: int = 1, portal: dict[str, Any] | None = None) -> dict[str, Any]:
    """`portal`: one already in the deployment's store (default: a portal installed through the main app).

    Each run gives the app and the floor `seconds` each, in slices of `slice_seconds` taken in turn (floor, app,
    app, floor, …), so that a noisy neighbour's burst lands on both alike; a side's rate is its responses over
    its slices' time, and the run's ratio is app / floor."""
    portal = portal or h.installed_portal(rate=None)
    token = h.session_token(portal["member_id"], portal["domain"])
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    for i in range(badges):
        http.post(f"{app.url}/api/v1/badges", json={"code": f"read{i}", "title": f"Read {i}", "value": "v",
                                                   "type": "secondary"}, timeout=30).raise_for_status()
    url = f"{app.url}/api/v1/badges"
    floor_url = f"{floor.url}{FLOOR_PATH}"
    time.sleep(QUIET)  # a list read within a write's quiet second is not kept (storage/badge_cache.py)
    assert http.get(url, timeout=30).headers["X-Cache"] == "miss"
    assert http.get(url, timeout=30).headers["X-Cache"] == "hit"
    body_bytes = len(http.get(url, timeout=30).content)
    script = h.results / "wrk-check.lua"
    script.write_text(_WRK_SCRIPT)
    slices = max(1, seconds // max(1, slice_seconds))
    results = []
    for run_no in range(runs):
        measured: dict[str, list[dict[str, Any]]] = {"floor": [], "app": []}
        for k in range(slices):
            for name in (("floor", "app") if k % 2 == 0 else ("app", "floor")):
                if name == "app":
                    http.get(url, timeout=30)  # refill the 30 s cache if it lapsed
                measured[name].append(_load(url if name == "app" else floor_url, token, min(seconds, slice_seconds),
                                            connections, str(script)))
        side = {name: _combine(parts) for name, parts in measured.items()}
        results.append({"run": run_no + 1, "seconds": seconds, "slices": slices, "connections": connections,
                        **side["app"], "floor": side["floor"],
                        "ratio_to_floor": round(side["app"]["responses_per_second"] /
                                                max(side["floor"]["responses_per_second"], 1e-9), 3)})
    http.close()
    return {"benchmark": "reads", "app_workers": app.workers, "runs": results, "response_bytes": body_bytes,
            "target_ratio_to_floor": TARGET_RATIO}


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's slices as one measurement: responses over the slices' time; latency medians' median, p99s' max."""
    requests_total = sum(p["requests"] for p in parts)
    elapsed = sum(p["elapsed"] for p in parts)
    combined: dict[str, Any] = {"tool": parts[0]["tool"], "requests": requests_total,
                                "responses_per_second": round(requests_total / max(elapsed, 1e-9), 1),
                                "non_2xx": sum(p["non_2xx"] for p in parts),
                                "slice_rates": [p["responses_per_second"] for p in parts]}
    if all("latency_median_ms" in p for p in parts):
        combined["latency_median_ms"] = round(statistics.median(p["latency_median_ms"] for p in parts), 3)
        combined["latency_p99_ms"] = round(max(p["latency_p99_ms"] for p in parts), 3)
    return combined


def summary(result: dict[str, Any]) -> list[str]:
    runs = result["runs"]
    lines = [f"reads: cached GET /api/v1/badges ({result.get('response_bytes', '?')} B) vs the hello-world floor, "
             f"app workers {result['app_workers']} (target ≥ {TARGET_RATIO} × floor)"]
    for r in runs:
        latency = f", latency median {r['latency_median_ms']} / {r['floor'].get('latency_median_ms', '-')} ms, " \
                  f"p99 {r['latency_p99_ms']} / {r['floor'].get('latency_p99_ms', '-')} ms" \
            if "latency_median_ms" in r else ""
        lines.append(f"  run {r['run']} ({r['tool']}, {r['connections']} connections, {r['seconds']} s each in "
                     f"{r.get('slices', 1)} slices): app "
                     f"{r['responses_per_second']}/s, floor {r['floor']['responses_per_second']}/s → "
                     f"{r['ratio_to_floor']}× floor; non-200 {r['non_2xx']} / {r['floor']['non_2xx']}{latency}")
    ratios = [r["ratio_to_floor"] for r in runs]
    lines.append(f"  app / floor: {spread(ratios)}")
    return lines

