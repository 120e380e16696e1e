"""The process's Redis client: short timeouts and bounded retries, so a dead Redis fails fast."""
from __future__ import annotations

import os
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry


def text(value: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url: str) -> redis.Redis:
    """One pooled client per process; the client name lets operators see which worker is which."""
    return redis.Redis.from_url(
        url,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), retries=2),
        client_name=f"b24app-{os.getpid()}",
    )
