"""Counters of everything the sandbox received and sent, for tests to assert on.

Per portal: HTTP requests per (top-level) method, method executions including batch sub-calls,
HTTP statuses, 503s and 429s issued. OAuth server: token requests by grant type, refreshes that
succeeded or failed, code exchanges, app.info calls. Events delivered (and failed) by event name.
"""
from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any


class Counters:
    """Thread-safe counters with a JSON snapshot and a reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, Counter[str]] = defaultdict(Counter)
            self._calls: dict[str, Counter[str]] = defaultdict(Counter)
            self._statuses: dict[str, Counter[str]] = defaultdict(Counter)
            self._method_statuses: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
            self._limited: dict[str, Counter[str]] = defaultdict(Counter)
            self._oauth: Counter[str] = Counter()
            self._token_requests: Counter[str] = Counter()
            self._oauth_statuses: Counter[str] = Counter()
            self._events: Counter[str] = Counter()
            self._events_failed: Counter[str] = Counter()
            self._oauth_by_portal: dict[str, Counter[str]] = defaultdict(Counter)

    def rest_request(self, member_id: str, method: str, status: int) -> None:
        """One HTTP request to /rest/ on a portal, with the status it got."""
        with self._lock:
            self._requests[member_id][method] += 1
            self._statuses[member_id][str(status)] += 1
            self._method_statuses[member_id][method][str(status)] += 1
            if status == 503:
                self._limited[member_id]["503"] += 1
            elif status == 429:
                self._limited[member_id]["429"] += 1

    def call(self, member_id: str, method: str) -> None:
        """One execution of a method (top-level or inside batch)."""
        with self._lock:
            self._calls[member_id][method] += 1

    def sub_call_limited(self, member_id: str) -> None:
        with self._lock:
            self._limited[member_id]["429"] += 1

    def token_request(self, grant_type: str, ok: bool, status: int, member_id: str | None = None) -> None:
        """One /oauth/token/ request; `member_id` when the code or refresh token was recognised."""
        with self._lock:
            self._token_requests[grant_type or "(none)"] += 1
            self._oauth_statuses[str(status)] += 1
            key = ""
            if grant_type == "refresh_token":
                key = "refresh_ok" if ok else "refresh_failed"
            elif grant_type == "authorization_code":
                key = "code_ok" if ok else "code_failed"
            if key:
                self._oauth[key] += 1
                if member_id:
                    self._oauth_by_portal[member_id][key] += 1

    def app_info(self, status: int, member_id: str | None = None) -> None:
        with self._lock:
            self._oauth["app_info"] += 1
            self._oauth_statuses[str(status)] += 1
            if member_id:
                self._oauth_by_portal[member_id]["app_info"] += 1

    def event(self, event: str, ok: bool) -> None:
        with self._lock:
            (self._events if ok else self._events_failed)[event] += 1

    def snapshot(self) -> dict[str, Any]:
        """A plain-JSON copy of every counter."""
        with self._lock:
            members = set(self._requests) | set(self._calls) | set(self._limited) | set(self._oauth_by_portal)
            portals = {m: {"requests": dict(self._requests[m]),
                           "calls": dict(self._calls[m]),
                           "statuses": dict(self._statuses[m]),
                           "method_statuses": {k: dict(v) for k, v in self._method_statuses[m].items()},
                           "requests_total": sum(self._requests[m].values()),
                           "rate_limited": self._limited[m]["503"],
                           "operation_limited": self._limited[m]["429"],
                           "oauth": {k: self._oauth_by_portal[m][k]
                                     for k in ("refresh_ok", "refresh_failed", "code_ok", "code_failed", "app_info")}}
                       for m in members}
            return {"portals": portals,
                    "oauth": {"token_requests": dict(self._token_requests),
                              "refresh_ok": self._oauth["refresh_ok"],
                              "refresh_failed": self._oauth["refresh_failed"],
                              "code_ok": self._oauth["code_ok"],
                              "code_failed": self._oauth["code_failed"],
                              "app_info": self._oauth["app_info"],
                              "statuses": dict(self._oauth_statuses)},
                    "events": {"delivered": dict(self._events), "failed": dict(self._events_failed),
                               "delivered_total": sum(self._events.values()),
                               "failed_total": sum(self._events_failed.values())}}

    def portal(self, member_id: str) -> dict[str, Any]:
        """The snapshot of one portal (zeros if it got nothing)."""
        empty = {"requests": {}, "calls": {}, "statuses": {}, "method_statuses": {}, "requests_total": 0,
                 "rate_limited": 0, "operation_limited": 0,
                 "oauth": {"refresh_ok": 0, "refresh_failed": 0, "code_ok": 0, "code_failed": 0, "app_info": 0}}
        return self.snapshot()["portals"].get(member_id, empty)
