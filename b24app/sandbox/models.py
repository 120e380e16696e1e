"""The sandbox's records: the registered app, portals and what lives on them.

Plain dataclasses; the `Sandbox` facade guards them with its lock. Field names follow the protocol
document, not the app's code (the sandbox is the other side of the wire).
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta, timezone
from typing import Any

from .errors import SandboxError

LOCALHOST = "127.0.0.1"
# The database column of a badge code (an assumption: the ORM field has no size, docs/bitrix24-protocol.md §5.1).
BADGE_CODE_COLUMN = 255
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")

# CultureTable codes a portal knows (used to validate badge language keys, docs/bitrix24-protocol.md §5.2).
PORTAL_LANGUAGES = ("en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it", "tr",
                    "ja", "sc", "tc", "vn", "id", "ms", "th", "ar")


@dataclass
class PortalSettings:
    """What differs between Bitrix24 versions or sources, chosen per portal (docs/bitrix24-protocol.md §5.1, §2.3,
    §3.2). The defaults are the documented or source-backed behaviour."""

    # Longest `crm.activity.badge.add` code; None switches the core check off (then the column's 255 applies).
    badge_code_limit: int | None = 30
    # The portal's UTC offset: every date a REST answer carries is written in it.
    time_zone: str = "+03:00"
    # A refresh kills the access token issued with the used refresh token (the legacy docs).
    refresh_revokes_access: bool = True

    def __post_init__(self) -> None:
        limit = self.badge_code_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not 1 <= limit <= BADGE_CODE_COLUMN):
            raise SandboxError(f"badge_code_limit must be null or 1..{BADGE_CODE_COLUMN}, not {limit!r}")
        if not isinstance(self.time_zone, str) or not _OFFSET.match(self.time_zone):
            raise SandboxError(f"time_zone must look like +03:00, not {self.time_zone!r}")
        if not isinstance(self.refresh_revokes_access, bool):
            raise SandboxError("refresh_revokes_access must be true or false")

    @property
    def tz(self) -> timezone:
        sign, hours, minutes = _OFFSET.match(self.time_zone).groups()  # type: ignore[union-attr]
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)

    def public(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> PortalSettings:
        """A copy with `changes` applied; unknown names are misuse."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise SandboxError(f"no such portal setting: {', '.join(sorted(unknown))}")
        return PortalSettings(**{**asdict(self), **changes})


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
    scope: str = "crm,placement,user_brief,bizproc"
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


# The default stages of the default deal pipeline (category 0), in order: `crm.status.list` with
# ENTITY_ID DEAL_STAGE (docs/bitrix24-protocol.md §11.6).
DEAL_STAGES = ("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE", "WON", "LOSE", "APOLOGY")
STAGE_NAMES = {"NEW": "New", "PREPARATION": "Preparing documents", "PREPAYMENT_INVOICE": "Prepayment invoice",
               "EXECUTING": "In progress", "FINAL_INVOICE": "Final invoice", "WON": "Deal won", "LOSE": "Deal lost",
               "APOLOGY": "Analyze failure"}


@dataclass
class StageMove:
    """A deal entered a stage (the deal card's timeline)."""

    at: float
    from_stage: str
    to_stage: str
    user_id: int

    def public(self) -> dict[str, Any]:
        return {"at": self.at, "from": self.from_stage, "to": self.to_stage, "user_id": self.user_id}


@dataclass
class Deal:
    id: int
    title: str
    stage_id: str = "NEW"
    amount: float = 0.0
    moves: list[StageMove] = field(default_factory=list)

    @property
    def stage(self) -> str:
        """Alias of `stage_id`."""
        return self.stage_id

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "stage_id": self.stage_id, "stage": self.stage_id,
                "amount": self.amount}


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
    system: SystemFields | None = None  # set for activities made by crm.activity.add

    @property
    def shows_badge(self) -> bool:
        return bool(self.badge_code) and not self.completed


