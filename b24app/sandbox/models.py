"""The sandbox's records: the registered app, portals and what lives on them.

Plain dataclasses; the `Sandbox` facade guards them with its lock. Field names follow the protocol
document, not the app's code (the sandbox is the other side of the wire).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

LOCALHOST = "127.0.0.1"

# CultureTable codes a portal knows (used to validate badge language keys, docs/bitrix24-protocol.md §5.2).
PORTAL_LANGUAGES = ("en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it", "tr",
                    "ja", "sc", "tc", "vn", "id", "ms", "th", "ar")


def new_client_id() -> str:
    """`app.<14 hex>.<8 digits>`, the shape of a marketplace app's client_id (docs/bitrix24-protocol.md §8)."""
    return f"app.{secrets.token_hex(7)}.{secrets.randbelow(10**8):08d}"


def new_client_secret() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(50))


@dataclass
class AppCard:
    """The app's card in the developer console: credentials, URLs, scope, version (docs/bitrix24-protocol.md §8)."""

    client_id: str
    client_secret: str
    app_url: str
    install_path: str = "/install"
    handler_path: str = "/app"
    redirect_path: str = "/oauth/callback"
    scope: str = "crm,placement,user_brief"
    version: int = 1
    status: str = "F"
    name: str = "Activity Badges"

    def url(self, path: str) -> str:
        return self.app_url.rstrip("/") + path

    @property
    def install_url(self) -> str:
        return self.url(self.install_path)

    @property
    def handler_url(self) -> str:
        return self.url(self.handler_path)

    @property
    def redirect_uri(self) -> str:
        return self.url(self.redirect_path)

    @property
    def scopes(self) -> set[str]:
        return {s.strip() for s in self.scope.split(",") if s.strip()}

    def public(self) -> dict[str, Any]:
        """JSON view for the control API (includes the secret: this is a local test double)."""
        return {"client_id": self.client_id, "client_secret": self.client_secret, "app_url": self.app_url,
                "install_url": self.install_url, "handler_url": self.handler_url,
                "redirect_uri": self.redirect_uri, "scope": self.scope, "version": self.version,
                "status": self.status, "name": self.name}


@dataclass
class User:
    id: int
    name: str
    last_name: str
    admin: bool
    active: bool = True
    email: str = ""

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "last_name": self.last_name, "admin": self.admin,
                "active": self.active, "email": self.email}


@dataclass
class Deal:
    id: int
    title: str
    stage: str = "NEW"
    amount: float = 0.0


@dataclass
class Badge:
    code: str
    title: Any
    value: Any
    type: str

    def public(self) -> dict[str, Any]:
        return {"code": self.code, "title": self.title, "value": self.value, "type": self.type}


@dataclass
class Activity:
    """A configurable activity (provider CONFIGURABLE_REST_APP) on a CRM item (docs/bitrix24-protocol.md §5.6)."""

    id: int
    owner_type_id: int
    owner_id: int
    client_id: str
    layout: dict[str, Any]
    created: float
    updated: float
    type_id: str = "CONFIGURABLE"
    completed: bool = False
    deadline: str | None = None
    ping_offsets: list[int] = field(default_factory=list)
    is_incoming: bool = False
    responsible_id: int = 1
    badge_code: str = ""
    originator_id: str = ""
    origin_id: str = ""
    badge_seq: int = 0  # order in which badges were bound: kanban shows the latest one

    @property
    def shows_badge(self) -> bool:
        return bool(self.badge_code) and not self.completed


@dataclass
class EventHandler:
    id: int
    client_id: str
    event: str
    handler: str
    auth_type: int = 0


@dataclass
class PlacementHandler:
    id: int
    client_id: str
    placement: str
    handler: str
    title: str = ""
    description: str = ""
    group_name: str = ""
    lang_all: dict[str, Any] = field(default_factory=dict)
    options: Any = field(default_factory=list)
    user_id: int = 0


@dataclass
class Installation:
    """The app's record on one portal (`b_rest_app`): INSTALLED only after installFinish (§1.1)."""

    client_id: str
    version: int
    status: str
    scope: str
    application_token: str
    installed_by: int
    installed: bool = False
    first_run_done: set[int] = field(default_factory=set)


@dataclass
class Webhook:
    id: int
    user_id: int
    code: str
    scope: str


@dataclass
class Portal:
    """One Bitrix24 account on its own 127.0.0.1 port."""

    member_id: str
    name: str
    language: str
    port: int
    users: dict[int, User]
    deals: dict[int, Deal]
    rate: tuple[float, float] | None = (2.0, 50.0)
    license_type: str = "basic"
    old_ports: list[int] = field(default_factory=list)
    badges: dict[str, Badge] = field(default_factory=dict)
    activities: dict[int, Activity] = field(default_factory=dict)
    event_handlers: list[EventHandler] = field(default_factory=list)
    placements: list[PlacementHandler] = field(default_factory=list)
    installations: dict[str, Installation] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    seq: int = 0

    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def domain(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.domain}"

    @property
    def client_endpoint(self) -> str:
        return f"{self.base_url}/rest/"

    @property
    def license(self) -> str:
        return f"{self.language}_{self.license_type}"

    @property
    def license_family(self) -> str:
        return "ent" if self.license_type.startswith("ent") else self.license_type

    def summary(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "name": self.name, "domain": self.domain,
                "client_endpoint": self.client_endpoint, "base_url": self.base_url,
                "language": self.language, "port": self.port, "old_ports": list(self.old_ports),
                "rate": list(self.rate) if self.rate else None, "license": self.license,
                "users": [u.public() for u in self.users.values()],
                "installations": {c: {"installed": i.installed, "version": i.version, "status": i.status}
                                  for c, i in self.installations.items()}}


def default_users() -> dict[int, User]:
    """Alice (admin), Bob (non-admin), Carol (admin) — ids 1, 2, 3."""
    return {1: User(1, "Alice", "Admin", True, email="alice@example.test"),
            2: User(2, "Bob", "User", False, email="bob@example.test"),
            3: User(3, "Carol", "Admin", True, email="carol@example.test")}


def demo_deals(count: int = 20) -> dict[int, Deal]:
    stages = ("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE")
    return {i: Deal(i, f"Deal #{i}", stages[i % len(stages)], float(i * 1000)) for i in range(1, count + 1)}
