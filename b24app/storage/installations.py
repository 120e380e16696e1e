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

`RedisInstallationStore` keeps `b24:portal:{MEMBER}` (storage/keys.py): one compact JSON value with the
plain fields and two encrypted ones (`k`: access + refresh token; `n`: the application_token). `r` holds
a digest of the current refresh token, so a refresh is saved compare-and-set in one Lua call without
Redis ever seeing a token.
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
_UPDATABLE = frozenset({*_PLAIN, "application_token"}) - {"installed_at", "state", "updated_at"}
_FIELD_TYPES = {f.name: f.type for f in fields(Installation)}


def refresh_digest(refresh_token: str | None) -> str:
    """Identifies a refresh token for compare-and-set without storing it in clear."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:32] if refresh_token else ""


_TOKENS, _APP_TOKEN, _DIGEST = "k", "n", "r"  # the encrypted tokens, application_token, refresh digest


def lua_usable(key: str) -> str:
    """A Lua expression, true when the record at `key` has a chain to call with (bitrix/tokens.py `require`:
    neither uninstalled nor dead, tokens kept), for scripts of other stores that must not answer or admit for
    such a portal (storage/badge_cache.py, bitrix/limiter.py); the record's layout stays in this module."""
    return (f"(function() local raw = redis.call('GET', {key}); if not raw then return false end; "
            f"local rec = cjson.decode(raw); "
            f"return rec['s'] ~= '{PortalState.UNINSTALLED.value}' and rec['s'] ~= '{PortalState.NEEDS_REAUTH.value}' "
            f"and rec['{_TOKENS}'] ~= nil end)()")


class InstallationStore(Protocol):
    """What the app needs from storage; every method is atomic for one portal."""

    def get(self, member_id: str) -> Installation | None: ...

    def record_key(self, member_id: str) -> str | None:
        """The Redis key whose value `decode` turns into the record, so that a script of another store can
        read it in its own round-trip (bitrix/limiter.py `RateLimiter.admit`); None for a backend without one."""

    def decode(self, member_id: str, raw: bytes | str | None) -> Installation | None:
        """The record from the value read at `record_key` (None: there is none)."""

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

    def record_key(self, member_id: str) -> str | None:
        return None

    def decode(self, member_id: str, raw: bytes | str | None) -> Installation | None:
        raise NotImplementedError("the memory store has no record key: read records with get()")

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


# The `b24:portal:{MEMBER}` value is one JSON object with short names (FIELD_NAMES), kept compact so that
# 100,000 portals fit in ~100 MB of Redis (docs/PERFORMANCE.md): the plain fields, `r` (a digest of the
# current refresh token, for the compare-and-set of a refresh) and two encrypted fields, `k` (the access and
# refresh token) and `n` (the application_token), which have their own life cycles. Every script decodes and
# re-encodes it with Redis's own cjson, on this one key.
FIELD_NAMES = {"domain": "d", "client_endpoint": "e", "state": "s", "plan": "p", "scope": "c", "app_version": "v",
               "owner_user_id": "o", "expires_at": "x", "installed_at": "i", "updated_at": "u",
               "token_issued_at": "t", "last_error": "l"}

_LOAD = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
"""
_STORE = f"""
redis.call('SET', KEYS[1], cjson.encode(rec))
{keys.lua_announce("KEYS[1]")}
return 1
"""
# ARGV: old digest, tokens, new digest, then name/value pairs as JSON. The refreshed pair is a live chain.
_SWAP = _LOAD + f"""
if rec['{_DIGEST}'] ~= ARGV[1] then return 0 end
rec['{_TOKENS}'] = ARGV[2]
rec['{_DIGEST}'] = ARGV[3]
rec['s'] = '{PortalState.ACTIVE.value}'
for name, value in pairs(cjson.decode(ARGV[4])) do rec[name] = value end
""" + _STORE
# ARGV: the changes as JSON (a JSON null removes a field).
_CHANGE = _LOAD + """
for name, value in pairs(cjson.decode(ARGV[1])) do
  if value == cjson.null then rec[name] = nil else rec[name] = value end
