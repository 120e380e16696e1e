"""Load for isolation checks, shared by tests/faults/test_isolation.py and bench/isolation.py: a flood of
concurrent callers, a bystander measured meanwhile, and a portal whose rate budget is spent."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
import requests

from b24app.storage import keys

Call = Callable[[], requests.Response]
Sample = tuple[int, float]


def timed(call: Call) -> Sample:
    """(HTTP status, or 0 for no answer; seconds)."""
    started = time.monotonic()
    try:
        status = call().status_code
    except requests.RequestException:
        status = 0
    return status, time.monotonic() - started


def spend_budget(client: redis.Redis, member_id: str, seconds: float, *, rps: float = 2.0, burst: int = 50) -> None:
    """Book the app's shared limiter for the portal `seconds` ahead, as if its burst were long spent: every
    call now waits about `seconds` for a slot (bitrix/limiter.py: the bucket's theoretical arrival time)."""
    now_s, now_us = client.time()
    interval_us = 1_000_000 / rps
    tat = now_s * 1_000_000 + now_us + int(seconds * 1_000_000 + (burst - 1) * interval_us)
    client.set(keys.rate(member_id), str(tat), px=int(seconds * 1000) + 60_000)


@contextmanager
def flooding(calls: list[Call], *, repeat: bool = True) -> Iterator[list[Sample]]:
    """Run every call in a thread of its own, all at once (each again and again when `repeat`, after the
    Retry-After it was given, as a well-behaved client does) until the block ends; yields the list the
    samples are appended to."""
    samples: list[Sample] = []
    stop = threading.Event()
    lock = threading.Lock()

    def caller(call: Call) -> None:
        while True:
            started = time.monotonic()
            try:
                response = call()
                status, retry_after = response.status_code, response.headers.get("Retry-After", "")
            except requests.RequestException:
                status, retry_after = 0, ""
            with lock:
                samples.append((status, time.monotonic() - started))
            if not repeat or stop.wait(min(5.0, float(retry_after)) if retry_after.isdigit() else 0):
                return

    threads = [threading.Thread(target=caller, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    try:
        yield samples
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)


def bystander(call: Call, seconds: float, *, pause: float = 0.02) -> list[Sample]:
    """One caller after another for `seconds`: what a portal that did nothing wrong sees meanwhile."""
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(timed(call))
        time.sleep(pause)
    return samples
