"""Overhead (docs/DESIGN.md §9): what the app adds to a badge add beyond a hello-world hop, measured in one run.

One run = `pairs` triples of calls, issued one at a time over keep-alive connections, in random order within
each triple so drift (a noisy neighbour, a GC) hits all three alike:
- direct: `POST {client_endpoint}crm.activity.badge.add` to the sandbox with its own token;
- app: `POST /api/v1/badges` through the app (which makes that same portal call);
- floor: `POST /floor` with the same body and headers to the hello-world floor (bench/floor_app.py: a trivial
  Flask route under the app's own gunicorn configuration), i.e. the bare HTTP hop into gunicorn and Flask.
Each app and direct call creates a new badge.

    added = (app − direct) − (floor − nothing) = app − direct − floor

is the app's own work per badge add beyond the hop that any Flask app under this gunicorn pays. It is reported
from the three distributions' percentiles (added median from the medians, added p99 from the p99s) and, as a
cross-check, as the median / p99 of the per-triple values (noisier: three samples' noise adds up in each).
`hop_ratio` = (app − direct) / floor (medians): the app's hop plus its work as a multiple of the bare hop.
The portal's rate limit is off and the app's B24_RATE is high: this measures the app's own work, not waiting
for the portal's budget (that is bench/ratelimit.py and bench/import_bench.py).
"""
from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import requests

from bench.harness import FLOOR_PATH, App, Harness, describe, percentile, spread

TARGETS = {"added_median_ms": 0.5, "added_p99_ms": 3.0}


def _badge(code: str) -> dict[str, Any]:
    return {"code": code, "title": {"en": "Call status", "de": "Anrufstatus"}, "value": "Missed", "type": "failure"}


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def run(h: Harness, app: App, floor: App, *, pairs: int = 1000, runs: int = 3, warmup: int = 50) -> dict[str, Any]:
    portal = h.installed_portal(rate=None)
    token = h.session_via_api(app, portal)
    chain = h.sandbox.call("issue_tokens", portal["member_id"])
    direct_url = chain["client_endpoint"] + "crm.activity.badge.add"
    app_url = f"{app.url}/api/v1/badges"
    floor_url = f"{floor.url}{FLOOR_PATH}"
    direct_http, app_http, floor_http = requests.Session(), requests.Session(), requests.Session()
    app_http.headers["Authorization"] = floor_http.headers["Authorization"] = f"Bearer {token}"
    rng = random.Random(7)
    counter = 0

    def direct() -> float:
        nonlocal counter
        counter += 1
        started = time.perf_counter()
        response = direct_http.post(direct_url, json={**_badge(f"d{counter}"), "auth": chain["access_token"]},
                                    timeout=30)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or "result" not in response.json():
            raise RuntimeError(f"direct call failed: {response.status_code} {response.text[:200]}")
        return elapsed

    def timed_post(http: requests.Session, url: str, prefix: str, expected: int) -> Callable[[], float]:
        def call() -> float:
            nonlocal counter
            counter += 1
            started = time.perf_counter()
            response = http.post(url, json=_badge(f"{prefix}{counter}"), timeout=30)
            elapsed = time.perf_counter() - started
            if response.status_code != expected:
                raise RuntimeError(f"{url} failed: {response.status_code} {response.text[:200]}")
            return elapsed
        return call

    calls = {"direct": direct, "app": timed_post(app_http, app_url, "a", 201),
             "floor": timed_post(floor_http, floor_url, "f", 200)}
    for _ in range(warmup):
        for call in calls.values():
            call()
    results = []
    for run_no in range(runs):
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(pairs):
            order = list(calls)
            rng.shuffle(order)
            for name in order:
                samples[name].append(calls[name]())
        d, a, f = samples["direct"], samples["app"], samples["floor"]
        triples = [x - y - z for x, y, z in zip(a, d, f, strict=True)]
        med = {name: statistics.median(values) for name, values in samples.items()}
        p99 = {name: percentile(values, 99) for name, values in samples.items()}
        results.append({
            "run": run_no + 1, "direct": describe(d), "app": describe(a), "floor": describe(f),
            "added_median_ms": _ms(med["app"] - med["direct"] - med["floor"]),
            "added_p99_ms": _ms(p99["app"] - p99["direct"] - p99["floor"]),
            "app_minus_direct_median_ms": _ms(med["app"] - med["direct"]),
            "app_minus_direct_p99_ms": _ms(p99["app"] - p99["direct"]),
            "hop_ratio": round((med["app"] - med["direct"]) / med["floor"], 2),
            "triple_added_median_ms": _ms(statistics.median(triples)),
            "triple_added_p99_ms": _ms(percentile(triples, 99)),
            "ratio_median": round(med["app"] / med["direct"], 2),
        })
    for http in (direct_http, app_http, floor_http):
        http.close()
    return {"benchmark": "overhead", "pairs": pairs, "runs": results, "targets": TARGETS,
            "portal_badges": h.sandbox.call("badge_count", portal["member_id"])}



def summary(result: dict[str, Any]) -> list[str]:
    runs = result["runs"]
    lines = [f"overhead: {result['pairs']} triples/run (badge add via app, direct REST, hello-world floor); "
             f"added = app − direct − floor"]
    for r in runs:
        lines.append(f"  run {r['run']}: direct {r['direct']['median_ms']} / {r['direct']['p99_ms']} ms | "
                     f"app {r['app']['median_ms']} / {r['app']['p99_ms']} ms | floor {r['floor']['median_ms']} / "
                     f"{r['floor']['p99_ms']} ms (median / p99) | added median {r['added_median_ms']} ms "
                     f"(target ≤ {TARGETS['added_median_ms']}), p99 {r['added_p99_ms']} ms (target ≤ "
                     f"{TARGETS['added_p99_ms']}) | (app − direct) / floor {r['hop_ratio']}×")
    lines.append(f"  added median {spread([r['added_median_ms'] for r in runs])} ms, "
                 f"added p99 {spread([r['added_p99_ms'] for r in runs])} ms, "
                 f"(app − direct) / floor {spread([r['hop_ratio'] for r in runs])}×")
    return lines
