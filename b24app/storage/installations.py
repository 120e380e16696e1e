"""The installation store: one record per portal, keyed by member_id (domains change, member_id never).

A portal's lifecycle `state` is a `PortalState`, and only this module writes it, through named
transitions (docs/DESIGN.md §6 has the diagram):

    (no record) ──activate──▶ ACTIVE ──needs_reauth(reason)──▶ NEEDS_REAUTH
                               ▲  │                                │
                               │  └──────uninstall──▶ UNINSTALLED ◀┘
                               └──activate── (from either: reinstall, an admin's fresh chain)
                               └──swap_tokens── (from NEEDS_REAUTH: a refresh that won a race)

`activate` stores a whole fresh record (install, owner hand-over, re-authorization); `update` changes
plain fields and never the state; `swap_tokens` saves a refreshed pair compare-and-set, and a saved
pair is a live chain (ACTIVE) even when a concurrent loser had just reported invalid_grant;
`needs_reauth` and `uninstall` end the chain. `InstallationStore` is the interface every backend
implements, and tests/integration/test_store_contract.py the contract each must pass.

`RedisInstallationStore` keeps `b24:portal:{MEMBER}` (storage/keys.py): plain fields plus two encrypted
ones (`tokens`: access + refresh token; `app_token`: the application_token). `rt` holds a digest of the
current refresh token, so a refresh is saved compare-and-set in one Lua call without Redis ever seeing
a token.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Protocol

import redis

from . import keys
from .connection import text
from .crypto import TokenCipher


class PortalState(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    NEEDS_REAUTH = "needs-reauth"
    UNINSTALLED = "uninstalled"


@dataclass(frozen=True)
class Installation:
    """What we know about one portal. Secret fields never appear in repr().

    `state` is the app's lifecycle state; `plan` is the portal's Bitrix24 plan as app.info reports it
    (`status`: F free, D demo, T trial, P paid, L local, S subscription).
    """

    member_id: str
    domain: str
    client_endpoint: str
    state: PortalState = PortalState.NEW
    plan: str = ""
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

    @property
    def chain_dead(self) -> bool:
        """No usable chain: an admin's fresh tokens may replace it (docs/DESIGN.md §6, owner hand-over)."""
        return self.state in (PortalState.NEEDS_REAUTH, PortalState.UNINSTALLED) or not self.has_tokens

    def token_expired(self, now: float | None = None, leeway: float = 0.0) -> bool:
        return self.expires_at <= (time.time() if now is None else now) + leeway


_PLAIN = ("domain", "client_endpoint", "state", "plan", "scope", "app_version", "owner_user_id", "expires_at",
          "installed_at", "updated_at", "token_issued_at", "last_error")
_UPDATABLE = frozenset({*_PLAIN, "application_token"}) - {"installed_at", "state"}
_FIELD_TYPES = {f.name: f.type for f in fields(Installation)}


