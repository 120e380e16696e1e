"""Isolation and faults (docs/DESIGN.md §9): what a portal that did nothing wrong sees while another portal
floods, the OAuth server hangs, a refresh is slow or Redis freezes.

The production configuration (2 gunicorn workers × 8 threads, B24_RATE 2/50). Portal B's cheap read
(`GET /api/v1/deals/1/badge`, no portal call) and `/healthz` are measured unloaded, then under each load,
in the same run, from a process of their own; every figure is a ratio to the unloaded one. Loads, for `seconds` each:
- budget: portal A's rate budget is spent (every call would wait ~15 s) and `flood` callers of A keep asking;
- portal_limit: A's portal answers QUERY_LIMIT_EXCEEDED to every badge add, `flood` writers keep trying;
- oauth_hang: app.info answers after 20 s; `garbage` anonymous callers keep posting made-up tokens.
Then the slow refresh (the OAuth server rotates the chain at once and answers 21 s late, callers arriving
throughout) and a frozen Redis (SIGSTOP of a private redis-server under its own deployment).
"""
from __future__ import annotations

import multiprocessing
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from b24app.storage import keys
from bench.harness import App, Harness, describe
from tests.support.load import Sample, bystander, flooding, spend_budget, timed
from tests.support.redis_servers import PrivateRedis


