"""The installation store: one record per portal, keyed by member_id (domains change, member_id never).

`InstallationStore` is the small interface every backend implements; `tests/test_store_contract.py`
is the contract any implementation must pass. `RedisInstallationStore` is the production one:

- `b24:portal:{MEMBER}` — a hash: plain fields plus two encrypted ones (`tokens`: access + refresh
  token, `app_token`: the application_token). `rt` holds a digest of the current refresh token so
  a refresh can be saved compare-and-set in one Lua call without Redis ever seeing a token.
- `b24:domain:DOMAIN` — the domain index (a lookup aid, verified against the record on read).
- `b24:portals` — a sorted set of member_ids for listing.
The braces are Redis Cluster hash tags: every per-portal key of one portal shares a slot, and each
Lua script touches exactly one key.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

import redis

from .crypto import TokenCipher

NEW, ACTIVE, NEEDS_REAUTH, UNINSTALLED = "new", "active", "needs-reauth", "uninstalled"
STATES = (NEW, ACTIVE, NEEDS_REAUTH, UNINSTALLED)


@dataclass(frozen=True)
class Installation:
    """What we know about one portal. Secret fields never appear in repr()."""

    member_id: str
    domain: str
    client_endpoint: str
    state: str = NEW
    status: str = ""
    scope: str = ""
    app_version: int = 0
    owner_user_id: int | None = None
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0
    application_token: str | None = field(default=None, repr=False)
    installed_at: float = 0.0
    updated_at: float = 0.0
    token_issued_at: float = 0.0
    last_error: str = ""

    @property
    def has_tokens(self) -> bool:
        return bool(self.access_token and self.refresh_token)

    def token_expired(self, now: float | None = None, leeway: float = 0.0) -> bool:
        return self.expires_at <= (time.time() if now is None else now) + leeway


_PLAIN = ("domain", "client_endpoint", "state", "status", "scope", "app_version", "owner_user_id", "expires_at",
          "installed_at", "updated_at", "token_issued_at", "last_error")
_SETTABLE = frozenset({*_PLAIN, "application_token"}) - {"installed_at"}
_FIELD_TYPES = {f.name: f.type for f in fields(Installation)}


def refresh_digest(refresh_token: str | None) -> str:
    """Identifies a refresh token for compare-and-set without storing it in clear."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:32] if refresh_token else ""


class InstallationStore(Protocol):
    """What the app needs from storage; every method is atomic for one portal."""

    def get(self, member_id: str) -> Installation | None: ...

    def find_by_domain(self, domain: str) -> Installation | None: ...

    def save(self, installation: Installation) -> None:
        """Create or replace the whole record (install, OAuth callback, owner hand-over)."""

    def update(self, member_id: str, **changes: Any) -> bool:
        """Set plain fields or the application_token of an existing record; False if there is none."""

    def swap_tokens(self, member_id: str, old_refresh_token: str, access_token: str, refresh_token: str,
                    expires_at: float, **changes: Any) -> bool:
        """Save a refreshed pair only if the stored refresh token is still `old_refresh_token`."""

    def clear_tokens(self, member_id: str, state: str, last_error: str = "") -> bool:
        """Drop the token material (uninstall) and set the state."""

    def delete(self, member_id: str) -> None: ...

    def member_ids(self) -> list[str]: ...


def _now() -> float:
    return round(time.time(), 3)


