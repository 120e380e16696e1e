"""Overhead (docs/DESIGN.md §9): a badge add through the app vs. a direct crm.activity.badge.add to the sandbox.

One run = `pairs` pairs of calls, issued one at a time over keep-alive connections: a direct REST call
(`POST {client_endpoint}crm.activity.badge.add` with its own token) and `POST /api/v1/badges` through
the app, in random order within each pair so drift (a noisy neighbour, a GC) hits both alike. Each
call creates a new badge. Added ms = app − direct, reported as the difference of the two
distributions' percentiles (median, p99) and as the median / p99 of the per-pair differences.
The portal's rate limit is off and the app's B24_RATE is high: this measures the app's own work,
not waiting for the portal's budget (that is bench/ratelimit.py).
"""
from __future__ import annotations

import random
import statistics
import time
from typing import Any

import requests

from bench.harness import App, Harness, describe, percentile


def _badge(code: str) -> dict[str, Any]:
    return {"code": code, "title": {"en": "Call status", "de": "Anrufstatus"}, "value": "Missed", "type": "failure"}


def run(h: Harness, app: App, *, pairs: int = 1000, runs: int = 3, warmup: int = 50) -> dict[str, Any]:
    portal = h.installed_portal(rate=None)
    token = h.session_via_api(app, portal)
    chain = h.sandbox.call("issue_tokens", portal["member_id"])
    direct_url = chain["client_endpoint"] + "crm.activity.badge.add"
    app_url = f"{app.url}/api/v1/badges"
    direct_http, app_http = requests.Session(), requests.Session()
    app_http.headers["Authorization"] = f"Bearer {token}"
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

    def through_app() -> float:
        nonlocal counter
        counter += 1
        started = time.perf_counter()
        response = app_http.post(app_url, json=_badge(f"a{counter}"), timeout=30)
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"app call failed: {response.status_code} {response.text[:200]}")
        return elapsed

    for _ in range(warmup):
        direct()
        through_app()
    results = []
    for run_no in range(runs):
        d_samples, a_samples, diffs = [], [], []
        for _ in range(pairs):
            if rng.random() < 0.5:
                d, a = direct(), through_app()
            else:
                a, d = through_app(), direct()
            d_samples.append(d)
            a_samples.append(a)
            diffs.append(a - d)
        results.append({
            "run": run_no + 1, "direct": describe(d_samples), "app": describe(a_samples),
            "added_median_ms": round((statistics.median(a_samples) - statistics.median(d_samples)) * 1e3, 3),
            "added_p99_ms": round((percentile(a_samples, 99) - percentile(d_samples, 99)) * 1e3, 3),
            "paired_diff_median_ms": round(statistics.median(diffs) * 1e3, 3),
            "paired_diff_p99_ms": round(percentile(diffs, 99) * 1e3, 3),
            "ratio_median": round(statistics.median(a_samples) / statistics.median(d_samples), 2),
        })
    direct_http.close()
    app_http.close()
    return {"benchmark": "overhead", "pairs": pairs, "runs": results,
            "targets": {"added_median_ms": 3.0, "added_p99_ms": 15.0},
            "portal_badges": h.sandbox.call("badge_count", portal["member_id"])}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"overhead: {result['pairs']} pairs/run (badge add via app vs direct REST)"]
    for r in result["runs"]:
        lines.append(f"  run {r['run']}: direct median {r['direct']['median_ms']} ms p99 {r['direct']['p99_ms']} ms | "
                     f"app median {r['app']['median_ms']} ms p99 {r['app']['p99_ms']} ms | added median "
                     f"{r['added_median_ms']} ms (target ≤ 3), p99 {r['added_p99_ms']} ms (target ≤ 15), "
                     f"ratio {r['ratio_median']}")
    return lines