def refresh_digest(refresh_token: str | None) -> str:
    """Identifies a refresh token for compare-and-set without storing it in clear."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:32] if refresh_token else ""


def lua_usable(key: str) -> str:
    """A Lua condition, true when the record at `key` is active with tokens, for scripts of other stores
    that must not answer for a dead portal (storage/badge_cache.py); the field names stay in this module."""
    return (f"(redis.call('HGET', {key}, 'state') == '{PortalState.ACTIVE.value}' "
            f"and redis.call('HEXISTS', {key}, 'tokens') == 1)")


class InstallationStore(Protocol):
    """What the app needs from storage; every method is atomic for one portal."""

    def get(self, member_id: str) -> Installation | None: ...

    def find_by_domain(self, domain: str) -> Installation | None: ...

    def activate(self, installation: Installation) -> Installation:
        """Store a whole fresh record as ACTIVE (install, owner hand-over, re-authorization)."""

    def update(self, member_id: str, **changes: Any) -> bool:
        """Set plain fields or the application_token of an existing record; False if there is none."""

    def swap_tokens(self, member_id: str, old_refresh_token: str, access_token: str, refresh_token: str,
                    expires_at: float, **changes: Any) -> bool:
        """Save a refreshed pair only if the stored refresh token is still `old_refresh_token`."""

    def needs_reauth(self, member_id: str, reason: str) -> bool:
        """The chain is dead (invalid_grant, the owner left): ACTIVE → NEEDS_REAUTH, tokens kept."""

    def uninstall(self, member_id: str, reason: str) -> bool:
        """The portal uninstalled the app: drop the token material, → UNINSTALLED."""

    def delete(self, member_id: str) -> None: ...

    def member_ids(self) -> list[str]: ...

    def iter_all(self) -> Iterator[Installation]: ...


def _now() -> float:
    return round(time.time(), 3)


def _check_changes(changes: dict[str, Any]) -> None:
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")


class MemoryInstallationStore:
    """The reference implementation: a dict behind a lock. For unit tests and as executable documentation."""

    def __init__(self) -> None:
        self._records: dict[str, Installation] = {}
        self._lock = threading.Lock()

    def get(self, member_id: str) -> Installation | None:
        with self._lock:
            return self._records.get(member_id)

    def find_by_domain(self, domain: str) -> Installation | None:
        with self._lock:
            return next((r for r in self._records.values() if r.domain == domain.lower()), None)

    def activate(self, installation: Installation) -> Installation:
        with self._lock:
            previous = self._records.get(installation.member_id)
            installed_at = previous.installed_at if previous else (installation.installed_at or _now())
            record = replace(installation, domain=installation.domain.lower(), state=PortalState.ACTIVE,
                             installed_at=installed_at, updated_at=_now())
            self._records[installation.member_id] = record
            return record

    def update(self, member_id: str, **changes: Any) -> bool:
        _check_changes(changes)
        if "domain" in changes:
            changes["domain"] = str(changes["domain"]).lower()
        return self._change(member_id, lambda r: True, **changes)

    def swap_tokens(self, member_id: str, old_refresh_token: str, access_token: str, refresh_token: str,
                    expires_at: float, **changes: Any) -> bool:
        _check_changes(changes)
        return self._change(member_id, lambda r: r.refresh_token == old_refresh_token, access_token=access_token,
                            refresh_token=refresh_token, expires_at=expires_at, token_issued_at=_now(),
                            state=PortalState.ACTIVE, **changes)

    def needs_reauth(self, member_id: str, reason: str) -> bool:
        return self._change(member_id, lambda r: True, state=PortalState.NEEDS_REAUTH, last_error=reason)

    def uninstall(self, member_id: str, reason: str) -> bool:
        return self._change(member_id, lambda r: True, access_token=None, refresh_token=None,
                            application_token=None, expires_at=0.0, state=PortalState.UNINSTALLED,
                            last_error=reason)

    def delete(self, member_id: str) -> None:
        with self._lock:
            self._records.pop(member_id, None)

    def member_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._records)

    def iter_all(self) -> Iterator[Installation]:
        for member_id in self.member_ids():
            record = self.get(member_id)
            if record is not None:
                yield record

    def _change(self, member_id: str, condition: Any, **changes: Any) -> bool:
        with self._lock:
            record = self._records.get(member_id)
            if record is None or not condition(record):
                return False
            self._records[member_id] = replace(record, **changes, updated_at=_now())
            return True


_SWAP = f"""
if redis.call('HGET', KEYS[1], 'rt') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'tokens', ARGV[2], 'rt', ARGV[3], 'state', '{PortalState.ACTIVE.value}', unpack(ARGV, 4))
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

    def __init__(self, client: redis.Redis, cipher: TokenCipher) -> None:
        self._redis = client
        self._cipher = cipher
        self._swap = client.register_script(_SWAP)
        self._update_existing = client.register_script(_UPDATE_EXISTING)
        self._clear = client.register_script(_CLEAR)
        self._rewrap = client.register_script(_REWRAP)

    def get(self, member_id: str) -> Installation | None:
        raw = self._redis.hgetall(keys.portal(member_id))
        if not raw:
            return None
        data = {text(k): text(v) for k, v in raw.items()}
        return self._decode(member_id, data)

    def find_by_domain(self, domain: str) -> Installation | None:
        member_id = self._redis.get(keys.domain(domain))
        record = self.get(text(member_id)) if member_id else None
        return record if record is not None and record.domain == domain.lower() else None

    def activate(self, installation: Installation) -> Installation:
        key = keys.portal(installation.member_id)
        previous = self.get(installation.member_id)
        now = _now()
        record = replace(installation, domain=installation.domain.lower(), state=PortalState.ACTIVE, updated_at=now,
                         installed_at=previous.installed_at if previous else (installation.installed_at or now))
        mapping = {name: _plain(getattr(record, name)) for name in _PLAIN}
        mapping["tokens"] = self._encrypt_tokens(record.access_token, record.refresh_token)
        mapping["rt"] = refresh_digest(record.refresh_token)
        mapping["app_token"] = self._cipher.encrypt(record.application_token) if record.application_token else ""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={k: v for k, v in mapping.items() if v != ""})
        pipe.execute()
        self._redis.zadd(keys.PORTALS, {installation.member_id: record.installed_at})
        self._reindex(previous, record)
        return record

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
        done = self._set_existing(member_id, args)
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
        return bool(self._swap(keys=[keys.portal(member_id)],
                               args=[refresh_digest(old_refresh_token),
                                     self._encrypt_tokens(access_token, refresh_token),
                                     refresh_digest(refresh_token), *extra]))

    def needs_reauth(self, member_id: str, reason: str) -> bool:
        return self._set_existing(member_id, ["state", PortalState.NEEDS_REAUTH.value, "last_error", reason])

    def uninstall(self, member_id: str, reason: str) -> bool:
        return bool(self._clear(keys=[keys.portal(member_id)],
                                args=["state", PortalState.UNINSTALLED.value, "last_error", reason,
                                      "expires_at", "0", "updated_at", _plain(_now())]))

    def delete(self, member_id: str) -> None:
        record = self.get(member_id)
        self._redis.delete(keys.portal(member_id))
        self._redis.zrem(keys.PORTALS, member_id)
        if record is not None and self._points_here(record):
            self._redis.delete(keys.domain(record.domain))

    def member_ids(self) -> list[str]:
        return [text(m) for m in self._redis.zrange(keys.PORTALS, 0, -1)]

    def iter_all(self) -> Iterator[Installation]:
        for member_id in self.member_ids():
            record = self.get(member_id)
            if record is not None:
                yield record

    # -- internals ---------------------------------------------------------------------------

    def _set_existing(self, member_id: str, args: list[str]) -> bool:
        return bool(self._update_existing(keys=[keys.portal(member_id)],
                                          args=[*args, "updated_at", _plain(_now())]))

    def _points_here(self, record: Installation) -> bool:
        current = self._redis.get(keys.domain(record.domain))
        return current is not None and text(current) == record.member_id

    def _reindex(self, previous: Installation | None, record: Installation) -> None:
        if previous is not None and previous.domain != record.domain and self._points_here(previous):
            self._redis.delete(keys.domain(previous.domain))
        self._redis.set(keys.domain(record.domain), record.member_id)

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
            elif kind == "PortalState":
                values[name] = PortalState(raw or PortalState.NEW)
            else:
                values[name] = raw
        return Installation(member_id=member_id, access_token=access, refresh_token=refresh,
                            application_token=application_token, **values)

    def _open(self, member_id: str, name: str, ciphertext: str) -> str:
        """Decrypt a field; one written under an older key is rewritten, unless someone changed it meanwhile."""
        plaintext, current = self._cipher.open(ciphertext)
        if not current:
            self._rewrap(keys=[keys.portal(member_id)], args=[name, ciphertext, self._cipher.encrypt(plaintext)])
        return plaintext


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, PortalState):
        return value.value
    return str(value)
