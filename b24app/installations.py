"""Installations: everything Bitrix24 sends us about a portal, verified before it is believed.

Nothing in an install, iframe or event POST is trusted for routing: the token it carries is shown
to the OAuth server (the configured, allow-listed one), whose app.info says which app, portal and
user it belongs to. Only then is anything stored or any portal called — and always at the
`client_endpoint` the OAuth server named, never the one the request claims.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import redis

from .config import Config
from .limiter import OperatingBudget, RateLimiter, RateLimitTimeout
from .manifest import Manifest
from .oauth import AppInfo, OAuthClient, OAuthError, OAuthUnavailable
from .portal_http import PortalHTTP
from .rest import PortalClient, RestResult, call_with_token
from .rest_errors import B24Error
from .sessions import InvalidSession, SessionSigner, StateSigner
from .store import ACTIVE, NEEDS_REAUTH, UNINSTALLED, Installation, InstallationStore
from .tokens import PortalUnavailable, TokenManager

log = logging.getLogger(__name__)

PORTAL_DATA_PATTERNS = ("b24:cache:{%s}*", "b24:deal:{%s}*", "b24:idem:{%s}*", "b24:op:{%s}", "b24:rate:{%s}",
                        "b24:state:{%s}*", "b24:lock:{%s}")


class Unverified(Exception):
    """The request could not be shown to come from a portal that installed this app."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class FrameRequest:
    """The iframe POST a portal sends to the installer, the app page and every placement (§1.2)."""

    domain: str
    member_id: str
    auth_id: str = field(repr=False)
    refresh_id: str = field(default="", repr=False)
    auth_expires: int = 3600
    protocol: str = "1"
    lang: str = "en"
    app_sid: str = ""
    status: str = ""
    placement: str = "DEFAULT"
    placement_options: dict[str, Any] = field(default_factory=dict)
    application_token: str = field(default="", repr=False)

    @classmethod
    def parse(cls, form: Mapping[str, str], args: Mapping[str, str]) -> FrameRequest:
        def get(name: str, default: str = "") -> str:
            return str(form.get(name) or args.get(name) or default).strip()

        domain, member_id, auth_id = get("DOMAIN").lower(), get("member_id"), get("AUTH_ID")
        missing = [name for name, value in (("DOMAIN", domain), ("member_id", member_id), ("AUTH_ID", auth_id))
                   if not value]
        if missing:
            raise Unverified(f"missing {', '.join(missing)}: open this app from your Bitrix24 portal", 400)
        try:
            expires = int(get("AUTH_EXPIRES", "3600"))
        except ValueError:
            expires = 3600
        return cls(domain=domain, member_id=member_id, auth_id=auth_id, refresh_id=get("REFRESH_ID"),
                   auth_expires=max(0, min(expires, 3600)), protocol=get("PROTOCOL", "1"),
                   lang=get("LANG", "en")[:5].lower(), app_sid=get("APP_SID")[:128], status=get("status"),
                   placement=get("PLACEMENT", "DEFAULT").upper()[:100],
                   placement_options=parse_placement_options(get("PLACEMENT_OPTIONS")),
                   application_token=get("APPLICATION_TOKEN"))


@dataclass(frozen=True)
class VerifiedFrame:
    frame: FrameRequest
    info: AppInfo
    user_id: int
    is_admin: bool
    portal_origin: str


@dataclass(frozen=True)
class EventOutcome:
    event: str
    member_id: str
    status: int = 200
    message: str = "ok"


