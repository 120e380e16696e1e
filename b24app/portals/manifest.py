"""install.json: the single place that says what the app asks of a portal (docs/DESIGN.md §5).

Bitrix24 has no manifest file; the developer console is a web form. This file drives what install
and update bind (idempotently) and what `flask b24 manifest` tells a developer to enter there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import REPO_ROOT
from ..errors import ConfigError

MANIFEST_PATH = REPO_ROOT / "install.json"
HANDLER_NAMES = ("install", "app", "events", "oauth_callback")


class ManifestError(ConfigError):
    """install.json is missing or malformed; the message names the field."""

    def __init__(self, message: str) -> None:
        super().__init__("install.json", message)


@dataclass(frozen=True)
class Placement:
    placement: str
    handler: str
    title: dict[str, str]


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    scopes: tuple[str, ...]
    handlers: dict[str, str]
    placements: tuple[Placement, ...]
    events: tuple[str, ...]

    def url(self, app_url: str, handler: str) -> str:
        """Absolute URL of a handler path ("/app") or handler name ("events") under B24_APP_URL."""
        path = self.handlers.get(handler, handler)
        return f"{app_url.rstrip('/')}{path}"


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise ManifestError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError("expected a JSON object")

    def need(key: str, kind: type) -> Any:
        value = data.get(key)
        if not isinstance(value, kind):
            raise ManifestError(f"'{key}' must be a {kind.__name__}")
        return value

    handlers = need("handlers", dict)
    for name in HANDLER_NAMES:
        if not isinstance(handlers.get(name), str) or not handlers[name].startswith("/"):
            raise ManifestError(f"handlers.{name} must be a path starting with '/'")
    placements = []
    for index, item in enumerate(need("placements", list)):
        if not isinstance(item, dict) or not isinstance(item.get("placement"), str) \
                or not str(item.get("handler", "")).startswith("/") or not isinstance(item.get("title"), dict):
            raise ManifestError(f"placements[{index}] needs placement, handler (a path) and title")
        placements.append(Placement(item["placement"], item["handler"], dict(item["title"])))
    events = need("events", list)
    scopes = need("scopes", list)
    if not all(isinstance(x, str) and x for x in [*events, *scopes]):
        raise ManifestError("'events' and 'scopes' must list non-empty strings")
    version = need("version", int)
    return Manifest(name=need("name", str), version=version, scopes=tuple(scopes), handlers=dict(handlers),
                    placements=tuple(placements), events=tuple(e.upper() for e in events))
