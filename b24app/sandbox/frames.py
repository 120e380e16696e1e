"""Frame sessions: one per iframe render, keyed by APP_SID (docs/bitrix24-protocol.md §1.2, §7.2).

A portal renders the app in an iframe with a form POST and links the frame to the b24jssdk
postMessage channel by APP_SID. The sandbox remembers each render so the portal page can answer
`getInitData`, mint fresh tokens for `refreshAuth`, finish the install on `setInstallFinish`, and log
every command it receives for tests to assert on.
"""
from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class FrameSession:
    app_sid: str
    member_id: str
    client_id: str
    user_id: int
    placement: str
    options: dict[str, Any]
    url: str
    installer: bool
    created: float
    form: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    lang: str = ""  # LANG of this render: the user's language (the portal page's switch), else the portal's

    @property
    def frame_name(self) -> str:
        """`DOMAIN|PROTOCOL|APP_SID`: how @bitrix24/b24jssdk finds its parent (window.name)."""
        return f"{self.query['DOMAIN']}|{self.query['PROTOCOL']}|{self.app_sid}"

    @property
    def action(self) -> str:
        """The iframe form's action: handler URL plus the query part of the POST."""
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}{urlencode(self.query)}"


def new_app_sid() -> str:
    return secrets.token_hex(16)


def placement_options_json(options: dict[str, Any] | None) -> str:
    """PLACEMENT_OPTIONS is a JSON *string* in the POST, encoded like PHP's json_encode."""
    return json.dumps(options or {}, separators=(",", ":"))


class FrameLog:
    """Every postMessage command a portal page received, in order. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(entry)

    def items(self, member_id: str | None = None, command: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items)
        return [i for i in items if (member_id is None or i.get("member_id") == member_id)
                and (command is None or i.get("command") == command)]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
