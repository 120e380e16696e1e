"""The sandbox's state in a JSON file, so a development portal survives a restart.

What is kept: the registered apps, the portals (address, settings, users, deals with their stages and
moves, badges, activities, event handlers, placements, installations, app options, webhooks, robots,
automation rules, robot runs, the token-signing key), every live token and refresh chain, and the
sandbox clock's offset. What is not: transient test tools (faults, counters, the delivery and frame
logs, rate buckets, operating time, method costs) and the per-render frame sessions.

`StateFile` loads the file once at start (an unreadable one is renamed `.corrupt` and the sandbox starts
fresh), then writes it atomically (a temporary file, then a rename) at most once per `interval` when the
state changed, and a last time when the sandbox stops. Records are (de)serialised from their dataclass
type hints, so a new field is kept without touching this module, and a file written before the field
existed loads with the field's default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import models, tokens
from .models import AppCard, Portal
from .tokens import AccessToken, AuthCode, RefreshToken

if TYPE_CHECKING:
    from .sandbox import Sandbox

log = logging.getLogger("b24app.sandbox")

FORMAT = "b24-sandbox-state"
VERSION = 1
KEEP_EXPIRED_ACCESS = 7 * 24 * 3600  # expired access tokens still answer expired_token for a week
_NAMESPACE = {**vars(models), **vars(tokens)}


class StateError(ValueError):
    """The state file is not a sandbox state this version can read."""


# -- generic (de)serialisation from type hints ------------------------------------------------------
def encode(value: Any) -> Any:
    """Records -> JSON-able data: dataclasses become objects, sets and tuples lists, dict keys strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(encode(v) for v in value)
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(hint: Any, data: Any) -> Any:
    """JSON data -> a value of type `hint` (the dataclass field's annotation)."""
    if hint is Any or hint is object:
        return data
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return decode(option, data)
            except (StateError, TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise StateError(f"{data!r} fits none of {hint}: {'; '.join(errors)}")
    if origin is list:
        return [decode(args[0], v) for v in _expect(data, list)]
    if origin is set:
        return {decode(args[0], v) for v in _expect(data, list)}
    if origin is tuple:
        items = _expect(data, list)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in items)
        if len(items) != len(args):
            raise StateError(f"expected {len(args)} items, got {items!r}")
        return tuple(decode(a, v) for a, v in zip(args, items, strict=True))
    if origin is dict:
        return {decode(args[0], k): decode(args[1], v) for k, v in _expect(data, dict).items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, _expect(data, dict))
    if hint is bool:
        return _expect(data, bool)
    if hint is int:
        if isinstance(data, bool):
            raise StateError(f"expected an integer, got {data!r}")
        return int(data) if isinstance(data, str) else _expect(data, int)
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise StateError(f"expected a number, got {data!r}")
        return float(data)
    if hint is str:
        return _expect(data, str)
    raise StateError(f"cannot read a {hint!r}")


def _expect(data: Any, kind: type) -> Any:
    if not isinstance(data, kind):
        raise StateError(f"expected {kind.__name__}, got {type(data).__name__}")
    return data


def _record(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls, _NAMESPACE)
    values = {f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(cls)
              if f.init and f.name in data}
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise StateError(f"{cls.__name__}: {exc}") from None


# -- the sandbox's state ----------------------------------------------------------------------------
@dataclasses.dataclass
class SavedState:
    """A state file, read and checked, not yet applied."""

    apps: list[AppCard]
    portals: list[Portal]
    access: list[AccessToken]
    refresh: list[RefreshToken]
    codes: list[AuthCode]
    issued: int = 0
    clock_offset: float = 0.0
    badge_seq: int = 0


def snapshot(sb: Sandbox) -> dict[str, Any]:
    """Everything worth keeping, as JSON-able data (taken under the sandbox lock)."""
    with sb.lock:
        now = sb.clock.now()
        store = sb.tokens
        access = [t for t in store.access.values()
                  if not t.revoked and t.expires_at + KEEP_EXPIRED_ACCESS > now]
        refresh = [t for t in store.refresh.values() if not (t.used or t.revoked) and t.expires_at > now]
        codes = [c for c in store.codes.values() if not c.used and c.expires_at > now]
        return {"format": FORMAT, "version": VERSION, "clock_offset": sb.clock.offset,
                "badge_seq": sb.badge_seq,
                "apps": [encode(a) for a in sb.apps.values()],
                "portals": [encode(p) for p in sb.portals.values()],
                "tokens": {"issued": store.issued, "access": [encode(t) for t in access],
                           "refresh": [encode(t) for t in refresh], "codes": [encode(c) for c in codes]}}


def parse(data: Any) -> SavedState:
    """Check and decode a state file's JSON; StateError (or ValueError/TypeError) if it is not one."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateError("not a sandbox state file")
    if data.get("version") != VERSION:
        raise StateError(f"state version {data.get('version')!r}, this sandbox reads {VERSION}")
    held = _expect(data.get("tokens", {}), dict)
    return SavedState(apps=decode(list[AppCard], data.get("apps", [])),
                      portals=decode(list[Portal], data.get("portals", [])),
                      access=decode(list[AccessToken], held.get("access", [])),
                      refresh=decode(list[RefreshToken], held.get("refresh", [])),
                      codes=decode(list[AuthCode], held.get("codes", [])),
                      issued=decode(int, held.get("issued", 0)),
                      clock_offset=decode(float, data.get("clock_offset", 0.0)),
                      badge_seq=decode(int, data.get("badge_seq", 0)))


class StateFile:
    """Load the sandbox's state from `path` once, then keep the file up to date."""

    def __init__(self, sb: Sandbox, path: Path, interval: float = 1.0) -> None:
        self.sb = sb
        self.path = Path(path)
        self.interval = interval
        self._digest = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    def load(self) -> bool:
        """Apply the saved state; False when there is none. An unreadable file is moved aside to
        `<name>.corrupt` with one log line, and the sandbox starts fresh."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._set_aside(f"cannot be read ({exc.strerror})")
            return False
        try:
            saved = parse(json.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:
            self._set_aside(f"is not a sandbox state ({str(exc)[:200]})")
            return False
        self.sb.restore(saved)
        self._digest = hashlib.sha256(self._text().encode()).hexdigest()
        return True

    def _set_aside(self, why: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, aside)
        except OSError:
            aside = self.path
        log.warning("sandbox state %s %s: starting fresh; the bad file is kept as %s", self.path, why, aside)

    def _text(self) -> str:
        return json.dumps(snapshot(self.sb), ensure_ascii=False, separators=(",", ":"))

    def save(self, force: bool = False) -> bool:
        """Write the file if the state changed since the last write (atomically: temporary file, rename)."""
        with self._write_lock:
            text = self._text()
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest == self._digest and not force:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._digest = digest
            return True

    def start(self) -> None:
        """Save in the background, at most once per interval, while the state changes."""
        self._thread = threading.Thread(target=self._run, name="sandbox-state", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:  # a full disk must not kill the sandbox; try again next time
                log.exception("sandbox state %s could not be written", self.path)

    def stop(self) -> None:
        """The last write, when the sandbox stops."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.save()
        except Exception:
            log.exception("sandbox state %s could not be written", self.path)
