"""The sandbox clock: wall time plus an offset that tests can move forward.

Every expiry in the sandbox (access tokens, codes, refresh tokens, rate buckets, operating-time
buckets) reads this clock, so `advance(3600)` makes tokens expire without sleeping.
"""
from __future__ import annotations

import threading
import time


class Clock:
    """Unix time in seconds, shifted by an adjustable offset."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current sandbox time (unix seconds, float)."""
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        """Seconds the clock has been moved forward in total."""
        return self._offset

    def restore(self, offset: float) -> None:
        """Take back the offset a saved state had (at start, before anything reads the clock)."""
        with self._lock:
            self._offset = max(self._offset, float(offset))

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never backward: expiries must stay monotonic); return now()."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += float(seconds)
        return self.now()
