"""The two Bitrix24 cloud limits (docs/bitrix24-protocol.md §4).

* `LeakyBucket`: each HTTP request to a portal adds 1, the level drains by `rps` per second; when a
  request would lift the level above `burst` it is refused with 503 QUERY_LIMIT_EXCEEDED (§4.1).
* `OperatingTime`: execution time per (portal, app or webhook, method) summed in 10 one-minute
  buckets; once the sum exceeds the limit the *next* call of that method gets 429
  OPERATION_TIME_LIMIT (§4.2). Only calls longer than 0.1 s are recorded; `batch` itself is exempt.
Both read the sandbox clock and are guarded by the `Sandbox` lock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

WINDOW_BUCKETS = 10
BUCKET_SECONDS = 60
MINIMAL_FIX_TIME = 0.1
DEFAULT_OPERATING_LIMIT = 480.0


@dataclass
class _Level:
    level: float = 0.0
    at: float = 0.0


@dataclass
class LeakyBucket:
    """Request-intensity limit per portal."""

    levels: dict[str, _Level] = field(default_factory=dict)

    def admit(self, member_id: str, rps: float, burst: float, now: float) -> bool:
        """Add one request; False (and nothing added) if it would overflow the bucket."""
        state = self.levels.setdefault(member_id, _Level(0.0, now))
        state.level = max(0.0, state.level - max(0.0, now - state.at) * rps)
        state.at = now
        if state.level + 1 > burst:
            return False
        state.level += 1
        return True

    def reset(self, member_id: str | None = None) -> None:
        if member_id is None:
            self.levels.clear()
        else:
            self.levels.pop(member_id, None)


Key = tuple[str, str, str]  # (member_id, client_id or "webhook:<id>", method)


@dataclass
class OperatingTime:
    """Per-method operating-time accounting in one-minute buckets over a 10-minute window."""

    limit: float = DEFAULT_OPERATING_LIMIT
    buckets: dict[Key, dict[int, float]] = field(default_factory=dict)

    def _window(self, key: Key, now: float) -> dict[int, float]:
        current = math.floor(now / BUCKET_SECONDS)
        slots = self.buckets.get(key)
        if not slots:
            return {}
        for minute in [m for m in slots if m <= current - WINDOW_BUCKETS]:
            del slots[minute]
        return slots

    def used(self, key: Key, now: float) -> float:
        return sum(self._window(key, now).values())

    def blocked(self, key: Key, now: float) -> bool:
        return self.used(key, now) > self.limit

    def record(self, key: Key, seconds: float, now: float) -> None:
        if seconds <= MINIMAL_FIX_TIME:
            return
        minute = math.floor(now / BUCKET_SECONDS)
        slots = self.buckets.setdefault(key, {})
        slots[minute] = slots.get(minute, 0.0) + seconds

    def reset_at(self, key: Key, now: float) -> int:
        """Unix time when the oldest recorded bucket leaves the window (now if nothing is recorded)."""
        slots = self._window(key, now)
        if not slots:
            return int(now)
        return (min(slots) + WINDOW_BUCKETS) * BUCKET_SECONDS

    def reset(self, member_id: str | None = None) -> None:
        if member_id is None:
            self.buckets.clear()
        else:
            for key in [k for k in self.buckets if k[0] == member_id]:
                del self.buckets[key]
