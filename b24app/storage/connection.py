"""The process's Redis client: a single Redis, a Redis Cluster or a Sentinel-managed primary, with short
timeouts and one retry, so a dead or frozen Redis fails fast.

`REDIS_URL` (docs/DESIGN.md §3) may name a single Redis (`redis://`, `rediss://`, `unix://`), any node of
a Redis Cluster — cluster mode is detected at start with `INFO cluster` and redis-py's cluster client is
used — or Sentinel: `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`, whose client
asks the sentinels for the primary and again after a failover. Every key pattern of storage/keys.py
keeps one portal in one hash slot, so the same commands and scripts run on all three.

A frozen Redis (a stopped process, a stalled network) accepts connections and never answers: each
command gives up after SOCKET_TIMEOUT and is tried once more, so a request learns of the outage within
about two seconds and answers 503 (docs/DESIGN.md §9, §10); /readyz asks through a probe client that
gives up after PROBE_TIMEOUT without a retry. Both recover by themselves when Redis answers again.
"""
from __future__ import annotations

import logging
import os
from typing import Any, cast

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..config import SENTINEL_SCHEME, parse_sentinel_url

log = logging.getLogger(__name__)

# What a Redis outage raises: a cluster client's own errors are not RedisErrors (docs/DESIGN.md §10).
OUTAGES: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)
SOCKET_TIMEOUT = 1.0
PROBE_TIMEOUT = 0.5


def text(value: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url: str) -> redis.Redis:
    """One pooled client per process; the client name lets operators see which worker is which. No
    health-check PING before a command on an idle connection: it would be a round-trip of its own, and
    with a frozen Redis a timeout of its own. A connection the server dropped fails its command, which
    the retry sends on a new one. A cluster client is returned as `redis.Redis`: for keys of one slot it
    takes the same commands."""
    return _client(url, SOCKET_TIMEOUT, Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.1), retries=1))


def probe(url: str) -> redis.Redis:
    """A client for readiness checks only: one short attempt, never a retry."""
    return _client(url, PROBE_TIMEOUT, Retry(NoBackoff(), retries=0))


def is_cluster(client: redis.Redis) -> bool:
    return isinstance(cast(object, client), RedisCluster)


def ping(client: redis.Redis) -> bool:
    """Every primary answers (a cluster's too)."""
    found = cast(object, client)
    if isinstance(found, RedisCluster):
        return bool(found.ping(target_nodes=RedisCluster.PRIMARIES))
    return bool(client.ping())


def _client(url: str, timeout: float, retry: Retry) -> redis.Redis:
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": retry,
                               "client_name": f"b24app-{os.getpid()}"}
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        target = parse_sentinel_url(url)
        sentinel = Sentinel(list(target.nodes), socket_timeout=timeout,  # type: ignore[no-untyped-call]
                            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout})
        primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, password=target.password, **options)
        return primary
    client = redis.Redis.from_url(url, **options)
    if not _cluster_enabled(client):
        return client
    client.close()
    return cast(redis.Redis, RedisCluster.from_url(url, **options))


def _cluster_enabled(client: redis.Redis) -> bool:
    """Asked once at start; an unreachable Redis is taken for a single one (the app starts, /readyz tells)."""
    if client.connection_pool.connection_kwargs.get("path"):
        return False  # a unix socket: the embedded Redis or a local one, never a cluster
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except redis.RedisError as exc:
        log.warning("Redis did not answer at start; taking it for a single Redis, not a cluster",
                    extra={"error": type(exc).__name__})
        return False
