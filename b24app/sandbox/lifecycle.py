"""Install, installFinish, update, uninstall, and opening the app — the way a portal does them
(docs/bitrix24-protocol.md §1).

* UI install: the portal POSTs the installer form (query DOMAIN, PROTOCOL, LANG, APP_SID; body
  AUTH_ID, AUTH_EXPIRES, REFRESH_ID, SERVER_ENDPOINT, member_id, status, PLACEMENT=DEFAULT,
  PLACEMENT_OPTIONS, optional APPLICATION_TOKEN/APPLICATION_SCOPE) to the app's install URL. The
  app is INSTALLED only after installFinish, which then sends ONAPPINSTALL to every handler bound with
  event.bind.
* REST-only install: ONAPPINSTALL goes straight to the install URL; installed at once. Its
  `event_handler_id` is the id of the handler row core registers for the install URL.
* Update: the app's event handlers, placements and robots are wiped, then ONAPPUPDATE goes to the
  handlers that were bound for it before the wipe.
* Uninstall: every token of the app on the portal dies, ONAPPUNINSTALL (no tokens) goes to the bound
  handlers, bindings and robots are removed.
Events are form POSTs with bracket keys, sent synchronously; the lock is never held while sending.
"""
from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .errors import SandboxError
from .frames import FrameSession, new_app_sid, placement_options_json
from .models import PORTAL_LANGUAGES, AppCard, EventHandler, Installation, Portal
from .outbound import Delivery, HttpResult
from .tokens import ACCESS_TTL

if TYPE_CHECKING:
    from .sandbox import Sandbox