@dataclass
class SystemFields:
    """What a system activity (crm.activity.add, docs/bitrix24-protocol.md §5.8) has beyond the common record."""

    type_num: int
    subject: str
    author_id: int
    description: str = ""
    start_time: str = ""
    end_time: str = ""
    direction: int = 0
    priority: int = 2
    provider_id: str = ""
    provider_type_id: str = ""
    communications: list[dict[str, Any]] = field(default_factory=list)


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
    install_handler_id: int = 0  # the EventTable row of a REST-only install (docs/bitrix24-protocol.md §1.4)


@dataclass
class Robot:
    """An app's automation rule type, registered with bizproc.robot.add (docs/bitrix24-protocol.md §11.1).

    Stored as the core stores it: keys upper-cased, except the keys directly under PROPERTIES,
    RETURN_PROPERTIES and OPTIONS."""

    client_id: str
    code: str
    handler: str
    name: Any
    auth_user_id: int = 0
    use_subscription: str = ""  # "Y", "N" or "" (the user chooses per rule)
    use_placement: str = "N"
    placement_handler: str = ""
    description: Any = ""
    properties: dict[str, Any] = field(default_factory=dict)
    return_properties: dict[str, Any] = field(default_factory=dict)
    document_type: Any = None
    filter: Any = None
    id: int = 0

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "client_id": self.client_id, "code": self.code, "handler": self.handler,
                "name": self.name, "description": self.description, "auth_user_id": self.auth_user_id,
                "use_subscription": self.use_subscription, "use_placement": self.use_placement,
                "placement_handler": self.placement_handler, "properties": self.properties,
                "return_properties": self.return_properties, "document_type": self.document_type,
                "filter": self.filter}


@dataclass
class AutomationRule:
    """A robot placed on a deal stage by a portal user: it runs when a deal enters the stage."""

    id: int
    stage_id: str
    robot: str  # the robot's CODE
    client_id: str
    activity_name: str  # the template activity's name, e.g. A40364_79843_85254_57332
    properties: dict[str, Any] = field(default_factory=dict)
    use_subscription: bool | None = None  # used when the robot was registered with USE_SUBSCRIPTION ""
    auth_user_id: int | None = None  # the designer's "run as" user; None: the robot's AUTH_USER_ID
    timeout_duration: int = 0

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage_id, "robot": self.robot, "client_id": self.client_id,
                "activity_name": self.activity_name, "properties": self.properties,
                "use_subscription": self.use_subscription, "auth_user_id": self.auth_user_id,
                "timeout_duration": self.timeout_duration}


# RobotRun.status values
RUN_PENDING = "pending"  # delivered (or not) and waiting for bizproc.event.send
RUN_ANSWERED = "answered"  # bizproc.event.send closed it
RUN_COMPLETED = "completed"  # use_subscription=N: closed right after the handler POST
RUN_TIMEOUT = "timeout"  # timeout_duration passed without an answer (IsTimeout=1)
RUN_FAILED = "failed"  # never sent: the robot is not registered or the app is not installed