@dataclass(frozen=True)
class BindReport:
    bound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def parse_placement_options(raw: str) -> dict[str, Any]:
    """PLACEMENT_OPTIONS is a JSON string, or junk such as 'undefined' on some placements (§1.2)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def unflatten(form: Mapping[str, Any]) -> dict[str, Any]:
    """`auth[member_id]=x&data[FIELDS][ID]=7` → {"auth": {"member_id": "x"}, "data": {"FIELDS": {"ID": "7"}}}."""
    tree: dict[str, Any] = {}
    for raw_key, value in form.items():
        head, _, rest = raw_key.partition("[")
        parts = [head] + [p.rstrip("]") for p in rest.split("[")] if rest else [head]
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return tree


class Installations:
    """Install, verify, authorize and look up portals; hands out per-portal REST clients."""

    def __init__(self, *, config: Config, manifest: Manifest, store: InstallationStore, oauth: OAuthClient,
                 tokens: TokenManager, http: PortalHTTP, redis_client: redis.Redis,
                 limiter: RateLimiter | None, budget: OperatingBudget | None, sessions: SessionSigner,
                 states: StateSigner, background: Executor,
                 observer: Callable[[str, str, float], None] | None = None) -> None:
        self.config = config
        self.manifest = manifest
        self.store = store
        self.oauth = oauth
        self.tokens = tokens
        self.sessions = sessions
        self.states = states
        self._http = http
        self._redis = redis_client
        self._limiter = limiter
        self._budget = budget
        self._background = background
        self._observer = observer
        self._pending: set[Future[None]] = set()

    # -- per-portal context --------------------------------------------------------------------

    def portal(self, member_id: str) -> PortalClient:
        """The REST client of one portal: `installations.portal(member_id).call("crm.activity.badge.list")`."""
        record = self.tokens.require(member_id)
        return PortalClient(member_id, store=self.store, tokens=self.tokens, oauth=self.oauth, http=self._http,
                            limiter=self._limiter, budget=self._budget, allow_http=self.config.allow_http,
                            observer=self._observer, record=record)

    get = portal

    # -- verification --------------------------------------------------------------------------

    def verify(self, frame: FrameRequest, *, installing: bool = False, check_admin: bool = True) -> VerifiedFrame:
        """Prove the frame POST with the OAuth server; then ask the portal whether the user is an admin."""
        try:
            info = self.oauth.app_info(frame.auth_id)
        except OAuthUnavailable:
            raise Unverified("the Bitrix24 authorization server is unreachable; try again shortly", 503) from None
        except OAuthError as exc:
            raise Unverified(f"the portal's token was refused ({exc.code})") from None
        self._check_identity(info, frame.member_id, frame.domain)
        if not info.installed and not installing:
            raise Unverified("the app is not fully installed on this portal yet: an administrator must open it "
                             "from the Applications menu to finish the installation", 403)
        if info.user_id is None:
            raise Unverified("the token does not name a user")
        is_admin = False
        if check_admin:
            profile = self._user_call(info, frame.auth_id, "profile")
            is_admin = isinstance(profile.result, dict) and profile.result.get("ADMIN") in (True, "Y", "true", 1)
        return VerifiedFrame(frame=frame, info=info, user_id=info.user_id, is_admin=is_admin,
                             portal_origin=portal_origin(info))

    def _check_identity(self, info: AppInfo, member_id: str, domain: str) -> None:
        if not hmac.compare_digest(info.client_id.encode(), self.oauth.client_id.encode()):
            raise Unverified("the token belongs to another application")
        if info.member_id != member_id:
            raise Unverified("the token belongs to another portal")
        if info.domain != domain.lower():
            raise Unverified("the portal address does not match its token")
        scheme = urlsplit(info.client_endpoint).scheme
        if scheme != "https" and not (scheme == "http" and self.config.allow_http):
            raise Unverified("the portal's REST endpoint is not https")

    def _user_call(self, info: AppInfo, access_token: str, method: str) -> RestResult:
        try:
            if self._limiter is not None:
                self._limiter.acquire(info.member_id)
            return call_with_token(self._http, info.client_endpoint, access_token, method)
        except RateLimitTimeout:
            raise Unverified("the portal's request budget is exhausted; try again in a few seconds", 503) from None
        except B24Error as exc:
            raise Unverified(f"the portal refused {method} ({exc.code})", 403 if exc.api_status == 403 else 401) \
                from None

    # -- install -------------------------------------------------------------------------------

    def install(self, frame: FrameRequest) -> Installation:
        """The installer POST: verify (installed=false is expected here) and store; `bind` comes next."""
        verified = self.verify(frame, installing=True)
        if not verified.is_admin:
            raise Unverified("only a portal administrator can install this app", 403)
        return self._save_chain(verified.info, frame.auth_id, frame.refresh_id, time.time() + frame.auth_expires,
                                verified.user_id, application_token=frame.application_token or None)

    def bind(self, member_id: str) -> BindReport:
        """(Re)bind every event and placement of install.json that is not bound yet — idempotent."""
        portal = self.portal(member_id)
        app_url = self.config.app_url or ""
        report = BindReport()
        bound_events = {(str(e.get("event", "")).upper(), str(e.get("handler", "")))
                        for e in _as_list(portal.call("event.get").result)}
        handler = self.manifest.url(app_url, "events")
        for event in self.manifest.events:
            name = f"event {event}"
            if (event, handler) in bound_events:
                report.already.append(name)
                continue
            self._bind_call(portal, "event.bind", {"event": event, "handler": handler}, name, report)
        bound_placements = {(str(p.get("placement", "")).upper(), str(p.get("handler", "")))
                            for p in _as_list(portal.call("placement.get").result)}
        for placement in self.manifest.placements:
            url = self.manifest.url(app_url, placement.handler)
            name = f"placement {placement.placement}"
            if (placement.placement.upper(), url) in bound_placements:
                report.already.append(name)
                continue
            params = {"PLACEMENT": placement.placement, "HANDLER": url,
                      "TITLE": placement.title.get("en") or next(iter(placement.title.values()), self.manifest.name),
                      "LANG_ALL": {lang: {"TITLE": title} for lang, title in placement.title.items()}}
            self._bind_call(portal, "placement.bind", params, name, report)
        log.info("bindings checked", extra={"member_id": member_id, "bound": len(report.bound),
                                            "already": len(report.already)})
        return report

    @staticmethod
    def _bind_call(portal: PortalClient, method: str, params: dict[str, Any], name: str, report: BindReport) -> None:
        try:
            portal.call(method, params, idempotent=True)
        except B24Error as exc:
            if "already" not in exc.description.lower():
                raise
            report.already.append(name)
        else:
            report.bound.append(name)

    def rebind_later(self, member_id: str) -> None:
        """Bind in the background: event handlers must answer fast (§1.6: no retries, answer 200 quickly)."""
        def run() -> None:
            try:
                self.bind(member_id)
            except (B24Error, PortalUnavailable, OAuthError, redis.RedisError) as exc:
                log.warning("background binding failed", extra={"member_id": member_id, "error": str(exc)[:200]})
                self.store.update(member_id, last_error=f"binding failed: {exc}"[:300])
        future = self._background.submit(run)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def wait_background(self, timeout: float = 30.0) -> None:
        """Block until queued background work (re-binding) is done: for tests and graceful shutdown."""
        futures_wait(list(self._pending), timeout=timeout)

    # -- the app page and UI sessions --------------------------------------------------------

    def open_app(self, frame: FrameRequest) -> tuple[VerifiedFrame, Installation | None]:
        """Verify a frame; an admin's fresh chain replaces a dead or missing one (owner hand-over)."""
        verified = self.verify(frame)
        record = self.store.get(frame.member_id)
        chain_dead = record is None or record.state in (NEEDS_REAUTH, UNINSTALLED) or not record.has_tokens
        if verified.is_admin and chain_dead and frame.refresh_id:
            record = self._save_chain(verified.info, frame.auth_id, frame.refresh_id,
                                      time.time() + frame.auth_expires, verified.user_id)
            log.info("token chain handed over", extra={"member_id": frame.member_id, "user_id": verified.user_id})
        return verified, record

    def session_for(self, verified: VerifiedFrame) -> tuple[str, int]:
        token = self.sessions.issue(verified.info.member_id, verified.user_id, verified.is_admin,
                                    verified.info.domain)
        return token, self.sessions.ttl

    # -- events ----------------------------------------------------------------------------------

    def handle_event(self, form: Mapping[str, str]) -> EventOutcome:
        payload = unflatten(form)
        event = str(payload.get("event", "")).upper()
        auth = payload.get("auth") if isinstance(payload.get("auth"), dict) else {}
        member_id = str(auth.get("member_id", ""))
        if not member_id:
            return EventOutcome(event, "", 403, "missing auth[member_id]")
        if event in ("ONAPPINSTALL", "ONAPPUPDATE"):
            return self._install_event(event, member_id, auth, payload.get("data") or {})
        if event == "ONAPPUNINSTALL":
            return self._uninstall_event(member_id, auth, payload.get("data") or {})
        if not self._token_matches(member_id, str(auth.get("application_token", ""))):
            return EventOutcome(event, member_id, 403, "application_token does not match")
        return EventOutcome(event, member_id, 200, "ignored: not subscribed")

    def _install_event(self, event: str, member_id: str, auth: dict[str, Any], data: dict[str, Any]) -> EventOutcome:
        access_token = str(auth.get("access_token", ""))
        application_token = str(auth.get("application_token", ""))
        if not access_token or not application_token:
            return EventOutcome(event, member_id, 401, "missing auth[access_token] or auth[application_token]")
        try:
            info = self.oauth.app_info(access_token)
            self._check_identity(info, member_id, str(auth.get("domain", "")))
        except (OAuthError, Unverified) as exc:
            log.warning("event rejected", extra={"event": event, "reason": str(exc)[:200]})
            return EventOutcome(event, member_id, 401, "the event's token could not be verified")
        record = self.store.get(member_id)
        version = _int(data.get("VERSION")) or info.version
        fresh = record is None or not record.has_tokens or record.state in (NEEDS_REAUTH, UNINSTALLED)
        if fresh:
            expires_at = float(_int(auth.get("expires")) or time.time() + (_int(auth.get("expires_in")) or 3600))
            self._save_chain(info, access_token, str(auth.get("refresh_token", "")), expires_at,
                             _int(auth.get("user_id")) or info.user_id, application_token=application_token,
                             app_version=version)
        else:
            self.store.update(member_id, application_token=application_token, app_version=version, state=ACTIVE,
                              status=info.status, scope=info.scope)
        log.info("lifecycle event accepted", extra={"event": event, "member_id": member_id})
        if fresh or event == "ONAPPUPDATE":
            # An update wipes the app's bindings (§1.4); a UI install already bound them in its installer.
            self.rebind_later(member_id)
        return EventOutcome(event, member_id)

    def _uninstall_event(self, member_id: str, auth: dict[str, Any], data: dict[str, Any]) -> EventOutcome:
        if not self._token_matches(member_id, str(auth.get("application_token", ""))):
            log.warning("uninstall rejected: application_token mismatch")
            return EventOutcome("ONAPPUNINSTALL", member_id, 403, "application_token does not match")
        self.store.clear_tokens(member_id, UNINSTALLED, "uninstalled from the portal")
        if str(data.get("CLEAN", "0")) in ("1", "Y", "true"):
            self.purge_portal_data(member_id)
        log.info("portal uninstalled", extra={"member_id": member_id, "clean": data.get("CLEAN")})
        return EventOutcome("ONAPPUNINSTALL", member_id)

    def _token_matches(self, member_id: str, given: str) -> bool:
        record = self.store.get(member_id)
        stored = record.application_token if record is not None else None
        if not stored or not given:
            return False
        return hmac.compare_digest(stored.encode(), given.encode())

    def purge_portal_data(self, member_id: str) -> int:
        """Delete what the app keeps for a portal besides its record (caches, deal links, idempotency)."""
        removed = 0
        for pattern in PORTAL_DATA_PATTERNS:
            keys = list(self._redis.scan_iter(match=pattern % member_id, count=500))
            if keys:
                removed += int(self._redis.delete(*keys))
        return removed

    # -- OAuth code flow -------------------------------------------------------------------------

    def authorize_url(self, domain: str) -> str:
        record = self.store.find_by_domain(domain.strip().lower())
        if record is None:
            raise Unverified("this portal has not installed the app", 404)
        state = self.states.issue(record.member_id, record.domain)
        return self.oauth.authorize_url(portal_origin_of(record.client_endpoint), state)

    def complete_authorization(self, args: Mapping[str, str]) -> Installation:
        code, state = args.get("code", ""), args.get("state", "")
        member_id, domain = args.get("member_id", ""), args.get("domain", "").lower()
        if not code or not state or not member_id or not domain:
            raise Unverified("the callback lacks code, state, domain or member_id", 400)
        try:
            self.states.consume(state, member_id, domain)
        except InvalidSession as exc:
            raise Unverified(str(exc)) from None
        try:
            tokens = self.oauth.exchange_code(code)
        except OAuthUnavailable:
            raise Unverified("the Bitrix24 authorization server is unreachable; try again", 503) from None
        except OAuthError as exc:
            raise Unverified(f"the authorization code was refused ({exc.code})") from None
        record = self.store.get(member_id)
        if tokens.member_id != member_id or record is None:
            raise Unverified("the authorization belongs to another portal")
        self.store.save(replace(record, access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                                expires_at=tokens.expires_at, owner_user_id=tokens.user_id or record.owner_user_id,
                                client_endpoint=tokens.client_endpoint or record.client_endpoint, state=ACTIVE,
                                last_error="", token_issued_at=time.time()))
        log.info("portal re-authorized", extra={"member_id": member_id})
        return self.store.get(member_id) or record

    # -- internals -----------------------------------------------------------------------------

    def _save_chain(self, info: AppInfo, access_token: str, refresh_token: str, expires_at: float, user_id: int | None,
                    *, application_token: str | None = None, app_version: int | None = None) -> Installation:
        if not refresh_token:
            raise Unverified("the request carries no refresh token", 400)
        previous = self.store.get(info.member_id)
        keep_app_token = previous.application_token if previous and previous.state != UNINSTALLED else None
        record = Installation(
            member_id=info.member_id, domain=info.domain, client_endpoint=info.client_endpoint, state=ACTIVE,
            status=info.status, scope=info.scope, app_version=app_version or info.version, owner_user_id=user_id,
            access_token=access_token, refresh_token=refresh_token, expires_at=expires_at,
            application_token=application_token or keep_app_token, token_issued_at=time.time(), last_error="")
        self.store.save(record)
        return self.store.get(info.member_id) or record


def portal_origin(info: AppInfo) -> str:
    return portal_origin_of(info.client_endpoint)


def portal_origin_of(client_endpoint: str) -> str:
    parts = urlsplit(client_endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