end
""" + _STORE
# ARGV: field, the ciphertext read, its rewrite under the primary key (unless someone changed it meanwhile).
_REWRAP = _LOAD + """
if rec[ARGV[1]] ~= ARGV[2] then return 0 end
rec[ARGV[1]] = ARGV[3]
""" + _STORE


class RedisInstallationStore:
    """The production store: `b24:portal:{MEMBER}` (storage/keys.py) holds the record as one compact JSON
    value (see FIELD_NAMES); `b24:domain:DOMAIN` is the domain index. Every change is one script on the one
    key, so it is atomic for the portal and stays in its cluster slot."""

    def __init__(self, client: redis.Redis, cipher: TokenCipher) -> None:
        self._redis = client
        self._cipher = cipher
        self._swap = client.register_script(_SWAP)
        self._change = client.register_script(_CHANGE)
        self._rewrap = client.register_script(_REWRAP)

    def get(self, member_id: str) -> Installation | None:
        try:
            raw = self._redis.get(keys.portal(member_id))
        except redis.ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            return self._migrate(member_id)
        return self.decode(member_id, raw)

    def record_key(self, member_id: str) -> str | None:
        return keys.portal(member_id)

    def decode(self, member_id: str, raw: bytes | str | None) -> Installation | None:
        return None if raw is None else self._decode(member_id, json.loads(raw))

    def find_by_domain(self, domain: str) -> Installation | None:
        member_id = self._redis.get(keys.domain(domain))
        record = self.get(text(member_id)) if member_id else None
        return record if record is not None and record.domain == domain.lower() else None

    def activate(self, installation: Installation) -> Installation:
        previous = self.get(installation.member_id)
        now = _now()
        record = replace(installation, domain=installation.domain.lower(), state=PortalState.ACTIVE, updated_at=now,
                         installed_at=previous.installed_at if previous else (installation.installed_at or now))
        self._redis.set(keys.portal(record.member_id), self._encode(record))
        self._announce(record.member_id)
        self._reindex(previous, record)
        return record

    def update(self, member_id: str, **changes: Any) -> bool:
        _check_changes(changes)
        previous = self.get(member_id) if "domain" in changes else None
        if "domain" in changes:
            changes["domain"] = str(changes["domain"]).lower()
        done = self._set(member_id, {**self._fields(changes), "u": _now()})
        if done and previous is not None:
            self._reindex(previous, replace(previous, domain=changes["domain"]))
        return done

    def swap_tokens(self, member_id: str, old_refresh_token: str, access_token: str, refresh_token: str,
                    expires_at: float, **changes: Any) -> bool:
        _check_changes(changes)
        now = _now()
        fields = {**self._fields({**changes, "expires_at": expires_at}), "t": now, "u": now}
        return bool(self._swap(keys=[keys.portal(member_id)],
                               args=[refresh_digest(old_refresh_token), self._seal_tokens(access_token, refresh_token),
                                     refresh_digest(refresh_token), json.dumps(fields, separators=(",", ":"))]))

    def needs_reauth(self, member_id: str, reason: str) -> bool:
        return self._set(member_id, {"s": PortalState.NEEDS_REAUTH.value, "l": reason, "u": _now()})

    def uninstall(self, member_id: str, reason: str) -> bool:
        return self._set(member_id, {"s": PortalState.UNINSTALLED.value, "l": reason, "x": 0, "u": _now(),
                                     _TOKENS: None, _DIGEST: None, _APP_TOKEN: None})

    def delete(self, member_id: str) -> None:
        record = self.get(member_id)
        self._redis.delete(keys.portal(member_id))
        self._announce(member_id)
        if record is not None and self._points_here(record):
            self._redis.delete(keys.domain(record.domain))

    def member_ids(self) -> list[str]:
        """Every portal, found by SCAN over every primary (a cluster's too): for operators, not for requests."""
        return sorted({keys.member_of(text(key)) for key in self._redis.scan_iter(match=keys.PORTAL_PATTERN,
                                                                                  count=1000)})

    def iter_all(self) -> Iterator[Installation]:
        records = [record for record in map(self.get, self.member_ids()) if record is not None]
        yield from sorted(records, key=lambda record: (record.installed_at, record.member_id))

    # -- internals ---------------------------------------------------------------------------

    def _announce(self, member_id: str) -> None:
        """What the scripts do as they change the record (storage/list_copies.py), for plain commands."""
        self._redis.publish(keys.CHANGES, keys.portal(member_id))

    def _set(self, member_id: str, fields: dict[str, Any]) -> bool:
        return bool(self._change(keys=[keys.portal(member_id)], args=[json.dumps(fields, separators=(",", ":"))]))

    def _fields(self, changes: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "application_token":
                fields[_APP_TOKEN] = self._seal_app_token(value) if value else None
            else:
                fields[FIELD_NAMES[name]] = _compact(value)
        return fields

    def _encode(self, record: Installation) -> str:
        data = {short: _compact(getattr(record, name)) for name, short in FIELD_NAMES.items()}
        if record.access_token or record.refresh_token:
            data[_TOKENS] = self._seal_tokens(record.access_token, record.refresh_token)
            data[_DIGEST] = refresh_digest(record.refresh_token)
        if record.application_token:
            data[_APP_TOKEN] = self._seal_app_token(record.application_token)
        return json.dumps({k: v for k, v in data.items() if v not in ("", None)}, separators=(",", ":"))

    def _decode(self, member_id: str, data: dict[str, Any]) -> Installation:
        access = refresh = application_token = None
        if data.get(_TOKENS):
            access, refresh = _unpack_tokens(self._open(member_id, _TOKENS, data[_TOKENS]))
        if data.get(_APP_TOKEN):
            application_token = _unpack_text(self._open(member_id, _APP_TOKEN, data[_APP_TOKEN]))
        values: dict[str, Any] = {}
        for name, short in FIELD_NAMES.items():
            raw = data.get(short)
            kind = _FIELD_TYPES[name]
            if kind == "float":
                values[name] = float(raw or 0)
            elif kind == "int":
                values[name] = int(raw or 0)
            elif kind == "int | None":
                values[name] = int(raw) if raw not in (None, "") else None
            elif kind == "PortalState":
                values[name] = PortalState(raw or PortalState.NEW)
            else:
                values[name] = "" if raw is None else str(raw)
        return Installation(member_id=member_id, access_token=access, refresh_token=refresh,
                            application_token=application_token, **values)

    def _seal_tokens(self, access_token: str | None, refresh_token: str | None) -> str:
        return self._cipher.encrypt_bytes(_pack_tokens(access_token or "", refresh_token or ""))

    def _seal_app_token(self, application_token: str) -> str:
        return self._cipher.encrypt_bytes(_pack_text(application_token))

    def _open(self, member_id: str, field_name: str, ciphertext: str) -> bytes:
        """Decrypt a field; one written under an older key is rewritten, unless someone changed it meanwhile."""
        plaintext, current = self._cipher.open_bytes(ciphertext)
        if not current:
            self._rewrap(keys=[keys.portal(member_id)],
                         args=[field_name, ciphertext, self._cipher.encrypt_bytes(plaintext)])
        return plaintext

    def _migrate(self, member_id: str) -> Installation | None:
        """A record of the earlier layout (a hash of plain and encrypted fields): read it, store it anew."""
        raw = {text(k): text(v) for k, v in self._redis.hgetall(keys.portal(member_id)).items()}
        if not raw:
            return None
        access = refresh = None
        if raw.get("tokens"):
            pair = json.loads(self._cipher.decrypt(raw["tokens"]))
            access, refresh = pair.get("a"), pair.get("r")
        legacy = {FIELD_NAMES[name]: raw[name] for name in FIELD_NAMES if raw.get(name)}
        legacy.setdefault("p", raw.get("status", ""))
        record = replace(self._decode(member_id, legacy), access_token=access, refresh_token=refresh,
                         application_token=self._cipher.decrypt(raw["app_token"]) if raw.get("app_token") else None)
        self._redis.delete(keys.portal(member_id))
        self._redis.set(keys.portal(member_id), self._encode(record))
        return record

    def _points_here(self, record: Installation) -> bool:
        current = self._redis.get(keys.domain(record.domain))
        return current is not None and text(current) == record.member_id

    def _reindex(self, previous: Installation | None, record: Installation) -> None:
        if previous is not None and previous.domain != record.domain and self._points_here(previous):
            self._redis.delete(keys.domain(previous.domain))
        self._redis.set(keys.domain(record.domain), record.member_id)


def _compact(value: Any) -> Any:
    """Numbers as numbers (whole seconds stay whole), states as their value, None as absent."""
    if isinstance(value, PortalState):
        return value.value
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 3)
    return value


# Tokens are sealed compactly: Bitrix24's are lowercase hex, packed as bytes (half the size, so a smaller
# ciphertext); anything else is kept as UTF-8 text. The first byte says which.
_HEX = frozenset("0123456789abcdef")


def _is_hex(token: str) -> bool:
    return bool(token) and len(token) % 2 == 0 and len(token) <= 510 and _HEX.issuperset(token)


def _pack_tokens(access: str, refresh: str) -> bytes:
    if _is_hex(access) and _is_hex(refresh):
        first = bytes.fromhex(access)
        return b"\x01" + bytes([len(first)]) + first + bytes.fromhex(refresh)
    return b"\x00" + json.dumps([access, refresh], separators=(",", ":")).encode()


def _unpack_tokens(packed: bytes) -> tuple[str, str]:
    if packed[:1] == b"\x01":
        length = packed[1]
        return packed[2:2 + length].hex(), packed[2 + length:].hex()
    access, refresh = json.loads(packed[1:])
    return str(access), str(refresh)


def _pack_text(token: str) -> bytes:
    return b"\x01" + bytes.fromhex(token) if _is_hex(token) else b"\x00" + token.encode()


def _unpack_text(packed: bytes) -> str:
    return packed[1:].hex() if packed[:1] == b"\x01" else packed[1:].decode()
