"""Small helpers for tests against the sandbox: Redis dumps, token inventories, sandbox counters."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from b24app.sandbox.launcher import SandboxServer


def redis_dump(client: redis.Redis) -> bytes:
    """Every key and value in the test database, as one blob to search for secrets."""
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                parts += [field, value]
        elif kind == b"zset":
            parts += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
    return b"\n".join(parts)


def sandbox_secrets(sandbox: SandboxServer, member_id: str) -> list[str]:
    """Every access/refresh token the sandbox ever issued for a portal, plus its application tokens."""
    sb = sandbox.sandbox
    with sb.lock:
        values = [t.token for t in sb.tokens.access.values() if t.member_id == member_id]
        values += [t.token for t in sb.tokens.refresh.values() if t.member_id == member_id]
        portal = sb.portals.get(member_id)
        if portal is not None:
            values += [inst.application_token for inst in portal.installations.values()]
    return [v for v in values if v]


def keys_mentioning(client: redis.Redis, needle: str) -> list[bytes]:
    dump = [key for key in client.scan_iter(count=1000) if needle.encode() in key]
    return dump + ([b"<value>"] if needle.encode() in redis_dump(client) else [])


def oauth_counters(sandbox: SandboxServer) -> dict:
    return sandbox.sandbox.counters.snapshot()["oauth"]


def portal_requests(sandbox: SandboxServer, member_id: str) -> dict[str, int]:
    return sandbox.sandbox.counters.snapshot()["portals"].get(member_id, {}).get("requests", {})


def eventually(check: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def redis_commands(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every command `client` sends from now on: its name and what it names — for a script its SHA and keys,
    else its first argument. A script call that Redis refuses with NOSCRIPT (its script cache is empty after a
    restart or `SCRIPT FLUSH`) is not counted: redis-py loads the script and sends the call again."""
    sent: list[tuple[str, ...]] = []
    real = client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        if args[0] == "EVALSHA":
            command = ("EVALSHA", str(args[1]), *(str(key) for key in args[3:3 + int(args[2])]))
        else:
            command = (str(args[0]), *(str(arg) for arg in args[1:2]))
        sent.append(command)
        try:
            return real(*args, **options)
        except redis.exceptions.NoScriptError:
            sent.remove(command)
            raise
    monkeypatch.setattr(client, "execute_command", counted)
    return sent
