"""Import (docs/DESIGN.md §9): 5,000 badges into a portal limited to 2 rps / burst 50, next to fast_bitrix24.

Each run, on fresh portals of the same sandbox (limit 2 rps, burst 50, bucket empty):
- app: the client sends `chunks` sequential `POST /api/v1/badges/import` of `chunk` badges each (the UI imports
  a file this way, showing progress per chunk; the API takes at most 500 per request, MAX_IMPORT in
  b24app/badges/service.py) to the "limited" deployment (B24_RATE 2/50); the app sends each chunk through
  `batch`, 50 badges per portal request, under its shared Redis limiter;
- fast_bitrix24: `Bitrix(webhook).call("crm.activity.badge.add", items)` with all the badges at once, in its own
  venv (.peers-venv, bench/fast_bitrix24_import.py, a subprocess), through the portal's webhook URL.
Reported: wall time, badges created, portal HTTP requests and portal 503s (the portal's own counters), what
reached the caller (HTTP 503s, items failed with QUERY_LIMIT_EXCEEDED), each chunk's time, and the ratio to
the limit's minimum time for the badges' batches: 100 batches → the first 50 at once, the other 50 at 2/s →
25 s (target ≤ 1.1 ×). The minimum for the requests actually used is given too: any request beyond the
batches (a retry, or the robots' re-registration after a catalogue change, b24app/portals/binding.py) costs 0.5 s.
The app's side of the bucket (`b24:rate:{M}`) is cleared with the portal's, so both start empty.
"""
from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from b24app.storage import keys
from bench.harness import ROOT, App, Harness, spread

RATE = (2, 50)
BATCH = 50
PEERS_PYTHON = ROOT / ".peers-venv" / "bin" / "python"
TARGET_RATIO = 1.1


def min_seconds(requests_used: int) -> float:
    """The least time the portal's limit allows for that many requests: the burst at once, then `rps`."""
    return round(max(0.0, (requests_used - RATE[1]) / RATE[0]), 2)


def _items(prefix: str, start: int, count: int) -> list[dict[str, Any]]:
    return [{"code": f"{prefix}{i}", "title": f"Imported {i}", "value": str(i), "type": "primary"}
            for i in range(start, start + count)]


def _fresh(h: Harness) -> tuple[dict[str, Any], dict[str, Any]]:
    portal = h.installed_portal(rate=RATE)  # setting the rate empties the portal's bucket
    h.redis.delete(keys.rate(portal["member_id"]))  # and ours
    before = h.sandbox.call("portal_counters", [portal["member_id"]])[portal["member_id"]]
    return portal, before


def _usage(h: Harness, member_id: str, before: dict[str, Any], settle: float = 2.0) -> dict[str, int]:
    """Portal requests and 503s since `before`, counted after `settle` seconds, so that background work the
    import caused (the robots' re-registration) is counted too."""
    time.sleep(settle)
    after = h.sandbox.call("portal_counters", [member_id])[member_id]
    return {"portal_requests": after.get("requests_total", 0) - before.get("requests_total", 0),
            "portal_503": after.get("rate_limited", 0) - before.get("rate_limited", 0)}


def _judge(seconds: float, badges: int, usage: dict[str, int]) -> dict[str, Any]:
    floor = min_seconds(math.ceil(badges / BATCH))
    return {"seconds": round(seconds, 2), "min_seconds_for_batches": floor,
            "ratio_to_min": round(seconds / floor, 3) if floor else None,
            "min_seconds_for_requests_used": min_seconds(usage["portal_requests"]), **usage}


def app_import(h: Harness, app: App, *, chunks: int, chunk: int) -> dict[str, Any]:
    portal, before = _fresh(h)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {h.session_token(portal['member_id'], portal['domain'])}"
    chunk_seconds: list[float] = []
    statuses: list[int] = []
    ok = limited = 0
    errors: dict[str, int] = {}
    started = time.perf_counter()
    for n in range(chunks):
        sent = time.perf_counter()
        response = http.post(f"{app.url}/api/v1/badges/import", json={"badges": _items("imp", n * chunk, chunk)},
                             timeout=600)
        chunk_seconds.append(round(time.perf_counter() - sent, 3))
        statuses.append(response.status_code)
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code != 200:
            code = str(body.get("error", response.status_code))
            errors[code] = errors.get(code, 0) + 1
            limited += code == "QUERY_LIMIT_EXCEEDED"
        for result in body.get("results", []):
            if result.get("ok"):
                ok += 1
            else:
                errors[result.get("error", "?")] = errors.get(result.get("error", "?"), 0) + 1
                limited += result.get("error") == "QUERY_LIMIT_EXCEEDED"
    seconds = time.perf_counter() - started
    http.close()
    badges = chunks * chunk
    usage = _usage(h, portal["member_id"], before)
    result = {"variant": f"app ({chunks} × {chunk})", "badges": badges, "ok": ok,
              "created": h.sandbox.call("badge_count", portal["member_id"]), "http_statuses": sorted(set(statuses)),
              "query_limit_exceeded_to_caller": limited, "errors": errors, "chunk_seconds": chunk_seconds,
              **_judge(seconds, badges, usage)}
    h.sandbox.call("remove_portals", [portal["member_id"]])
    return result


