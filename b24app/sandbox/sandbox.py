"""The `Sandbox`: the whole emulated Bitrix24 (OAuth server state + portals) behind one lock.

This is the Python API tests and the CLI use; the HTTP control API (`control.py`) mirrors it.
Everything here is thread-safe: public methods take `self.lock` (an RLock) around state changes,
and never hold it while talking to the app over HTTP.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .clock import Clock
from .counters import Counters
from .errors import SandboxError
from .faults import FaultRegistry
from .frames import FrameLog, FrameSession
from .layout import localized
from .lifecycle import Lifecycle
from .limits import LeakyBucket, OperatingTime
from .methods.activities import activity_view
from .models import (
    DEAL_STAGES,
    LOCALHOST,
    PORTAL_LANGUAGES,
    AppCard,
    AutomationRule,
    Badge,
    Deal,
    Portal,
    PortalSettings,
    Robot,
    RobotRun,
    User,
    Webhook,
    default_users,
    demo_deals,
    new_client_id,
    new_client_secret,
)
from .outbound import Delivery, HttpResult, Outbox
from .persist import SavedState
from .robots import Automation
from .tokens import ACCESS_TTL, AccessToken, RefreshToken, TokenStore

log = logging.getLogger("b24app.sandbox")

PortalRef = Portal | str
Address = tuple[str, int]
OpenAddress = Callable[[str, int], int]  # (host, port or 0) -> the bound port
CloseAddress = Callable[[str, int], None]
PORTLESS_PORT = 80  # a domain without a port means port 80 (docs/bitrix24-protocol.md §3.1)
# The app's scopes when register_app is not told: what install.json asks for (robots need bizproc, §11.1).
DEFAULT_SCOPE = "crm,placement,user_brief,bizproc"


class Sandbox:
    """State and Python API of the sandbox. Create it through `start_sandbox()`."""

    def __init__(self, *, event_timeout: float = 10.0) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.tokens = TokenStore()
        self.bucket = LeakyBucket()
        self.operating = OperatingTime()
        self.faults = FaultRegistry()
        self.counters = Counters()
        self.outbox = Outbox(self.counters, event_timeout)
        self.frame_log = FrameLog()
        self.apps: dict[str, AppCard] = {}
        self.portals: dict[str, Portal] = {}
        self.frames: dict[str, FrameSession] = {}
        self.lifecycle = Lifecycle(self)
        self.automation = Automation(self)
        self.stopping = threading.Event()
        self.oauth_url = ""
        self.portless_domains = False
        self._addresses: dict[Address, tuple[str, str]] = {}
        self._costs: dict[tuple[str | None, str], float] = {}
        self._badge_seq = 0
        self._open_address: OpenAddress | None = None
        self._close_address: CloseAddress | None = None

    def attach(self, oauth_url: str, open_address: OpenAddress, close_address: CloseAddress, *,
               portless_domains: bool = False) -> None:
        """Wire the sockets layer in (done by `start_sandbox`)."""
        self.oauth_url = oauth_url.rstrip("/")
        self._open_address = open_address
        self._close_address = close_address
        self.portless_domains = portless_domains

    def restore(self, saved: SavedState) -> None:
        """Take back a saved state (persist.py): apps, tokens, the clock, and every portal on its old address.
        A portal whose address is taken now gets a new one (its DOMAIN changes; logged)."""
        with self.lock:
            self.clock.restore(saved.clock_offset)
            self._badge_seq = max(self._badge_seq, saved.badge_seq)
            for card in saved.apps:
                self.apps[card.client_id] = card
            self.tokens.restore(saved.access, saved.refresh, saved.codes, saved.issued)
        for portal in saved.portals:
            wanted = portal.domain
            try:
                self._reopen(portal.host, portal.port)
            except OSError as exc:
                portal.host, portal.port = self._new_address()
                portal.portless = self.portless_domains
                log.warning("sandbox portal %s could not get %s back (%s); it is now at %s", portal.name, wanted,
                            exc.strerror or exc, portal.domain)
            kept = []
            for host, port in portal.old_addresses:
                try:
                    self._reopen(host, port)
                except OSError:
                    continue
                kept.append((host, port))
            portal.old_addresses = kept
            with self.lock:
                self.portals[portal.member_id] = portal
                self._addresses[portal.address] = ("portal", portal.member_id)
                for address in kept:
                    self._addresses[address] = ("moved", portal.member_id)

    def _reopen(self, host: str, port: int) -> None:
        if self._open_address is None:
            raise SandboxError("sandbox is not started (use start_sandbox)")
        if (host, port) in self._addresses:
            raise OSError(errno.EADDRINUSE, "already used by another portal")
        self._open_address(host, port)

    def _new_address(self) -> Address:
        """127.0.0.1 and a fresh port; or, for port-less domains, a loopback address of its own on port 80."""
        if self._open_address is None:
            raise SandboxError("sandbox is not started (use start_sandbox)")
        if not self.portless_domains:
            return LOCALHOST, self._open_address(LOCALHOST, 0)
        for _ in range(100):
            host = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
            if (host, PORTLESS_PORT) in self._addresses:
                continue
            try:
                return host, self._open_address(host, PORTLESS_PORT)
            except PermissionError as exc:
                raise SandboxError("port-less domains listen on port 80: run as root, or lower "
                                   "net.ipv4.ip_unprivileged_port_start") from exc
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise SandboxError("no free loopback address on port 80 for a port-less portal")

    # -- addresses ----------------------------------------------------------------------------------
    @property
    def server_endpoint(self) -> str:
        """The OAuth server's REST base, `http://127.0.0.1:P0/rest/` (SERVER_ENDPOINT)."""
        return f"{self.oauth_url}/rest/"

    @property
    def oauth_host(self) -> str:
        """`127.0.0.1:P0`, sent as `server_domain` and as the token response's `domain`."""
        return self.oauth_url.split("://", 1)[-1]

    # -- apps ---------------------------------------------------------------------------------------
    def register_app(self, client_id: str | None = None, client_secret: str | None = None, *,
                     app_url: str, install_path: str = "/install", handler_path: str = "/app",
                     redirect_path: str = "/oauth/callback", scope: str = DEFAULT_SCOPE,
                     version: int = 1, status: str = "F", name: str = "Activity Badges") -> AppCard:
        """Register an app (its developer-console card); credentials are generated when not given."""
        card = AppCard(client_id or new_client_id(), client_secret or new_client_secret(), app_url.rstrip("/"),
                       install_path, handler_path, redirect_path, scope, int(version), status, name)
        with self.lock:
            self.apps[card.client_id] = card
        return card

    def app(self, client_id: str | None = None) -> AppCard:
        """The app with this client_id, or (None) the default app: the first one registered."""
        with self.lock:
            if client_id is not None:
                card = self.apps.get(client_id)
                if card is None:
                    raise SandboxError(f"unknown client_id {client_id!r}")
                return card
            if not self.apps:
                raise SandboxError("no app registered: call register_app() first")
            return next(iter(self.apps.values()))

    def app_number(self, client_id: str) -> int:
        """Stable small id of an app (portal app.info `ID`): its registration order."""
        with self.lock:
            return list(self.apps).index(client_id) + 1 if client_id in self.apps else 0

    # -- portals ------------------------------------------------------------------------------------
    def create_portal(self, name: str | None = None, language: str = "en",
                      rate: tuple[float, float] | None = (2, 50),
                      users: dict[int, User] | Iterable[User] | None = None,
                      deals: int = 20, license_type: str | None = None,
                      settings: PortalSettings | Mapping[str, Any] | None = None) -> Portal:
        """A new portal on its own address, with users 1 Alice (admin), 2 Bob, 3 Carol (admin) unless `users` is
        given, and demo deals 1..`deals`. `rate=None` disables the request-intensity limit; `settings`
        (a PortalSettings or a dict of its fields) picks version-dependent behaviour."""
        if language not in PORTAL_LANGUAGES:
            raise SandboxError(f"unknown portal language {language!r}")
        chosen = self._settings(settings)
        host, port = self._new_address()
        member_id = secrets.token_hex(16)
        lic = license_type or ("ent250" if rate and rate[1] >= 250 else "basic")
        given = list(users.values() if isinstance(users, dict) else users) if users else []
        people = {u.id: dataclasses.replace(u) for u in given} or default_users()
        default_name = f"portal-{host.replace('.', '-')}" if self.portless_domains else f"portal-{port}"
        portal = Portal(member_id, name or default_name, language, port, people,
                        demo_deals(deals), (float(rate[0]), float(rate[1])) if rate else None, lic,
                        host=host, portless=self.portless_domains, settings=chosen, created=self.clock.now())
        portal.seq = max([*portal.deals, 0]) + 100
        with self.lock:
            self.portals[member_id] = portal
            self._addresses[portal.address] = ("portal", member_id)
        return portal

    @staticmethod
    def _settings(settings: PortalSettings | Mapping[str, Any] | None) -> PortalSettings:
        if isinstance(settings, PortalSettings):
            return dataclasses.replace(settings)
        return PortalSettings().updated(settings or {})

    def configure_portal(self, ref: PortalRef, **changes: Any) -> PortalSettings:
        """Change a portal's settings (badge_code_limit, time_zone, refresh_revokes_access); returns them all."""
        portal = self.portal(ref)
        with self.lock:
            portal.settings = portal.settings.updated(changes)
            return portal.settings

    def portal(self, ref: PortalRef) -> Portal:
        """Look a portal up by object, member_id, domain (`127.0.0.1:PORT`, or `127.x.y.z`) or name."""
        if isinstance(ref, Portal):
            return ref
        with self.lock:
            found = self.portals.get(ref)
            if found is not None:
                return found
            for portal in self.portals.values():
                if ref in (portal.domain, portal.name, portal.base_url):
                    return portal
        raise SandboxError(f"unknown portal {ref!r}")

    def route(self, host: str, port: int) -> tuple[str, Portal | None]:
        """Which portal a local address serves: ("portal", p), ("moved", p) after a rename, or ("", None)."""
        with self.lock:
            kind, member_id = self._addresses.get((host, port), ("", ""))
            return kind, self.portals.get(member_id)

    def rename_portal(self, ref: PortalRef, name: str | None = None) -> Portal:
        """Move the portal to a new address (new DOMAIN); the old address then answers 302."""
        portal = self.portal(ref)
        host, port = self._new_address()
        with self.lock:
            self._addresses[portal.address] = ("moved", portal.member_id)
            portal.old_addresses.append(portal.address)
            portal.host, portal.port = host, port
            portal.name = name or portal.name
            self._addresses[portal.address] = ("portal", portal.member_id)
        return portal

    def remove_portal(self, ref: PortalRef) -> None:
        """Delete the portal: its addresses stop listening and its tokens are forgotten."""
        portal = self.portal(ref)
        with self.lock:
            self.portals.pop(portal.member_id, None)
            addresses = [portal.address, *portal.old_addresses]
            for address in addresses:
                self._addresses.pop(address, None)
            for client_id in list(self.apps):
                self.tokens.forget_install(client_id, portal.member_id)
        if self._close_address is not None:
            for host, port in addresses:
                self._close_address(host, port)

    def set_rate(self, ref: PortalRef, rate: tuple[float, float] | None) -> None:
        """Per-portal leaky bucket (rps, burst); None disables the request-intensity limit."""
        portal = self.portal(ref)
        with self.lock:
            portal.rate = (float(rate[0]), float(rate[1])) if rate else None
            self.bucket.reset(portal.member_id)

    def add_user(self, ref: PortalRef, name: str, last_name: str = "", admin: bool = False, email: str = "") -> User:
        """Add an active user with the next free id."""
        portal = self.portal(ref)
        with self.lock:
            user_id = max(portal.users) + 1
            user = User(user_id, name, last_name, admin, True, email or f"user{user_id}@example.test")
            portal.users[user_id] = user
        return user

    def fire_user(self, ref: PortalRef, user_id: int) -> None:
        """Deactivate a user: REST calls with their tokens then get 401 authorization_error."""
        portal = self.portal(ref)
        with self.lock:
            self._user(portal, user_id).active = False

    def set_admin(self, ref: PortalRef, user_id: int, admin: bool) -> None:
        """Grant or take away portal-admin rights (profile.ADMIN, user.admin, badge add/delete)."""
        portal = self.portal(ref)
        with self.lock:
            self._user(portal, user_id).admin = admin

    @staticmethod
    def _user(portal: Portal, user_id: int) -> User:
        user = portal.users.get(int(user_id))
        if user is None:
            raise SandboxError(f"no user {user_id} on {portal.domain}")
        return user

    def add_deal(self, ref: PortalRef, title: str, stage: str = "NEW") -> Deal:
        """A new deal in `stage` (configurable activities need an existing owner); no robot runs."""
        portal = self.portal(ref)
        stage = self.automation.stage(stage)
        with self.lock:
            deal_id = max([*portal.deals, 0]) + 1
            deal = Deal(deal_id, title, stage)
            portal.deals[deal_id] = deal
        return deal

    def delete_deal(self, ref: PortalRef, deal_id: int) -> None:
        """The deal is deleted, and its activities with it (as crm.deal.delete does)."""
        portal = self.portal(ref)
        with self.lock:
            if portal.deals.pop(int(deal_id), None) is None:
                raise SandboxError(f"no deal {deal_id} on {portal.domain}")
            for activity_id in [a.id for a in portal.activities.values()
                                if a.owner_type_id == 2 and a.owner_id == int(deal_id)]:
                del portal.activities[activity_id]

    def create_webhook(self, ref: PortalRef, user_id: int = 1, scope: str = "crm,user,placement") -> dict[str, Any]:
        """An inbound webhook `/rest/<user_id>/<code>/` for that user."""
        portal = self.portal(ref)
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        code = "".join(secrets.choice(alphabet) for _ in range(16))
        with self.lock:
            self._user(portal, user_id)
            hook = Webhook(portal.next_id(), int(user_id), code, scope)
            portal.webhooks[code] = hook
        return {"id": hook.id, "user_id": hook.user_id, "code": code, "scope": scope,
                "url": f"{portal.client_endpoint}{hook.user_id}/{code}/"}

    # -- limits -------------------------------------------------------------------------------------
    def set_operating_limit(self, seconds: float) -> None:
        """Operating-time limit per method and app over 10 minutes (default 480 s, docs/bitrix24-protocol.md §4.2)."""
        with self.lock:
            self.operating.limit = float(seconds)

    def set_method_cost(self, method: str, seconds: float, portal: PortalRef | None = None) -> None:
        """Simulated execution time added to each call of `method` (to reach the 429 quickly)."""
        member = self.portal(portal).member_id if portal is not None else None
        with self.lock:
            self._costs[(member, method.lower())] = float(seconds)

    def method_cost(self, member_id: str, method: str) -> float:
        """The simulated cost of one call (portal-specific first, then global)."""
        return self._costs.get((member_id, method), self._costs.get((None, method), 0.0))

    def reset_limits(self, ref: PortalRef | None = None) -> None:
        """Empty the leaky bucket and operating-time buckets (of one portal, or all)."""
        member = self.portal(ref).member_id if ref is not None else None
        with self.lock:
            self.bucket.reset(member)
            self.operating.reset(member)

    @property
    def badge_seq(self) -> int:
        return self._badge_seq

    def next_badge_seq(self) -> int:
        """Order of badge bindings, so the kanban can show the most recent one (docs/bitrix24-protocol.md §5.1)."""
        self._badge_seq += 1
        return self._badge_seq

    # -- tokens -------------------------------------------------------------------------------------
    def token_payload(self, portal: Portal, app: AppCard, access: AccessToken, refresh: RefreshToken) -> dict[str, Any]:
        """The OAuth token response (docs/bitrix24-protocol.md §2.3)."""
        inst = portal.installations.get(app.client_id)
        return {"access_token": access.token, "expires": int(access.expires_at), "expires_in": ACCESS_TTL,
                "scope": app.scope, "domain": self.oauth_host, "server_endpoint": self.server_endpoint,
                "status": inst.status if inst else app.status, "client_endpoint": portal.client_endpoint,
                "member_id": portal.member_id, "user_id": access.user_id, "refresh_token": refresh.token}

    def issue_tokens(self, ref: PortalRef, user_id: int = 1, client_id: str | None = None) -> dict[str, Any]:
        """A fresh token chain for a user of an installed app (token-response shape)."""
        portal, app = self.portal(ref), self.app(client_id)
        with self.lock:
            if app.client_id not in portal.installations:
                raise SandboxError("the app is not installed on this portal")
            self._user(portal, user_id)
            access, refresh = self.tokens.issue(app.client_id, portal.member_id, int(user_id), self.clock.now())
            return self.token_payload(portal, app, access, refresh)

    def expire_tokens(self, ref: PortalRef, user_id: int | None = None) -> int:
        """Make live access tokens of the portal (optionally one user's) expired; returns how many."""
        portal = self.portal(ref)
        with self.lock:
            return self.tokens.expire(portal.member_id, self.clock.now(), user_id=user_id)

    def revoke_tokens(self, ref: PortalRef, user_id: int | None = None) -> int:
        """Access tokens become invalid (401 invalid_token)."""
        portal = self.portal(ref)
        with self.lock:
            return self.tokens.revoke_access(portal.member_id, user_id=user_id)

    def revoke_refresh(self, ref: PortalRef, user_id: int | None = None) -> int:
        """Unused refresh tokens become invalid (invalid_grant on refresh)."""
        portal = self.portal(ref)
        with self.lock:
            return self.tokens.revoke_refresh(portal.member_id, user_id=user_id)

    # -- lifecycle (see lifecycle.py) -----------------------------------------------------------------
    def install(self, ref: PortalRef, user_id: int = 1, send_application_token: bool = True,
                rest_only: bool = False, client_id: str | None = None, lang: str | None = None) -> HttpResult:
        """Installer POST (or REST-only ONAPPINSTALL); see Lifecycle.install. `lang`: the installer's LANG."""
        return self.lifecycle.install(self.portal(ref), self.app(client_id), user_id, send_application_token,
                                      rest_only, lang)

    def install_finish(self, ref: PortalRef, client_id: str | None = None) -> list[Delivery]:
        """installFinish: INSTALLED=Y, then ONAPPINSTALL to the bound handlers."""
        return self.lifecycle.install_finish(self.portal(ref), self.app(client_id))

    def update(self, ref: PortalRef, version: int, rotate_application_token: bool = True,
               client_id: str | None = None) -> list[Delivery]:
        """New version: bindings wiped, ONAPPUPDATE to the former ONAPPUPDATE handlers."""
        return self.lifecycle.update(self.portal(ref), self.app(client_id), version, rotate_application_token)

    def uninstall(self, ref: PortalRef, clean: bool = True, client_id: str | None = None) -> list[Delivery]:
        """Uninstall: tokens die, bindings go, ONAPPUNINSTALL (no tokens)."""
        return self.lifecycle.uninstall(self.portal(ref), self.app(client_id), clean)

    def open_app(self, ref: PortalRef, user_id: int = 1, placement: str = "DEFAULT",
                 options: dict[str, Any] | None = None, client_id: str | None = None,
                 send_application_token: bool = True, lang: str | None = None) -> HttpResult:
        """The iframe POST a portal makes when a user opens the app or a placement; `lang` is the user's UI
        language (LANG), by default the portal's."""
        return self.lifecycle.open_app(self.portal(ref), self.app(client_id), user_id, placement, options,
                                       send_application_token, lang)

    def frame_auth(self, ref: PortalRef, user_id: int = 1, client_id: str | None = None,
                   lang: str | None = None) -> dict[str, Any]:
        """Fresh AUTH_ID/REFRESH_ID for a user, as the parent window hands them out."""
        return self.lifecycle.frame_auth(self.portal(ref), self.app(client_id), user_id, lang)

    def application_token(self, ref: PortalRef, client_id: str | None = None) -> str:
        """The installation's current application_token (as sent in events)."""
        portal, app = self.portal(ref), self.app(client_id)
        with self.lock:
            inst = portal.installations.get(app.client_id)
            if inst is None:
                raise SandboxError("the app is not installed on this portal")
            return inst.application_token

    def deliveries(self, ref: PortalRef | None = None, event: str | None = None) -> list[Delivery]:
        """Recorded event deliveries, optionally for one portal and/or event."""
        member = self.portal(ref).member_id if ref is not None else None
        return self.outbox.deliveries(member, event)

    # -- automation rules and robots (see robots.py) ---------------------------------------------------
    @property
    def deal_stages(self) -> tuple[str, ...]:
        """The stages of the deal pipeline, in order."""
        return DEAL_STAGES

    def robots(self, ref: PortalRef, client_id: str | None = None) -> list[Robot]:
        """Robots registered on the portal with bizproc.robot.add (of one app, or all)."""
        portal = self.portal(ref)
        with self.lock:
            return [r for r in portal.robots if client_id is None or r.client_id == client_id]

    def add_automation(self, ref: PortalRef, stage: str, robot: str, properties: Mapping[str, Any] | None = None, *,
                       use_subscription: bool | str | None = None, auth_user_id: int | None = None,
                       timeout_duration: int = 0, client_id: str | None = None) -> AutomationRule:
        """Place the app's robot (its CODE) on a deal stage with these property values, as a user does in the
        automation designer; it runs when a deal enters the stage."""
        return self.automation.add_rule(self.portal(ref), self.app(client_id), stage, robot,
                                        dict(properties or {}), use_subscription, auth_user_id, timeout_duration)

    def automation_rules(self, ref: PortalRef) -> dict[str, list[AutomationRule]]:
        """The portal's automation rules by stage, in pipeline order."""
        return self.automation.rules(self.portal(ref))

    def remove_automation(self, ref: PortalRef, rule_id: int | None = None, stage: str | None = None) -> int:
        """Remove one rule, a stage's rules, or (no arguments) all; returns how many."""
        return self.automation.remove_rules(self.portal(ref), rule_id, stage)

    def move_deal(self, ref: PortalRef, deal_id: int, stage: str, user_id: int = 1) -> list[RobotRun]:
        """Move a deal to a stage: that stage's robots run (their handler POSTs are sent before this returns)."""
        return self.automation.move_deal(self.portal(ref), deal_id, stage, user_id)

    def run_robot(self, ref: PortalRef, deal_id: int, robot: str, properties: Mapping[str, Any] | None = None, *,
                  use_subscription: bool | str | None = None, auth_user_id: int | None = None,
                  timeout_duration: int = 0, client_id: str | None = None, document_id: list[str] | None = None,
                  deliver: bool = True) -> RobotRun:
        """Run one robot on a deal now, as if a rule had fired (see Automation.run_robot)."""
        return self.automation.run_robot(self.portal(ref), self.app(client_id), deal_id, robot,
                                         dict(properties or {}), use_subscription, auth_user_id, timeout_duration,
                                         document_id, deliver)

    def redeliver_run(self, ref: PortalRef, run_id: int) -> Delivery:
        """POST a run to its handler again, unchanged (same workflow_id, event_token, ts and tokens)."""
        return self.automation.redeliver(self.portal(ref), run_id)

    def robot_runs(self, ref: PortalRef, deal_id: int | None = None, status: str | None = None,
                   robot: str | None = None) -> list[RobotRun]:
        """Robot runs of the portal, oldest first (optionally of one deal, status or robot)."""
        return self.automation.runs(self.portal(ref), deal_id, status, robot)

    def robot_run(self, ref: PortalRef, run_id: int) -> RobotRun:
        return self.automation.run(self.portal(ref), run_id)

    def deal_timeline(self, ref: PortalRef, deal_id: int) -> list[dict[str, Any]]:
        """The deal card's timeline: stage moves and robot runs with what the app answered."""
        return self.automation.timeline(self.portal(ref), deal_id)

    # -- views --------------------------------------------------------------------------------------
    def deal_badge(self, ref: PortalRef, deal_id: int) -> Badge | None:
        """The badge the deal's kanban card shows: the latest-bound open configurable activity's."""
        portal = self.portal(ref)
        with self.lock:
            shown = [a for a in portal.activities.values()
                     if a.owner_type_id == 2 and a.owner_id == int(deal_id) and a.shows_badge
                     and a.badge_code in portal.badges]
            if not shown:
                return None
            latest = max(shown, key=lambda a: (a.badge_seq, a.id))
            return portal.badges[latest.badge_code]

    def badge_display(self, badge: Badge, lang: str) -> dict[str, str]:
        """How the kanban renders a badge: localized title, value in upper case (docs/bitrix24-protocol.md §5.2)."""
        return {"code": badge.code, "type": badge.type, "title": localized(badge.title, lang),
                "value": localized(badge.value, lang).upper()}

    def state(self, ref: PortalRef) -> dict[str, Any]:
        """Everything on one portal, as JSON (for the control API and debugging)."""
        portal = self.portal(ref)
        with self.lock:
            return {**portal.summary(),
                    "badges": [b.public() for b in portal.badges.values()],
                    "activities": [{**activity_view(a), "client_id": a.client_id} for a in portal.activities.values()],
                    "event_handlers": [{"id": h.id, "client_id": h.client_id, "event": h.event, "handler": h.handler,
                                        "auth_type": h.auth_type} for h in portal.event_handlers],
                    "placements": [{"id": p.id, "client_id": p.client_id, "placement": p.placement,
                                    "handler": p.handler, "title": p.title, "lang_all": p.lang_all}
                                   for p in portal.placements],
                    "webhooks": [{"id": w.id, "user_id": w.user_id, "code": w.code} for w in portal.webhooks.values()],
                    "deals": [d.public() for d in portal.deals.values()],
                    "robots": [r.public() for r in portal.robots],
                    "automation": [r.public() for r in portal.automation],
                    "robot_runs": [r.public() for r in portal.robot_runs.values()]}
