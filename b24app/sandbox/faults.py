"""Fault injection: the next N calls of a method on a portal misbehave on purpose.

Modes:
* `500` — answer 500 INTERNAL_SERVER_ERROR without applying the call;
* `timeout` — hold the connection for `seconds`, then drop it without an answer (not applied);
* `error` — answer the given `error` code, `status` and `description` (not applied);
* `apply_then_500` — apply the call, then answer 500 (the client cannot know it succeeded);
* `delay` — apply the call at once and answer normally, `seconds` late (a slow portal or OAuth server:
  a refresh rotates the chain at once, and its answer arrives late).
Targets: portal REST methods by name (also inside `batch`), and the OAuth server as the pseudo
methods `oauth.token` (any grant), `oauth.token.refresh_token`, `oauth.token.authorization_code`
and `oauth.app.info`. `member_id=None` matches every portal.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

from .errors import SandboxError

MODES = ("500", "timeout", "error", "apply_then_500", "delay")
_ids = itertools.count(1)


@dataclass
class Fault:
    id: int
    method: str
    mode: str
    remaining: int
    member_id: str | None = None
    seconds: float = 5.0
    error: str | int = "INTERNAL_SERVER_ERROR"
    status: int = 500
    description: str = "Internal server error"

    def public(self) -> dict[str, Any]:
        return asdict(self)


class FaultRegistry:
    """Pending faults; `take()` consumes one matching fault per call. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, portal: Any, method: str, mode: str, count: int = 1, *, seconds: float = 5.0,
            error: str | int | None = None, status: int | None = None,
            description: str | None = None) -> Fault:
        """Queue a fault for the next `count` calls of `method` on `portal` (a Portal, a member_id, or None = any)."""
        member_id: str | None = getattr(portal, "member_id", portal)
        mode = str(mode)
        if mode not in MODES:
            raise SandboxError(f"unknown fault mode {mode!r}; use one of {', '.join(MODES)}")
        if count < 1:
            raise SandboxError("count must be >= 1")
        if mode == "error" and error is None:
            raise SandboxError("mode 'error' needs an error code")
        fault = Fault(next(_ids), method.lower(), mode, int(count), member_id, float(seconds),
                      error if error is not None else "INTERNAL_SERVER_ERROR",
                      int(status) if status is not None else (400 if mode == "error" else 500),
                      description if description is not None else
                      ("Internal server error" if mode != "error" else str(error)))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, member_id: str | None, *methods: str) -> Fault | None:
        """Consume one pending fault for any of `methods` on this portal (first added wins)."""
        wanted = {m.lower() for m in methods}
        with self._lock:
            for fault in self._faults:
                if fault.method in wanted and (fault.member_id is None or fault.member_id == member_id):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self, member_id: str | None = None) -> None:
        with self._lock:
            if member_id is None:
                self._faults.clear()
            else:
                self._faults = [f for f in self._faults if f.member_id != member_id]
