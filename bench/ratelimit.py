"""Rate limit (docs/DESIGN.md §9): importing badges into a 2 rps / burst 50 portal, compared in one run.

Each variant gets its own fresh portal on the same sandbox (limit 2 rps, burst 50, bucket empty):
- app: POST /api/v1/badges/import through the app under gunicorn (B24_RATE 2/50, batch of 50, shared limiter);
- app ×4: four processes importing at once into one portal;
- naive: one crm.activity.badge.add per badge, straight at the portal, sleeping 0.5 s and retrying on 503;
- fast_bitrix24: its `Bitrix(webhook).call("crm.activity.badge.add", items)` through the portal's webhook URL
  (/rest/<user>/<code>/), once and with four processes.
Reported: portal HTTP requests used, 503 QUERY_LIMIT_EXCEEDED answered by the portal (and reaching the user),
badges created, wall time, and the minimum time the limit allows for that many requests:
max(0, (requests - burst) / rps).
The naive way needs one request per badge, so it cannot take less than (N - burst) / rps seconds; its runs
are capped (`naive_cap` seconds) and report how far they got.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.harness import App, Harness

RATE = (2, 50)


def _items(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"code": f"{prefix}{i}", "title": f"Imported {i}", "value": str(i), "type": "primary"}
            for i in range(count)]


def _min_seconds(requests_used: int) -> float:
    return round(max(0.0, (requests_used - RATE[1]) / RATE[0]), 2)


def _portal_usage(h: Harness, member_id: str, before: dict[str, Any]) -> dict[str, int]:
    after = h.sandbox.call("portal_counters", [member_id])[member_id]
    return {"portal_requests": after.get("requests_total", 0) - before.get("requests_total", 0),
            "portal_503": after.get("rate_limited", 0) - before.get("rate_limited", 0)}


def _app_import(url: str, token: str, items: list[dict[str, Any]], start_at: float) -> dict[str, Any]:
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    response = requests.post(f"{url}/api/v1/badges/import", json={"badges": items}, timeout=600,
                             headers={"Authorization": f"Bearer {token}"})
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    results = body.get("results", [])
    return {"status": response.status_code, "ok": sum(1 for r in results if r.get("ok")),
            "errors": sorted({r.get("error") for r in results if not r.get("ok")} - {None}),
            "started": started, "finished": time.time()}


def _naive(endpoint: str, access_token: str, items: list[dict[str, Any]], start_at: float, cap: float) -> dict:
    time.sleep(max(0.0, start_at - time.time()))
    http = requests.Session()
    created = retries = 0
    started = time.time()
    for item in items:
        while time.time() - started < cap:
            response = http.post(endpoint + "crm.activity.badge.add", json={**item, "auth": access_token}, timeout=60)
            if response.status_code == 503:
                retries += 1
                time.sleep(0.5)
                continue
            created += response.status_code == 200
            break
        if time.time() - started >= cap:
            break
    return {"created": created, "retries_on_503": retries, "started": started, "finished": time.time(),
            "capped": created < len(items)}


def _fast_bitrix24(webhook: str, items: list[dict[str, Any]], start_at: float) -> dict[str, Any]:
    from fast_bitrix24 import Bitrix

    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    error = ""
    try:
        # fast_bitrix24 runs its own event loop (asyncio.run), which a thread of our own always lets it do,
        # even when the caller's thread already runs one (a test session with Playwright, say).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(Bitrix(webhook, verbose=False).call, "crm.activity.badge.add", items).result()
    except Exception as exc:  # reported, not raised: the comparison goes on
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    return {"started": started, "finished": time.time(), "error": error}


def _parallel(target: Any, argument_sets: list[tuple]) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(argument_sets)) as pool:
        pending = [pool.apply_async(target, args) for args in argument_sets]
        return [p.get(timeout=1800) for p in pending]


def _variant(h: Harness, name: str, badges: int, outcomes: list[dict[str, Any]], member_id: str,
             before: dict[str, Any], **extra: Any) -> dict[str, Any]:
    usage = _portal_usage(h, member_id, before)
    seconds = max(o["finished"] for o in outcomes) - min(o["started"] for o in outcomes)
    return {"variant": name, "badges": badges, "created": h.sandbox.call("badge_count", member_id),
            "seconds": round(seconds, 2), "min_seconds_for_requests_used": _min_seconds(usage["portal_requests"]),
            **usage, **extra}


def run(h: Harness, app: App, *, badges: int = 500, processes: int = 4, naive_cap: float = 300.0,
        naive_parallel_cap: float = 120.0) -> dict[str, Any]:
    variants = []

    def fresh() -> tuple[dict[str, Any], dict[str, Any]]:
        portal = h.installed_portal(rate=RATE)
        before = h.sandbox.call("portal_counters", [portal["member_id"]])[portal["member_id"]]
        return portal, before

    # the app, one import
    portal, before = fresh()
    token = h.session_token(portal["member_id"], portal["domain"])
    outcome = _app_import(app.url, token, _items("imp", badges), time.time())
    variants.append(_variant(h, "app", badges, [outcome], portal["member_id"], before, http_status=outcome["status"],
                             item_errors=outcome["errors"], user_503=int(outcome["status"] == 503)))
    # the app, several processes into one portal
    portal, before = fresh()
    token = h.session_token(portal["member_id"], portal["domain"])
    start_at = time.time() + 2
    outcomes = _parallel(_app_import, [(app.url, token, _items(f"p{k}x", badges), start_at) for k in range(processes)])
    variants.append(_variant(h, f"app x{processes} processes", badges * processes, outcomes, portal["member_id"],
                             before, http_statuses=sorted({o["status"] for o in outcomes}),
                             item_errors=sorted({e for o in outcomes for e in o["errors"]}),
                             user_503=sum(o["status"] == 503 for o in outcomes)))
    # fast_bitrix24 through the webhook URL form
    portal, before = fresh()
    webhook = h.sandbox.call("create_webhook", portal["member_id"])
    outcome = _fast_bitrix24(webhook, _items("fb", badges), time.time())
    variants.append(_variant(h, "fast_bitrix24", badges, [outcome], portal["member_id"], before,
                             error=outcome["error"]))
    portal, before = fresh()
    webhook = h.sandbox.call("create_webhook", portal["member_id"])
    start_at = time.time() + 2
    outcomes = _parallel(_fast_bitrix24, [(webhook, _items(f"f{k}x", badges), start_at) for k in range(processes)])
    variants.append(_variant(h, f"fast_bitrix24 x{processes} processes", badges * processes, outcomes,
                             portal["member_id"], before, errors=sorted({o["error"] for o in outcomes} - {""})))
    # the naive way: one add per badge, retry on 503
    portal, before = fresh()
    chain = h.sandbox.call("issue_tokens", portal["member_id"])
    outcome = _naive(chain["client_endpoint"], chain["access_token"], _items("nv", badges), time.time(), naive_cap)
    variants.append(_variant(h, "naive", badges, [outcome], portal["member_id"], before,
                             capped=outcome["capped"], floor_seconds=_min_seconds(badges)))
    portal, before = fresh()
    chain = h.sandbox.call("issue_tokens", portal["member_id"])
    start_at = time.time() + 2
    outcomes = _parallel(_naive, [(chain["client_endpoint"], chain["access_token"], _items(f"n{k}x", badges), start_at,
                                   naive_parallel_cap) for k in range(processes)])
    variants.append(_variant(h, f"naive x{processes} processes", badges * processes, outcomes, portal["member_id"],
                             before, capped=any(o["capped"] for o in outcomes),
                             floor_seconds=_min_seconds(badges * processes)))
    return {"benchmark": "rate_limit", "rate": RATE, "variants": variants,
            "targets": {"app_portal_requests_per_500": 12, "user_503": 0}}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"rate limit: portal {result['rate'][0]} rps / burst {result['rate'][1]}"]
    for v in result["variants"]:
        extra = " (capped: stopped early)" if v.get("capped") else ""
        lines.append(f"  {v['variant']:<28} {v['created']}/{v['badges']} badges in {v['seconds']} s{extra}; "
                     f"portal requests {v['portal_requests']}, portal 503s {v['portal_503']}, "
                     f"minimum time for those requests {v['min_seconds_for_requests_used']} s"
                     + (f", 503s reaching the user {v['user_503']}" if "user_503" in v else "")
                     + (f", floor for one-add-per-badge {v['floor_seconds']} s" if "floor_seconds" in v else ""))
    return lines