def fast_bitrix24_import(h: Harness, *, badges: int) -> dict[str, Any]:
    portal, before = _fresh(h)
    webhook = h.sandbox.call("create_webhook", portal["member_id"])
    config = json.dumps({"webhook": webhook, "count": badges, "prefix": "fb"})
    if not PEERS_PYTHON.exists():
        return {"variant": "fast_bitrix24", "badges": badges, "error": f"{PEERS_PYTHON} not found (make peers)"}
    started = time.perf_counter()
    done = subprocess.run([str(PEERS_PYTHON), str(Path(__file__).with_name("fast_bitrix24_import.py"))],
                          input=config, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    answer = json.loads(lines[-1]) if lines else {"error": f"exit {done.returncode}: {done.stderr[-500:]}"}
    usage = _usage(h, portal["member_id"], before)
    seconds = float(answer.get("seconds") or wall)
    result = {"variant": f"fast_bitrix24 {answer.get('version', '?')}", "badges": badges,
              "created": h.sandbox.call("badge_count", portal["member_id"]), "error": answer.get("error", ""),
              "process_seconds": round(wall, 2), **_judge(seconds, badges, usage)}
    h.sandbox.call("remove_portals", [portal["member_id"]])
    return result


def run(h: Harness, app: App, *, chunks: int = 10, chunk: int = 500, runs: int = 2) -> dict[str, Any]:
    """`app`: a deployment with B24_RATE 2/50 (run_all's "limited")."""
    results = []
    for run_no in range(runs):
        pair = [app_import(h, app, chunks=chunks, chunk=chunk), fast_bitrix24_import(h, badges=chunks * chunk)]
        if run_no % 2:
            pair.reverse()
        results.append({"run": run_no + 1, "variants": pair})
    return {"benchmark": "import", "rate": RATE, "badges": chunks * chunk, "chunks": chunks, "chunk": chunk,
            "target_ratio_to_min": TARGET_RATIO, "runs": results}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"import: {result['badges']} badges into a {result['rate'][0]} rps / burst {result['rate'][1]} portal; "
             f"app as {result['chunks']} sequential requests of {result['chunk']} (target ≤ "
             f"{result['target_ratio_to_min']} × the limit's minimum for the batches, 0 QUERY_LIMIT_EXCEEDED to the "
             f"caller)"]
    by_variant: dict[str, list[float]] = {}
    for run in result["runs"]:
        for v in run["variants"]:
            if "seconds" not in v:
                lines.append(f"  run {run['run']} {v['variant']}: {v.get('error')}")
                continue
            by_variant.setdefault(v["variant"].split(" ")[0], []).append(v["ratio_to_min"] or 0.0)
            extra = (f", QUERY_LIMIT_EXCEEDED to the caller {v['query_limit_exceeded_to_caller']}, chunks "
                     f"{min(v['chunk_seconds'])}–{max(v['chunk_seconds'])} s") if "chunk_seconds" in v else ""
            error = f", error {v['error']}" if v.get("error") else ""
            lines.append(f"  run {run['run']} {v['variant']:<22} {v['created']}/{v['badges']} created in "
                         f"{v['seconds']} s "
                         f"= {v['ratio_to_min']}× the minimum {v['min_seconds_for_batches']} s; portal requests "
                         f"{v['portal_requests']} (minimum for those {v['min_seconds_for_requests_used']} s), portal "
                         f"503s {v['portal_503']}{extra}{error}")
    for name, ratios in by_variant.items():
        lines.append(f"  {name}: time / minimum {spread(ratios)}")
    return lines