class MemoryInstallationStore:
    """The reference implementation: a dict behind a lock. For tests and as executable documentation."""

    def __init__(self) -> None:
        self._records: dict[str, Installation] = {}
        self._lock = threading.Lock()

    def get(self, member_id: str) -> Installation | None:
        with self._lock:
            return self._records.get(member_id)

    def find_by_domain(self, domain: str) -> Installation | None:
        with self._lock:
            return next((r for r in self._records.values() if r.domain == domain.lower()), None)

    def save(self, installation: Installation) -> None:
        with self._lock:
            previous = self._records.get(installation.member_id)
            installed_at = previous.installed_at if previous else (installation.installed_at or _now())
            self._records[installation.member_id] = replace(
                installation, domain=installation.domain.lower(), installed_at=installed_at, updated_at=_now())

    def update(self, member_id: str, **changes: Any) -> bool:
        _check_changes(changes)
        with self._lock:
            record = self._records.get(member_id)
            if record is None:
                return False
            if "domain" in changes:
                changes["domain"] = changes["domain"].lower()
            self._records[member_id] = replace(record, **changes, updated_at=_now())
            return True

    def swap_tokens(self, member_id: str, old_refresh_token: str, access_token: str, refresh_token: str,
                    expires_at: float, **changes: Any) -> bool:
        _check_changes(changes)
        with self._lock:
            record = self._records.get(member_id)
            if record is None or record.refresh_token != old_refresh_token:
                return False
            self._records[member_id] = replace(record, access_token=access_token, refresh_token=refresh_token,
                                               expires_at=expires_at, token_issued_at=_now(), updated_at=_now(),
                                               **changes)
            return True

    def clear_tokens(self, member_id: str, state: str, last_error: str = "") -> bool:
        with self._lock:
            record = self._records.get(member_id)
            if record is None:
                return False
            self._records[member_id] = replace(record, access_token=None, refresh_token=None,
                                               application_token=None, expires_at=0.0, state=state,
                                               last_error=last_error, updated_at=_now())
            return True

    def delete(self, member_id: str) -> None:
        with self._lock:
            self._records.pop(member_id, None)

    def member_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._records)


def _check_changes(changes: dict[str, Any]) -> None:
    unknown = set(changes) - _SETTABLE
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    if "state" in changes and changes["state"] not in STATES:
        raise ValueError(f"unknown state {changes['state']!r}")