@dataclass
class RobotRun:
    """One execution of a robot on a deal: the handler POST, then (use_subscription=Y) the wait for the answer."""

    id: int
    client_id: str
    robot: str
    deal_id: int
    workflow_id: str
    activity_name: str
    event_id: str
    event_token: str
    use_subscription: bool
    timeout_duration: int
    started_at: float
    status: str = RUN_PENDING
    rule_id: int | None = None
    stage_id: str = ""
    handler: str = ""
    user_id: int = 0
    properties: dict[str, Any] = field(default_factory=dict)
    return_keys: list[str] = field(default_factory=list)  # RETURN_PROPERTIES names when the run started
    payload: dict[str, Any] = field(default_factory=dict)  # what was POSTed (re-sent as is by redeliver)
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # {at, status, error, duration}
    answered_at: float | None = None
    return_values: dict[str, Any] = field(default_factory=dict)
    log_message: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)  # bizproc.activity.log entries {at, message}
    ignored_answers: int = 0
    error: str = ""

    @property
    def waiting(self) -> bool:
        return self.status == RUN_PENDING and self.use_subscription

    @property
    def delivery_status(self) -> int | None:
        return self.deliveries[-1]["status"] if self.deliveries else None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "client_id": self.client_id, "robot": self.robot, "deal_id": self.deal_id,
                "stage": self.stage_id, "rule_id": self.rule_id, "workflow_id": self.workflow_id,
                "activity_name": self.activity_name, "event_token": self.event_token,
                "use_subscription": self.use_subscription, "timeout_duration": self.timeout_duration,
                "status": self.status, "started_at": self.started_at, "answered_at": self.answered_at,
                "handler": self.handler, "user_id": self.user_id, "properties": self.properties,
                "deliveries": list(self.deliveries), "delivery_status": self.delivery_status,
                "return_values": self.return_values, "log_message": self.log_message, "log": list(self.log),
                "ignored_answers": self.ignored_answers, "error": self.error}


@dataclass
class Webhook:
    id: int
    user_id: int
    code: str
    scope: str


@dataclass
class Portal:
    """One Bitrix24 account on its own address: 127.0.0.1:PORT, or (port-less domains) 127.x.y.z on port 80."""

    member_id: str
    name: str
    language: str
    port: int
    users: dict[int, User]
    deals: dict[int, Deal]
    rate: tuple[float, float] | None = (2.0, 50.0)
    license_type: str = "basic"
    host: str = LOCALHOST
    portless: bool = False  # the domain carries no port (docs/bitrix24-protocol.md §3.1)
    settings: PortalSettings = field(default_factory=PortalSettings)
    created: float = 0.0
    old_addresses: list[tuple[str, int]] = field(default_factory=list)
    badges: dict[str, Badge] = field(default_factory=dict)
    activities: dict[int, Activity] = field(default_factory=dict)
    event_handlers: list[EventHandler] = field(default_factory=list)
    placements: list[PlacementHandler] = field(default_factory=list)
    installations: dict[str, Installation] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    # app.option.set per client_id; an uninstall with CLEAN=1 drops them (docs/bitrix24-protocol.md §1.5, §6.5)
    app_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    robots: list[Robot] = field(default_factory=list)
    automation: list[AutomationRule] = field(default_factory=list)
    robot_runs: dict[int, RobotRun] = field(default_factory=dict)
    # signs bizproc event tokens (Main\Security\Sign\Signer, salt "bizproc"): another portal's tokens fail
    sign_key: str = field(default_factory=lambda: secrets.token_hex(32))
    seq: int = 0

    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def domain(self) -> str:
        return self.host if self.portless else f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def old_ports(self) -> list[int]:
        return [port for _, port in self.old_addresses]

    @property
    def tz(self) -> timezone:
        """The portal's time zone: REST dates are written in it (docs/bitrix24-protocol.md §3.2)."""
        return self.settings.tz

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
                "settings": self.settings.public(),
                "users": [u.public() for u in self.users.values()],
                "installations": {c: {"installed": i.installed, "version": i.version, "status": i.status}
                                  for c, i in self.installations.items()}}


def default_users() -> dict[int, User]:
    """Alice (admin), Bob (non-admin), Carol (admin) — ids 1, 2, 3."""
    return {1: User(1, "Alice", "Admin", True, email="alice@example.test"),
            2: User(2, "Bob", "User", False, email="bob@example.test"),
            3: User(3, "Carol", "Admin", True, email="carol@example.test")}


def demo_deals(count: int = 20) -> dict[int, Deal]:
    stages = DEAL_STAGES[:5]
    return {i: Deal(i, f"Deal #{i}", stages[i % len(stages)], float(i * 1000)) for i in range(1, count + 1)}
