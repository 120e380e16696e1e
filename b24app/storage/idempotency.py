"""`Idempotency-Key` for the JSON API's POSTs: a retried request returns the first result and never
reaches the portal twice (docs/DESIGN.md §4, §10).

One Redis hash per (portal, client key): `b24:idem:{MEMBER_ID}:<sha256(client key) hex>`
(storage/keys.py); the client key is hashed so arbitrary header text never becomes part of a key
name. Fields:
- `state` `running` | `done`; `fp` the request fingerprint; `owner` the random token of the request
  that claimed the key;
- when done: `status`, `body` (JSON), `headers` (JSON).
A running claim lives `lock_ttl` seconds (a killed worker's claim lapses and the client may retry);
a result lives `ttl` seconds (≥ 24 h by contract). Every transition is one Lua call on one key.

Use: `begin` → `Started` (run the request, then `complete` or, if nothing reached the portal,
`abandon`), `Replay` (answer the stored result), `Conflict` (the caller raises `KeyReused`) or
`InProgress` (the caller raises `RequestInProgress`). Check authentication and permissions
*before* `begin`: a replay answers without re-running them.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from ..errors import IdempotencyError
from . import keys
from .connection import text

MAX_KEY_LENGTH = 255
MAX_FINGERPRINT_LENGTH = 256

# ARGV: owner, fingerprint, lock ttl (ms). A re-sent call by the same owner (a client-side retry after
# a lost reply) finds its own claim and is answered `started` again rather than `running`.
_BEGIN = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'running', 'fp', ARGV[2], 'owner', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'started'}
end
local rec = redis.call('HMGET', KEYS[1], 'fp', 'owner', 'status', 'body', 'headers')
if state == 'running' and rec[2] == ARGV[1] then return {'started'} end
return {state, rec[1], rec[3] or '', rec[4] or '', rec[5] or ''}
"""

# ARGV: owner, status, body, headers, ttl (s). Only the claim's owner may store a result; a re-sent
# complete by the same owner is answered 1 again.
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') == 'done' then return 1 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3], 'headers', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# ARGV: owner. Releases a running claim; a stored result is never removed this way.
_ABANDON = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
return redis.call('DEL', KEYS[1])
"""


class KeyReused(IdempotencyError):
    code = "IDEMPOTENCY_KEY_REUSED"


class RequestInProgress(IdempotencyError):
    code = "REQUEST_IN_PROGRESS"

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Started:
    """This request owns the key: run it, then `complete` or `abandon` with this token."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class Replay:
    """The first request's stored result (same key, same fingerprint)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    """Same key, different request: the client reused a key."""


@dataclass(frozen=True)
class InProgress:
    """The first request with this key is still running; try again after `retry_after` seconds.

    One second: most requests finish well within it, and a claim never outlives `lock_ttl`."""

    retry_after: int = 1


Outcome = Started | Replay | Conflict | InProgress


def validate_key(key: object) -> str:
    """An Idempotency-Key is 1–255 printable ASCII characters (space to `~`); else ValueError (→ 400)."""
    if not (isinstance(key, str) and 1 <= len(key) <= MAX_KEY_LENGTH and all(" " <= ch <= "~" for ch in key)):
        raise ValueError(f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII characters.")
    return key


def request_fingerprint(method: str, path: str, body: bytes, *, user_id: object = None) -> str:
    """A digest of what makes two requests "the same": method, path, exact body bytes and (when given)
    the user, so one user's key cannot replay another user's result within the portal."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), b"" if user_id is None else str(user_id).encode()):
        digest.update(len(part).to_bytes(8, "big") + part)  # length-prefixed: no ambiguous joins
    digest.update(body)
    return digest.hexdigest()


class IdempotencyStore:
    """Per-portal idempotency records in Redis; see the module docstring for layout and flow."""

    def __init__(self, redis: redis.Redis, *, ttl: int = 86400, lock_ttl: int = 120) -> None:
        if ttl < 1 or lock_ttl < 1:
            raise ValueError("ttl and lock_ttl must be positive seconds")
        self._redis = redis
        self.ttl = ttl
        self.lock_ttl = lock_ttl
        self._begin = redis.register_script(_BEGIN)
        self._complete = redis.register_script(_COMPLETE)
        self._abandon = redis.register_script(_ABANDON)

    def redis_key(self, member_id: str, key: str) -> str:
        """The Redis key for a portal's client key (validates both)."""
        if not member_id or any(ch in "{}" or not ch.isprintable() or ch.isspace() for ch in member_id):
            raise ValueError("member_id must be non-empty printable text without braces or spaces")
        digest = hashlib.sha256(validate_key(key).encode("ascii")).hexdigest()
        return keys.idempotency(member_id, digest)

    def begin(self, member_id: str, key: str, fingerprint: str) -> Outcome:
        """Claim the key for this request, atomically; or say why not (replay, conflict, in progress)."""
        if not isinstance(fingerprint, str) or not 1 <= len(fingerprint) <= MAX_FINGERPRINT_LENGTH:
            raise ValueError("fingerprint must be a non-empty string (a digest of the request)")
        token = secrets.token_hex(16)
        reply = self._begin(keys=[self.redis_key(member_id, key)],
                            args=[token, fingerprint, self.lock_ttl * 1000])
        state = text(reply[0])
        if state == "started":
            return Started(token)
        stored_fp, status, body, headers = (text(part) for part in reply[1:5])
        if stored_fp != fingerprint:
            return Conflict()
        if state == "running":
            return InProgress()
        return Replay(status=int(status), body=json.loads(body), headers=json.loads(headers or "{}"))

    def complete(self, member_id: str, key: str, status: int, body: Any, *, token: str,
                 headers: Mapping[str, str] | None = None) -> bool:
        """Store the result for `ttl` seconds. False when `token` no longer owns the key (its claim
        lapsed after `lock_ttl`): nothing is stored then."""
        reply = self._complete(keys=[self.redis_key(member_id, key)],
                               args=[token, int(status), json.dumps(body, separators=(",", ":")),
                                     json.dumps(dict(headers or {}), separators=(",", ":")), self.ttl])
        return bool(reply)

    def abandon(self, member_id: str, key: str, *, token: str) -> bool:
        """Release a claim without a result (nothing reached the portal), so a retry runs afresh.
        False when `token` does not own a running claim (lapsed, taken over, or already completed)."""
        return bool(self._abandon(keys=[self.redis_key(member_id, key)], args=[token]))
