"""install.json: the single place that says what the app asks of a portal (docs/DESIGN.md §5).

Bitrix24 has no manifest file; the developer console is a web form. This file drives what install
and update bind (idempotently) and what `flask b24 manifest` tells a developer to enter there.

`robots` are registered with `bizproc.robot.add` (docs/bitrix24-protocol.md §11.1); their `properties`
and `return_properties` are sent as written, except that a `select` whose `Options` is the string
"badges" lists the portal's badges at the time of registration (a plain text field while it has none).
"""
from __future__ import annotations

import json
import re
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


BADGE_OPTIONS = "badges"
_ROBOT_CODE_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_PROPERTY_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Robot:
    code: str
    handler: str
    name: dict[str, str]
    description: dict[str, str]
    use_subscription: str
    filter: dict[str, Any]
    properties: dict[str, dict[str, Any]]
    return_properties: dict[str, dict[str, Any]]

    def fields(self, handler_url: str, badges: dict[str, str], auth_user_id: int) -> dict[str, Any]:
        """What `bizproc.robot.add` takes besides CODE (and `bizproc.robot.update` as FIELDS).

        `auth_user_id` is whose token each run carries: with 0 the sender is not documented (§11.5)."""
        properties = {key: _with_badges(prop, badges) for key, prop in self.properties.items()}
        return {"HANDLER": handler_url, "AUTH_USER_ID": auth_user_id, "USE_SUBSCRIPTION": self.use_subscription,
                "NAME": dict(self.name), "DESCRIPTION": dict(self.description), "PROPERTIES": properties,
                "RETURN_PROPERTIES": {key: dict(prop) for key, prop in self.return_properties.items()},
                "FILTER": self.filter}


def _with_badges(prop: dict[str, Any], badges: dict[str, str]) -> dict[str, Any]:
    if prop.get("Options") != BADGE_OPTIONS:
        return dict(prop)
    if not badges:
        return {key: value for key, value in prop.items() if key != "Options"} | {"Type": "string"}
    return prop | {"Options": dict(badges)}


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    scopes: tuple[str, ...]
    handlers: dict[str, str]
    placements: tuple[Placement, ...]
    events: tuple[str, ...]
    robots: tuple[Robot, ...] = ()

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
    robots = tuple(_robot(index, item) for index, item in enumerate(data.get("robots", [])))
    if robots and "bizproc" not in scopes:
        raise ManifestError("robots need the 'bizproc' scope")
    return Manifest(name=need("name", str), version=version, scopes=tuple(scopes), handlers=dict(handlers),
                    placements=tuple(placements), events=tuple(e.upper() for e in events), robots=robots)


def _robot(index: int, item: Any) -> Robot:
    where = f"robots[{index}]"
    if not isinstance(item, dict):
        raise ManifestError(f"{where} must be an object")
    code, handler = item.get("code"), item.get("handler")
    if not isinstance(code, str) or not _ROBOT_CODE_RE.match(code):
        raise ManifestError(f"{where}.code must be letters, digits, '.', '-' or '_'")
    if not isinstance(handler, str) or not handler.startswith("/"):
        raise ManifestError(f"{where}.handler must be a path starting with '/'")
    name = item.get("name")
    if not isinstance(name, dict) or not name:
        raise ManifestError(f"{where}.name must map languages to names")
    sections = {}
    for section in ("properties", "return_properties"):
        props = item.get(section, {})
        if not isinstance(props, dict) or not all(
                isinstance(k, str) and _PROPERTY_KEY_RE.match(k) and isinstance(v, dict) and v.get("Name")
                for k, v in props.items()):
            raise ManifestError(f"{where}.{section} must map keys (a letter, then letters, digits, _) to "
                                f"properties with a Name")
        sections[section] = {k: dict(v) for k, v in props.items()}
    use_subscription = str(item.get("use_subscription", ""))
    if use_subscription not in ("Y", "N", ""):
        raise ManifestError(f"{where}.use_subscription must be 'Y', 'N' or ''")
    return Robot(code=code, handler=handler, name=dict(name), description=dict(item.get("description") or {}),
                 use_subscription=use_subscription, filter=dict(item.get("filter") or {}),
                 properties=sections["properties"], return_properties=sections["return_properties"])
