"""Refresh storm (docs/DESIGN.md §9): N portals whose access tokens all expired, hit at once through the app.

Setup: N portals with the app installed and a token chain each (seeded in the sandbox process and saved
through the real RedisInstallationStore), then the sandbox clock jumps one hour so every access token is
dead. Load: `processes` client processes × `threads` threads call GET /api/v1/badges for every portal;
each portal is in the share of two processes, which walk it in the same order, so two callers in two
processes usually hit an expired portal at the same moment (and the app's 2+ workers serve them).
Checks: OAuth refreshes counted at the sandbox per portal (exactly one each), failed requests, portals lost
(not `active` afterwards, or a failed refresh).
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import requests

from b24app.storage.installations import RedisInstallationStore
from bench.harness import App, Harness, describe


def _client(url: str, work: list[tuple[str, str]], threads: int, start_at: float) -> dict[str, Any]:
    lock = threading.Lock()
    queue = list(reversed(work))
    latencies: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        http = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                _member, token = queue.pop()
            started = time.perf_counter()
            try:
                response = http.get(f"{url}/api/v1/badges", headers={"Authorization": f"Bearer {token}"}, timeout=60)
                ok = response.status_code == 200
                detail = f"{response.status_code} {response.text[:120]}"
            except requests.RequestException as exc:
                ok, detail = False, f"{type(exc).__name__}"
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if not ok:
                    failures.append(detail)

    time.sleep(max(0.0, start_at - time.time()))
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"latencies": latencies, "failures": failures, "finished": time.time()}


def run(h: Harness, app: App | list[App], *, portals: int = 1000, processes: int = 4, threads: int = 8,
        runs: int = 1, store: RedisInstallationStore | None = None) -> dict[str, Any]:
    """`app` may be several deployments: client processes 0 and 1 go to the first, 2 and 3 to the next, …, so
    each portal is asked through two of them at once. `store` is where the deployments keep their portals
    (the harness's Redis by default)."""
    apps = app if isinstance(app, list) else [app]
    store = store or h.store()
    results = []
    for run_no in range(runs):
        seeded = h.sandbox.call("seed_installed", portals)
        h.save_seeded(seeded, store)
        h.sandbox.call("advance_clock", 3601)  # every access token of every portal is now expired
        members = [s["member_id"] for s in seeded]
        tokens = {s["member_id"]: h.session_token(s["member_id"], s["domain"], is_admin=False) for s in seeded}
        before = h.sandbox.call("portal_counters", members)
        start_at = time.time() + 2.0
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            shares = [[(m, tokens[m]) for m in members[i % 2::2]] for i in range(processes)]
            async_results = [pool.apply_async(_client, (apps[(i // 2) % len(apps)].url, share, threads, start_at))
                             for i, share in enumerate(shares)]
            outcomes = [r.get(timeout=600) for r in async_results]
        elapsed = max(o["finished"] for o in outcomes) - start_at
        after = h.sandbox.call("portal_counters", members)
        refreshes = {m: after[m].get("oauth", {}).get("refresh_ok", 0) - before[m].get("oauth", {}).get("refresh_ok", 0)
                     for m in members}
        refresh_failed = sum(after[m].get("oauth", {}).get("refresh_failed", 0) for m in members)
        lost = [m for m in members if (record := store.get(m)) is None or record.state != "active"]
        latencies = [x for o in outcomes for x in o["latencies"]]
        failures = [f for o in outcomes for f in o["failures"]]
        results.append({
            "run": run_no + 1, "portals": portals, "requests": len(latencies), "seconds": round(elapsed, 2),
            "requests_per_second": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
            "latency": describe(latencies), "failed_requests": len(failures), "failures_sample": failures[:5],
            "portals_with_exactly_one_refresh": sum(1 for n in refreshes.values() if n == 1),
            "refresh_counts_seen": sorted(set(refreshes.values())), "refreshes_total": sum(refreshes.values()),
            "refresh_failed": refresh_failed, "portals_lost": len(lost),
        })
        h.sandbox.call("remove_portals", members)
    return {"benchmark": "refresh_storm", "processes": processes, "threads": threads, "runs": results,
            "app_workers": sum(a.workers for a in apps), "deployments": len(apps)}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"refresh storm: {result['processes']} processes × {result['threads']} threads, "
             f"app workers {result['app_workers']}"]
    for r in result["runs"]:
        lines.append(f"  run {r['run']}: {r['portals']} expired portals, {r['requests']} requests in {r['seconds']} s; "
                     f"refreshes {r['refreshes_total']} (exactly one: {r['portals_with_exactly_one_refresh']}), "
                     f"failed requests {r['failed_requests']}, refresh failures {r['refresh_failed']}, "
                     f"portals lost {r['portals_lost']}; latency median {r['latency']['median_ms']} ms "
                     f"p99 {r['latency']['p99_ms']} ms")
    return lines
