"""The process's Redis client: short timeouts and one retry, so a dead or frozen Redis fails fast.

A frozen Redis (a stopped process, a stalled network) accepts connections and never answers: each
command gives up after SOCKET_TIMEOUT and is tried once more, so a request learns of the outage within
about two seconds and answers 503 (docs/DESIGN.md §9, §10); /readyz asks through a probe client that
gives up after PROBE_TIMEOUT without a retry. Both recover by themselves when Redis answers again.
"""
from __future__ import annotations

import os
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry


def text(value: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


SOCKET_TIMEOUT = 1.0
PROBE_TIMEOUT = 0.5


def connect(url: str) -> redis.Redis:
    """One pooled client per process; the client name lets operators see which worker is which. No
    health-check PING before a command on an idle connection: it would be a round-trip of its own, and
    with a frozen Redis a timeout of its own. A connection the server dropped fails its command, which
    the retry sends on a new one."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.1), retries=1),
        client_name=f"b24app-{os.getpid()}",
    )


def probe(url: str) -> redis.Redis:
    """A client for readiness checks only: one short attempt, never a retry."""
    return redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT,
                                retry=Retry(NoBackoff(), retries=0), client_name=f"b24app-{os.getpid()}")
