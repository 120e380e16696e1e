"""Work that must not run on a request thread — re-binding after an update, robot runs — shared fairly.

Bitrix24 wants event and robot handlers to answer at once (docs/bitrix24-protocol.md §1.6, §11.3), so
their portal calls run here. One portal's burst (an automation rule firing on 5,000 deals) must not
delay the others: each portal has its own FIFO queue and the workers take portals in turn, one job at
a time. Jobs live in this process only; gunicorn's worker_exit lets queued ones finish (`shutdown`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from .errors import AppError

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000
MAX_DEFERRALS = 6


class JobQueueFull(AppError):
    """More than MAX_QUEUED jobs wait in this process, or it is shutting down."""

    code = "SERVICE_UNAVAILABLE"


class Jobs:
    def __init__(self, workers: int = 4, *, name: str = "b24-jobs", max_queued: int = MAX_QUEUED,
                 outages: tuple[type[BaseException], ...] = ()) -> None:
        """`outages`: exceptions that mean a dependency is down (Redis, the portal): logged in one line,
        since a traceback says nothing more; anything else is a bug and keeps its traceback."""
        self._outages: tuple[type[BaseException], ...] = (AppError, *outages)
        self._queues: OrderedDict[str, deque[Callable[[], None]]] = OrderedDict()
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # a job was queued or finished; shutting down
        self._due = threading.Condition(lock)  # a delayed job may now be due earlier than the timer thought
        self._queued = 0
        self._running = 0
        self._max_queued = max_queued
        self._closing = False  # delayed jobs are released at once
        self._closed = False  # nothing more is taken
        self._delayed: dict[tuple[str, str], tuple[float, Callable[[], None], float]] = {}  # due, job, latest
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        self._threads.append(threading.Thread(target=self._release_delayed, name=f"{name}-timer", daemon=True))
        for thread in self._threads:
            thread.start()

    def submit(self, key: str, job: Callable[[], None]) -> None:
        """Queue `job` behind the other jobs of `key` (a portal's member_id)."""
        with self._ready:
            self._enqueue(key, job)

    def debounce(self, key: str, name: str, delay: float, job: Callable[[], None]) -> None:
        """Queue `job` once `delay` seconds pass with no other call for the same `key` and `name`: a burst
        of changes (an import in 100 chunks) costs one run, after the last of them. Changes that never
        pause still run it every `MAX_DEFERRALS` × `delay` seconds."""
        now = time.monotonic()
        with self._ready:
            if self._closed:
                raise JobQueueFull("the process is shutting down")
            earlier = self._delayed.get((key, name))
            latest = earlier[2] if earlier is not None else now + MAX_DEFERRALS * delay
            due = min(now + delay, latest)
            self._delayed[(key, name)] = (due, job, latest)
            if earlier is None or due < earlier[0]:  # a later due time the timer finds when it wakes anyway
                self._due.notify()

    def _enqueue(self, key: str, job: Callable[[], None]) -> None:
        if self._closed:
            raise JobQueueFull("the process is shutting down")
        if self._queued >= self._max_queued:
            raise JobQueueFull(f"{self._queued} jobs are waiting")
        self._queues.setdefault(key, deque()).append(job)
        self._queued += 1
        self._ready.notify_all()

    def _release_delayed(self) -> None:
        """Moves debounced jobs to their queues when due (all at once when shutting down)."""
        with self._ready:
            while True:
                now = time.monotonic()
                for (key, name), (due, job, _latest) in list(self._delayed.items()):
                    if due <= now or self._closing:
                        del self._delayed[(key, name)]
                        try:
                            self._enqueue(key, job)
                        except JobQueueFull as exc:
                            log.warning("delayed job dropped", extra={"job": name, "error": exc.description})
                if self._closed:
                    return
                next_due = min((due for due, _job, _latest in self._delayed.values()), default=None)
                self._due.wait(None if next_due is None else max(0.0, next_due - now))

    def pending(self, key: str) -> int:
        with self._ready:
            return len(self._queues.get(key, ()))

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until nothing is delayed, queued or running (tests, shutdown); False on timeout."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._delayed and self._queued == 0 and self._running == 0,
                                        timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Run delayed jobs now, let queued ones finish (up to `timeout`), then stop taking new ones."""
        with self._ready:
            self._closing = True
            self._due.notify()
        self.wait(timeout)
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            self._due.notify()

    def _next(self) -> Callable[[], None] | None:
        with self._ready:
            while not self._queues:
                if self._closed:
                    return None
                self._ready.wait()
            key, queue = next(iter(self._queues.items()))
            job = queue.popleft()
            del self._queues[key]
            if queue:
                self._queues[key] = queue  # to the back: the other portals go first
            self._queued -= 1
            self._running += 1
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                job()
            except self._outages as exc:
                log.warning("background job failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            except Exception:
                log.exception("background job failed")
            finally:
                with self._ready:
                    self._running -= 1
                    self._ready.notify_all()