def _session(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def _measure_b(url: str, token_b: str, seconds: float) -> dict[str, Any]:
    api_b = _session(token_b)
    reads: list[Sample] = []
    health: list[Sample] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reads += bystander(lambda: api_b.get(f"{url}/api/v1/deals/1/badge", timeout=60), 0.25)
        health.append(timed(lambda: requests.get(f"{url}/healthz", timeout=60)))
    return {"reads": _stats(reads), "healthz": _stats(health)}


def _stats(samples: list[Sample]) -> dict[str, Any]:
    return {**describe([s for _, s in samples]), "errors": sum(1 for status, _ in samples if not 0 < status < 500)}


def _ratio(loaded: dict[str, Any], unloaded: dict[str, Any]) -> dict[str, Any]:
    return {name: {"p99_ratio": round(loaded[name]["p99_ms"] / max(unloaded[name]["p99_ms"], 0.001), 2),
                   "p99_ms": loaded[name]["p99_ms"], "errors": loaded[name]["errors"]} for name in ("reads", "healthz")}


def _flood_outcome(samples: list[Sample]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for status, _ in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    shed = [seconds for status, seconds in samples if status == 503]
    return {"answers": len(samples), "statuses": statuses,
            "shed_median_ms": round(statistics.median(shed) * 1e3, 1) if shed else None}


def run(h: Harness, *, seconds: float = 10, flood: int = 150, garbage: int = 20, slow: bool = True) -> dict[str, Any]:
    app = h.start_app("isolation", workers=2, threads=8, B24_RATE="2/50")
    portal_b, portal_a = h.installed_portal(rate=None), h.installed_portal(rate=None)
    token_b = h.session_token(portal_b["member_id"], portal_b["domain"])
    api_a = _session(h.session_token(portal_a["member_id"], portal_a["domain"]))
    # Portal B is timed from a process of its own, started before any load: B's users are not in the flood's
    # process, and the time a caller waits there for the GIL, among the flood's threads, is not the app's.
    with multiprocessing.get_context("spawn").Pool(1) as b_process:
        b_process.apply(time.monotonic)  # the process is up, this module imported, before any load starts
        result = _loads(h, app, api_a, lambda: b_process.apply(_measure_b, (app.url, token_b, seconds)), portal_a,
                        portal_b, flood, garbage)
    if slow:
        result["slow_refresh"] = _slow_refresh(h, app)
        result["frozen_redis"] = _frozen_redis(h)
    return result


def _loads(h: Harness, app: App, api_a: requests.Session, measure: Callable[[], dict[str, Any]],
           portal_a: dict[str, Any], portal_b: dict[str, Any], flood: int, garbage: int) -> dict[str, Any]:
    unloaded = measure()
    result: dict[str, Any] = {"benchmark": "isolation", "workers": 2, "threads": 8, "unloaded": unloaded}

    spend_budget(h.redis, portal_a["member_id"], 15)
    with flooding([lambda: api_a.get(f"{app.url}/api/v1/badges/x", timeout=60)] * flood) as samples:
        loaded = measure()
    result["budget"] = {**_ratio(loaded, unloaded), "flood": _flood_outcome(samples)}
    h.redis.delete(keys.rate(portal_a["member_id"]))

    h.sandbox.call("add_fault", portal_a["member_id"], "crm.activity.badge.add", "error", count=1_000_000,
                   error="QUERY_LIMIT_EXCEEDED", status=503, description="Too many requests")
    writes = [lambda i=i: api_a.post(f"{app.url}/api/v1/badges", timeout=60, json={
        "code": f"f{i}x{secrets.token_hex(3)}", "title": "t", "value": "v", "type": "success"}) for i in range(flood)]
    with flooding(writes) as samples:
        loaded = measure()
    result["portal_limit"] = {**_ratio(loaded, unloaded), "flood": _flood_outcome(samples)}
    h.sandbox.call("clear_faults")

    h.sandbox.call("add_fault", None, "oauth.app.info", "delay", count=1_000_000, seconds=20)
    anonymous = [lambda: requests.post(f"{app.url}/api/v1/session", timeout=60, json={
        "AUTH_ID": secrets.token_hex(35), "member_id": portal_b["member_id"], "DOMAIN": portal_b["domain"]})
        for _ in range(garbage)]
    with flooding(anonymous) as samples:
        loaded = measure()
    result["oauth_hang"] = {**_ratio(loaded, unloaded), "flood": _flood_outcome(samples)}
    h.sandbox.call("clear_faults")
    return result


def _slow_refresh(h: Harness, app: App) -> dict[str, Any]:
    portal = h.installed_portal(rate=None)
    api = _session(h.session_token(portal["member_id"], portal["domain"]))
    h.sandbox.call("expire_tokens", portal["member_id"])
    h.sandbox.call("add_fault", portal["member_id"], "oauth.token.refresh_token", "delay", seconds=21)
    answers: dict[str, Sample] = {}

    def caller(at: float) -> None:
        time.sleep(at)
        answers[f"{at:g}s"] = timed(lambda: api.get(f"{app.url}/api/v1/badges/x", timeout=90))

    threads = [threading.Thread(target=caller, args=(at,)) for at in (0.0, 3.0, 12.0, 18.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = timed(lambda: api.get(f"{app.url}/api/v1/badges/x", timeout=30))
    oauth = h.sandbox.call("portal_counters", [portal["member_id"]])[portal["member_id"]]["oauth"]
    return {"callers": {at: {"status": s, "seconds": round(t, 2)} for at, (s, t) in answers.items()},
            "after": after[0], "refresh_ok": oauth["refresh_ok"], "refresh_failed": oauth["refresh_failed"]}


def _frozen_redis(h: Harness) -> dict[str, Any]:
    data = h.results / "frozen-redis"
    data.mkdir(exist_ok=True)
    private = PrivateRedis(Path(data))
    private.start()
    try:
        app = h.start_app("frozen", workers=2, threads=8, REDIS_URL=private.url)
        member_id = secrets.token_hex(16)  # the first thing each route asks Redis is about this portal
        api = _session(h.session_token(member_id, "frozen.example.com"))
        calls = {"readyz": lambda: requests.get(f"{app.url}/readyz", timeout=30),
                 "api": lambda: api.get(f"{app.url}/api/v1/badges", timeout=30),
                 "events": lambda: requests.post(f"{app.url}/events", timeout=30, data={
                     "event": "ONAPPUNINSTALL", "auth[member_id]": member_id, "auth[application_token]": "x"})}
        private.freeze()
        try:
            frozen = {name: timed(call) for name, call in calls.items()}
        finally:
            private.thaw()
        started = time.monotonic()
        while timed(calls["readyz"])[0] != 200 and time.monotonic() - started < 30:
            time.sleep(0.1)
        recovered = time.monotonic() - started
        app.stop()
        return {"frozen": {name: {"status": s, "seconds": round(t, 2)} for name, (s, t) in frozen.items()},
                "recovered_seconds": round(recovered, 2)}
    finally:
        private.stop()


def summary(result: dict[str, Any]) -> list[str]:
    unloaded = result["unloaded"]
    lines = [f"isolation: portal B's read p99 {unloaded['reads']['p99_ms']} ms, /healthz p99 "
             f"{unloaded['healthz']['p99_ms']} ms unloaded (2 workers × 8 threads); under load (target: "
             "p99 ≤ 2 × unloaded and ≤ 1 s):"]
    for load in ("budget", "portal_limit", "oauth_hang"):
        r = result[load]
        lines.append(f"  {load}: reads p99 {r['reads']['p99_ms']} ms ({r['reads']['p99_ratio']}×), /healthz p99 "
                     f"{r['healthz']['p99_ms']} ms ({r['healthz']['p99_ratio']}×), errors {r['reads']['errors']}; "
                     f"the flood: {r['flood']}")
    if "slow_refresh" in result:
        lines.append(f"  slow refresh (21 s): {result['slow_refresh']}")
        lines.append(f"  frozen redis: {result['frozen_redis']}")
    return lines
