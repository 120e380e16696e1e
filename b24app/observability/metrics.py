"""Prometheus metrics (docs/DESIGN.md §4 `GET /metrics`, §10), aggregated across every gunicorn worker.

Under gunicorn the master sets `PROMETHEUS_MULTIPROC_DIR` before anything imports prometheus-client
(see gunicorn.conf.py); every worker then writes its samples to memory-mapped files there and
`/metrics` sums the files of all workers, dead ones included (counters never go backwards when a
worker is recycled). Without that variable (tests, `flask run`, the CLI) the metrics live in this
process and `/metrics` shows them directly.

Label values are bounded and carry no secrets: HTTP routes are Flask URL rules (`/api/v1/badges/<raw_code>`,
never a raw path with an id), portal methods are the method names the app itself calls, and outcomes are
`ok` or an error code the REST client knows (bitrix/errors.py `outcome_label`; anything else is `OTHER`).
No member_id, domain or token is ever a label value.

Defined here: HTTP requests (count and latency by route and status; recorded by web/metrics.py), portal
REST calls (by method and outcome, with latency), OAuth token refreshes, rate-limiter decisions and waits,
and the badge-list cache. Nothing here knows Flask.
"""
from __future__ import annotations

import os
import re
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "<unmatched>"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_METHOD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,79}")

# Our own registry: the metrics of this process (single-process mode). In multiprocess mode the values
# are written to files whatever the registry, and `render()` collects the files instead.
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "b24_http_requests", "HTTP requests served, by route (Flask URL rule), method and status.",
    ["route", "method", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "b24_http_request_duration_seconds", "Time to serve an HTTP request, by route, method and status.",
    ["route", "method", "status"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
PORTAL_CALLS = Counter(
    "b24_portal_calls", "Logical Bitrix24 REST calls (retries and refreshes included), by method and outcome "
    "(`ok` or the error code).", ["method", "outcome"], registry=REGISTRY)
PORTAL_LATENCY = Histogram(
    "b24_portal_call_duration_seconds", "Time of a logical Bitrix24 REST call, limiter waits included, by method.",
    ["method"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
TOKEN_REFRESHES = Counter(
    "b24_token_refreshes", "OAuth refresh-token grants this app made, by outcome (ok or failed).",
    ["outcome"], registry=REGISTRY)
LIMITER_ACQUIRES = Counter(
    "b24_limiter_acquires", "Per-portal rate-limiter decisions: immediate, waited, paused (the method's "
    "operating-time budget asks for a pause first), or timeout (no capacity within the wait budget → 503 "
    "QUERY_LIMIT_EXCEEDED).", ["outcome"], registry=REGISTRY)
LIMITER_WAITS = Histogram(
    "b24_limiter_wait_seconds", "Seconds a call waited before it was sent: `rate` for the per-portal request "
    "bucket, `operating` for the per-method operating-time budget. Only waits > 0 are observed.",
    ["limit"], buckets=_WAIT_BUCKETS, registry=REGISTRY)
BULKHEAD_SHED = Counter(
    "b24_bulkhead_shed", "Calls answered 503 at once because their portal already had its share of this "
    "process's threads waiting (for a rate slot, a retry, a refresh or a verification).", ["reason"],
    registry=REGISTRY)
BADGE_CACHE = Counter(
    "b24_badge_list_cache", "Badge-list reads answered from the per-portal cache (hit) or the portal (miss).",
    ["result"], registry=REGISTRY)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """The exposition text: summed over every worker in multiprocess mode, this process otherwise."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# -- labelled children, looked up once ------------------------------------------------------------

_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def _child(metric: Counter | Histogram, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: prometheus-client's own lookup converts, validates and locks on
    every call (≈ 10 µs, several per request; docs/PERFORMANCE.md). The same child object either way, so
    multiprocess mode and forked workers behave as before. Label values are bounded (see the module docstring),
    and so is this dict."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


# -- label hygiene ---------------------------------------------------------------------------------

def method_label(method: str) -> str:
    return method if _METHOD_RE.fullmatch(method or "") else "other"


# -- hooks called by the app -----------------------------------------------------------------------

def observe_portal_call(method: str, outcome: str, seconds: float | None = None) -> None:
    """The `PortalClient` observer: one logical call finished with `outcome` (already a bounded label)."""
    name = method_label(method)
    _child(PORTAL_CALLS, name, outcome).inc()
    if seconds is not None:
        _child(PORTAL_LATENCY, name).observe(max(0.0, seconds))


def token_refresh(ok: bool) -> None:
    _child(TOKEN_REFRESHES, "ok" if ok else "failed").inc()


def badge_cache(hit: bool) -> None:
    _child(BADGE_CACHE, "hit" if hit else "miss").inc()


def limiter_wait(limit: str, seconds: float) -> None:
    if seconds > 0:
        _child(LIMITER_WAITS, limit).observe(seconds)


def bulkhead_shed(reason: str) -> None:
    _child(BULKHEAD_SHED, reason).inc()


def limiter_decision(outcome: str) -> None:
    """immediate, waited, paused or timeout (see LIMITER_ACQUIRES)."""
    _child(LIMITER_ACQUIRES, outcome).inc()


def http_request(route: str, method: str, status: int, seconds: float | None) -> None:
    """One served request; `route` is the URL rule, never the raw path."""
    method = method if method in _HTTP_METHODS else "other"
    code = str(status)
    _child(HTTP_REQUESTS, route, method, code).inc()
    if seconds is not None:
        _child(HTTP_LATENCY, route, method, code).observe(seconds)
