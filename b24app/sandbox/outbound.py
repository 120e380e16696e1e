"""Requests the portal makes to the app: event POSTs and the iframe/installer POSTs.

Everything is a form POST with flat bracket keys (docs/bitrix24-protocol.md §1.2, §1.4), sent synchronously with a
timeout, never following redirects. Event deliveries are recorded (url, event, status, duration)
so tests can assert them; there are no retries, as on Bitrix24 (§1.6).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .counters import Counters
from .phpquery import flatten

USER_AGENT = "Bitrix24 Sandbox Portal"


@dataclass
class HttpResult:
    """What the app answered to a POST the portal made."""

    url: str
    status: int | None
    headers: dict[str, str]
    body: str
    duration: float
    error: str | None = None
    form: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "headers": self.headers, "body": self.body,
                "duration": self.duration, "error": self.error, "form": [list(p) for p in self.form]}


@dataclass
class Delivery:
    """One event delivery attempt."""

    url: str
    event: str
    member_id: str
    status: int | None
    duration: float
    at: float
    error: str | None
    form: list[tuple[str, str]]

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "event": self.event, "member_id": self.member_id, "status": self.status,
                "duration": self.duration, "at": self.at, "error": self.error,
                "form": [list(p) for p in self.form]}

    def data(self) -> dict[str, str]:
        """The form as a flat dict (bracket keys kept), handy in assertions."""
        return dict(self.form)


class Outbox:
    """Sends form POSTs to the app and keeps the event delivery log."""

    def __init__(self, counters: Counters, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._counters = counters
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []

    def post_form(self, url: str, payload: dict[str, Any], query: dict[str, str] | None = None) -> HttpResult:
        pairs = flatten(payload)
        started = time.monotonic()
        try:
            resp = requests.post(url, params=query, data=pairs, timeout=self.timeout, allow_redirects=False,
                                 headers={"User-Agent": USER_AGENT})
        except requests.RequestException as exc:
            return HttpResult(url, None, {}, "", time.monotonic() - started, f"{type(exc).__name__}: {exc}", pairs)
        return HttpResult(resp.url, resp.status_code, dict(resp.headers), resp.text,
                          time.monotonic() - started, None, pairs)

    def _deliver(self, url: str, event: str, member_id: str, payload: dict[str, Any],
                 now: float) -> tuple[Delivery, HttpResult]:
        result = self.post_form(url, payload)
        delivery = Delivery(url, event, member_id, result.status, result.duration, now, result.error, result.form)
        with self._lock:
            self._deliveries.append(delivery)
        self._counters.event(event, result.ok)
        return delivery, result

    def deliver(self, url: str, event: str, member_id: str, payload: dict[str, Any], now: float) -> Delivery:
        """POST one event to one handler and record the outcome."""
        return self._deliver(url, event, member_id, payload, now)[0]

    def deliver_result(self, url: str, event: str, member_id: str, payload: dict[str, Any], now: float) -> HttpResult:
        """Like `deliver`, but return the app's full answer (REST-only install)."""
        return self._deliver(url, event, member_id, payload, now)[1]

    def deliveries(self, member_id: str | None = None, event: str | None = None) -> list[Delivery]:
        with self._lock:
            items = list(self._deliveries)
        return [d for d in items if (member_id is None or d.member_id == member_id)
                and (event is None or d.event == event.upper())]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()