class Lifecycle:
    """Lifecycle operations of one sandbox (called through the `Sandbox` facade)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    # -- helpers (call with the lock held) ----------------------------------------------------------
    def _user(self, portal: Portal, user_id: int, *, admin: bool = False) -> Any:
        user = portal.users.get(int(user_id))
        if user is None or not user.active:
            raise SandboxError(f"user {user_id} does not exist or is fired on {portal.domain}")
        if admin and not user.admin:
            raise SandboxError("only a portal administrator can install applications")
        return user

    def _installation(self, portal: Portal, app: AppCard) -> Installation:
        inst = portal.installations.get(app.client_id)
        if inst is None:
            raise SandboxError(f"{app.client_id} is not installed on {portal.domain}")
        return inst

    def begin_install(self, portal: Portal, app: AppCard, user_id: int) -> Installation:
        """Create the app's record on the portal (INSTALLED=N until installFinish)."""
        with self.sb.lock:
            self._user(portal, user_id, admin=True)
            inst = portal.installations.get(app.client_id)
            if inst is not None and inst.installed:
                raise SandboxError("already installed: uninstall first, or use update()")
            if inst is None:
                inst = Installation(app.client_id, app.version, app.status, app.scope,
                                    secrets.token_hex(16), int(user_id))
                portal.installations[app.client_id] = inst
            return inst

    def frame_session(self, portal: Portal, app: AppCard, user_id: int, placement: str,
                      options: dict[str, Any] | None, url: str, *, installer: bool,
                      send_application_token: bool = True, lang: str | None = None) -> FrameSession:
        """Mint the user's tokens and build the iframe POST (query + form) for one render. `lang` is the
        user's UI language (LANG, docs/bitrix24-protocol.md §1.2); by default the portal's."""
        lang = self.language(portal, lang)
        with self.sb.lock:
            user = self._user(portal, user_id)
            inst = self._installation(portal, app)
            now = self.sb.clock.now()
            access, refresh = self.sb.tokens.issue(app.client_id, portal.member_id, user.id, now)
            session = FrameSession(new_app_sid(), portal.member_id, app.client_id, user.id, placement,
                                   dict(options or {}), url, installer, now)
            session.lang = lang
            session.query = {"DOMAIN": portal.domain, "PROTOCOL": "0", "LANG": lang, "APP_SID": session.app_sid}
            form = {"AUTH_ID": access.token, "AUTH_EXPIRES": str(ACCESS_TTL), "REFRESH_ID": refresh.token,
                    "SERVER_ENDPOINT": self.sb.server_endpoint, "member_id": portal.member_id,
                    "status": inst.status, "PLACEMENT": placement,
                    "PLACEMENT_OPTIONS": placement_options_json(options)}
            if send_application_token:
                form["APPLICATION_TOKEN"] = inst.application_token
                form["APPLICATION_SCOPE"] = inst.scope
            session.form = form
            self.sb.frames[session.app_sid] = session
            return session

    def auth_block(self, portal: Portal, app: AppCard, inst: Installation,
                   user_id: int | None = None) -> dict[str, Any]:
        """The `auth[...]` of an event or robot run: a new token chain for `user_id` (default: the installer)."""
        now = self.sb.clock.now()
        user = inst.installed_by if user_id is None else int(user_id)
        access, refresh = self.sb.tokens.issue(app.client_id, portal.member_id, user, now)
        return {"access_token": access.token, "expires": int(access.expires_at), "expires_in": ACCESS_TTL,
                "scope": app.scope, "domain": portal.domain, "server_endpoint": self.sb.server_endpoint,
                "status": inst.status, "client_endpoint": portal.client_endpoint, "member_id": portal.member_id,
                "user_id": user, "refresh_token": refresh.token, "application_token": inst.application_token}

    def _install_event(self, portal: Portal, app: AppCard, inst: Installation, event: str,
                       handler_id: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"event": event, "event_handler_id": handler_id}
        payload["data"] = {"VERSION": inst.version, "ACTIVE": "Y", "INSTALLED": "Y",
                           "LANGUAGE_ID": portal.language, **(extra or {})}
        payload["ts"] = int(self.sb.clock.now())
        payload["auth"] = self.auth_block(portal, app, inst)
        return payload

    def _handlers(self, portal: Portal, app: AppCard, event: str) -> list[EventHandler]:
        return [h for h in portal.event_handlers if h.client_id == app.client_id and h.event == event and h.handler]

    def _send(self, portal: Portal, jobs: list[tuple[str, str, dict[str, Any]]]) -> list[Delivery]:
        now = self.sb.clock.now()
        return [self.sb.outbox.deliver(url, event, portal.member_id, payload, now) for url, event, payload in jobs]

    # -- operations ---------------------------------------------------------------------------------
    @staticmethod
    def language(portal: Portal, lang: str | None) -> str:
        """A user's UI language: one the portal knows, else the portal's own."""
        if lang is None or lang == "":
            return portal.language
        if lang not in PORTAL_LANGUAGES:
            raise SandboxError(f"unknown language {lang!r}; the portal knows {', '.join(PORTAL_LANGUAGES)}")
        return lang

    def install(self, portal: Portal, app: AppCard, user_id: int = 1, send_application_token: bool = True,
                rest_only: bool = False, lang: str | None = None) -> HttpResult:
        """Perform the installer POST (or the REST-only ONAPPINSTALL) and return the app's answer."""
        inst = self.begin_install(portal, app, user_id)
        if rest_only:
            with self.sb.lock:
                inst.installed = True
                # core registers URL_INSTALL as an ONAPPINSTALL handler row; its id is the event_handler_id (§1.4)
                inst.install_handler_id = portal.next_id()
                payload = self._install_event(portal, app, inst, "ONAPPINSTALL", inst.install_handler_id)
            return self.sb.outbox.deliver_result(app.install_url, "ONAPPINSTALL", portal.member_id, payload,
                                                 self.sb.clock.now())
        session = self.frame_session(portal, app, user_id, "DEFAULT", {}, app.install_url, installer=True,
                                     send_application_token=send_application_token, lang=lang)
        return self.sb.outbox.post_form(app.install_url, session.form, session.query)

    def install_finish(self, portal: Portal, app: AppCard) -> list[Delivery]:
        """`BX24.installFinish()`: INSTALLED=Y, then ONAPPINSTALL to the handlers bound for it."""
        with self.sb.lock:
            inst = self._installation(portal, app)
            if inst.installed:
                return []
            inst.installed = True
            jobs = [(h.handler, "ONAPPINSTALL", self._install_event(portal, app, inst, "ONAPPINSTALL", h.id))
                    for h in self._handlers(portal, app, "ONAPPINSTALL")]
        return self._send(portal, jobs)

    def update(self, portal: Portal, app: AppCard, version: int,
               rotate_application_token: bool = True) -> list[Delivery]:
        """New app version: wipe handlers and placements, then ONAPPUPDATE to its former handlers."""
        with self.sb.lock:
            inst = self._installation(portal, app)
            if not inst.installed:
                raise SandboxError("the app is not installed yet (installFinish was not called)")
            targets = self._handlers(portal, app, "ONAPPUPDATE")
            portal.event_handlers[:] = [h for h in portal.event_handlers if h.client_id != app.client_id]
            portal.placements[:] = [p for p in portal.placements if p.client_id != app.client_id]
            self.sb.automation.forget_app(portal, app.client_id)  # robots too (docs/bitrix24-protocol.md §11.2)
            previous = inst.version
            inst.version = int(version)
            if rotate_application_token:
                inst.application_token = secrets.token_hex(16)
            jobs = [(h.handler, "ONAPPUPDATE",
                     self._install_event(portal, app, inst, "ONAPPUPDATE", h.id, {"PREVIOUS_VERSION": previous}))
                    for h in targets]
        return self._send(portal, jobs)

    def uninstall(self, portal: Portal, app: AppCard, clean: bool = True) -> list[Delivery]:
        """Tokens die, bindings go, ONAPPUNINSTALL (no tokens) to the handlers bound for it."""
        with self.sb.lock:
            inst = self._installation(portal, app)
            targets = self._handlers(portal, app, "ONAPPUNINSTALL")
            self.sb.tokens.forget_install(app.client_id, portal.member_id)
            portal.event_handlers[:] = [h for h in portal.event_handlers if h.client_id != app.client_id]
            portal.placements[:] = [p for p in portal.placements if p.client_id != app.client_id]
            self.sb.automation.forget_app(portal, app.client_id)  # docs/bitrix24-protocol.md §11.2
            del portal.installations[app.client_id]
            if clean:  # CLEAN=1 also deletes the app's settings (docs/bitrix24-protocol.md §1.5)
                portal.app_options.pop(app.client_id, None)
            for sid in [s for s, f in self.sb.frames.items() if f.member_id == portal.member_id
                        and f.client_id == app.client_id]:
                del self.sb.frames[sid]
            now = int(self.sb.clock.now())
            auth = {"domain": portal.domain, "server_endpoint": self.sb.server_endpoint,
                    "client_endpoint": portal.client_endpoint, "member_id": portal.member_id,
                    "application_token": inst.application_token}
            jobs = [(h.handler, "ONAPPUNINSTALL",
                     {"event": "ONAPPUNINSTALL", "event_handler_id": h.id,
                      "data": {"LANGUAGE_ID": portal.language, "CLEAN": 1 if clean else 0},
                      "ts": now, "auth": auth}) for h in targets]
        return self._send(portal, jobs)

    def target(self, portal: Portal, app: AppCard, user_id: int, placement: str,
               handler: str | None = None) -> tuple[str, bool]:
        """Where a user's click on the app/placement goes: (url, installer?)."""
        with self.sb.lock:
            user = self._user(portal, user_id)
            inst = self._installation(portal, app)
            if not inst.installed:
                if not user.admin:
                    raise SandboxError("The application is not fully installed yet; "
                                       "ask your administrator to finish the installation")
                if placement == "DEFAULT":
                    return app.install_url, True
            if placement == "DEFAULT":
                return handler or app.handler_url, False
            bound = [p for p in portal.placements if p.client_id == app.client_id and p.placement == placement]
            if handler:
                bound = [p for p in bound if p.handler == handler]
            if not bound:
                raise SandboxError(f"{app.client_id} has no {placement} placement bound on {portal.domain}")
            return bound[0].handler, False

    def open_app(self, portal: Portal, app: AppCard, user_id: int = 1, placement: str = "DEFAULT",
                 options: dict[str, Any] | None = None, send_application_token: bool = True,
                 lang: str | None = None) -> HttpResult:
        """The iframe POST a portal makes when a user opens the app page or a placement."""
        placement = placement.upper()
        url, installer = self.target(portal, app, user_id, placement)
        session = self.frame_session(portal, app, user_id, placement, options, url, installer=installer,
                                     send_application_token=send_application_token, lang=lang)
        return self.sb.outbox.post_form(url, session.form, session.query)

    def frame_auth(self, portal: Portal, app: AppCard, user_id: int = 1, lang: str | None = None) -> dict[str, Any]:
        """Fresh AUTH_ID/REFRESH_ID for a user, as the parent window hands them to the frame."""
        lang = self.language(portal, lang)
        with self.sb.lock:
            user = self._user(portal, user_id)
            inst = self._installation(portal, app)
            access, refresh = self.sb.tokens.issue(app.client_id, portal.member_id, user.id, self.sb.clock.now())
            return {"AUTH_ID": access.token, "AUTH_EXPIRES": ACCESS_TTL, "REFRESH_ID": refresh.token,
                    "SERVER_ENDPOINT": self.sb.server_endpoint, "member_id": portal.member_id,
                    "MEMBER_ID": portal.member_id, "status": inst.status, "DOMAIN": portal.domain,
                    "PROTOCOL": 0, "LANG": lang, "user_id": user.id}