_SWAP = """
if redis.call('HGET', KEYS[1], 'rt') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'tokens', ARGV[2], 'rt', ARGV[3], unpack(ARGV, 4))
return 1
"""
_UPDATE_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
_CLEAR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'tokens', 'rt', 'app_token')
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
_REWRAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class RedisInstallationStore:
    """The production store; see the module docstring for the key layout."""

    PORTALS = "b24:portals"

    def __init__(self, client: redis.Redis, cipher: TokenCipher) -> None:
        self._redis = client
        self._cipher = cipher
        self._swap = client.register_script(_SWAP)
        self._update_existing = client.register_script(_UPDATE_EXISTING)
        self._clear = client.register_script(_CLEAR)
        self._rewrap = client.register_script(_REWRAP)

    @staticmethod
    def key(member_id: str) -> str:
        return f"b24:portal:{{{member_id}}}"

    @staticmethod
    def domain_key(domain: str) -> str:
        return f"b24:domain:{domain.lower()}"

    def get(self, member_id: str) -> Installation | None:
        raw = self._redis.hgetall(self.key(member_id))
        if not raw:
            return None
        data = {k.decode(): v.decode() for k, v in raw.items()}
        return self._decode(member_id, data)

    def find_by_domain(self, domain: str) -> Installation | None:
        member_id = self._redis.get(self.domain_key(domain))
        record = self.get(member_id.decode()) if member_id else None
        return record if record is not None and record.domain == domain.lower() else None

    def save(self, installation: Installation) -> None:
        key = self.key(installation.member_id)
        previous = self.get(installation.member_id)
        now = _now()
        record = replace(installation, domain=installation.domain.lower(), updated_at=now,
                         installed_at=previous.installed_at if previous else (installation.installed_at or now))
        mapping = self._plain_fields(record)
        mapping["tokens"] = self._encrypt_tokens(record.access_token, record.refresh_token)
        mapping["rt"] = refresh_digest(record.refresh_token)
        mapping["app_token"] = self._cipher.encrypt(record.application_token) if record.application_token else ""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={k: v for k, v in mapping.items() if v != ""})
        pipe.execute()
        self._redis.zadd(self.PORTALS, {installation.member_id: record.installed_at})
        self._reindex(previous, record)

    def update(self, member_id: str, **changes: Any) -> bool:
        _check_changes(changes)
        previous = self.get(member_id) if "domain" in changes else None
        args: list[str] = []
        for name, value in changes.items():
            if name == "application_token":
                args += ["app_token", self._cipher.encrypt(value) if value else ""]
            elif name == "domain":
                args += [name, str(value).lower()]
            else:
                args += [name, _plain(value)]
        args += ["updated_at", _plain(_now())]
        done = bool(self._update_existing(keys=[self.key(member_id)], args=args))
        if done and previous is not None:
            self._reindex(previous, replace(previous, domain=str(changes["domain"]).lower()))
        return done

    def swap_tokens(self, member_id: str, old_refresh_token: str, access_token: str, refresh_token: str,
                    expires_at: float, **changes: Any) -> bool:
        _check_changes(changes)
        extra: list[str] = ["expires_at", _plain(expires_at), "token_issued_at", _plain(_now()),
                            "updated_at", _plain(_now())]
        for name, value in changes.items():
            extra += [name, _plain(value)]
        return bool(self._swap(keys=[self.key(member_id)],
                               args=[refresh_digest(old_refresh_token),
                                     self._encrypt_tokens(access_token, refresh_token),
                                     refresh_digest(refresh_token), *extra]))

    def clear_tokens(self, member_id: str, state: str, last_error: str = "") -> bool:
        _check_changes({"state": state})
        return bool(self._clear(keys=[self.key(member_id)],
                                args=["state", state, "last_error", last_error, "expires_at", "0",
                                      "updated_at", _plain(_now())]))

    def delete(self, member_id: str) -> None:
        record = self.get(member_id)
        self._redis.delete(self.key(member_id))
        self._redis.zrem(self.PORTALS, member_id)
        if record is not None and self._points_here(record):
            self._redis.delete(self.domain_key(record.domain))

    def member_ids(self) -> list[str]:
        return [m.decode() for m in self._redis.zrange(self.PORTALS, 0, -1)]

    def iter_all(self) -> Iterator[Installation]:
        for member_id in self.member_ids():
            record = self.get(member_id)
            if record is not None:
                yield record

    # -- internals ---------------------------------------------------------------------------

    def _points_here(self, record: Installation) -> bool:
        current = self._redis.get(self.domain_key(record.domain))
        return current is not None and current.decode() == record.member_id

    def _reindex(self, previous: Installation | None, record: Installation) -> None:
        if previous is not None and previous.domain != record.domain and self._points_here(previous):
            self._redis.delete(self.domain_key(previous.domain))
        self._redis.set(self.domain_key(record.domain), record.member_id)

    def _plain_fields(self, record: Installation) -> dict[str, str]:
        return {name: _plain(getattr(record, name)) for name in _PLAIN}

    def _encrypt_tokens(self, access_token: str | None, refresh_token: str | None) -> str:
        if not access_token and not refresh_token:
            return ""
        return self._cipher.encrypt(json.dumps({"a": access_token, "r": refresh_token}, separators=(",", ":")))

    def _decode(self, member_id: str, data: dict[str, str]) -> Installation:
        access = refresh = None
        if data.get("tokens"):
            pair = json.loads(self._open(member_id, "tokens", data["tokens"]))
            access, refresh = pair.get("a"), pair.get("r")
        application_token = self._open(member_id, "app_token", data["app_token"]) if data.get("app_token") else None
        values: dict[str, Any] = {}
        for name in _PLAIN:
            raw = data.get(name, "")
            kind = _FIELD_TYPES[name]
            if kind == "float":
                values[name] = float(raw or 0)
            elif kind == "int":
                values[name] = int(raw or 0)
            elif kind == "int | None":
                values[name] = int(raw) if raw else None
            else:
                values[name] = raw
        return Installation(member_id=member_id, access_token=access, refresh_token=refresh,
                            application_token=application_token, **values)

    def _open(self, member_id: str, name: str, ciphertext: str) -> str:
        """Decrypt a field; one written under an older key is rewritten, unless someone changed it meanwhile."""
        plaintext, current = self._cipher.open(ciphertext)
        if not current:
            self._rewrap(keys=[self.key(member_id)], args=[name, ciphertext, self._cipher.encrypt(plaintext)])
        return plaintext


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
