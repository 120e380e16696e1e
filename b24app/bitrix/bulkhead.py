"""Bulkheads: no portal may hold more than its share of a process's threads while it waits.

A call may wait for a portal — for a rate-limit slot, a back-off after QUERY_LIMIT_EXCEEDED or a 5xx, an
operating-time pause, another process's token refresh — and a waiting call holds a server thread. One
portal whose budget is spent, flooded by its own users, would otherwise hold every thread and stall
every other portal (docs/DESIGN.md §10). So at most `share` threads of a process wait on one portal at
a time; a call that would need to wait beyond that is answered at once (503 with Retry-After). Calls
that need no wait never count: a burst within the portal's budget goes through whatever its size.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..observability import metrics

DEFAULT_THREADS = 8


def default_share(threads: int | None = None) -> int:
    """A quarter of the process's threads (gunicorn's GUNICORN_THREADS), at least 2."""
    if threads is None:
        raw = os.environ.get("GUNICORN_THREADS", "")
        threads = int(raw) if raw.isdigit() else DEFAULT_THREADS
    return max(2, threads // 4)


class Bulkhead:
    def __init__(self, share: int | None = None) -> None:
        self.share = default_share() if share is None else share
        if self.share < 1:
            raise ValueError("share must be at least 1")
        self._waiting: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def wait_slot(self, member_id: str, reason: str) -> Iterator[bool]:
        """Yields whether this thread may wait on the portal; the slot is given back on exit. `reason`
        (rate, retry, refresh, verify) labels the refusals in the metrics."""
        with self._lock:
            taken = self._waiting.get(member_id, 0)
            entered = taken < self.share
            if entered:
                self._waiting[member_id] = taken + 1
        if not entered:
            metrics.bulkhead_shed(reason)
        try:
            yield entered
        finally:
            if entered:
                with self._lock:
                    left = self._waiting[member_id] - 1
                    if left:
                        self._waiting[member_id] = left
                    else:
                        del self._waiting[member_id]

    def full(self, member_id: str) -> bool:
        """Whether a caller arriving now would be refused a slot (a look, not a refusal: nothing is counted)."""
        return self.waiting(member_id) >= self.share

    def waiting(self, member_id: str) -> int:
        with self._lock:
            return self._waiting.get(member_id, 0)
