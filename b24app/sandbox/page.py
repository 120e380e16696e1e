"""The portal page in the browser: a minimal Bitrix24-like UI per portal.

* `/` — the portal: applications (install button, open), deals with their kanban badges;
* `/marketplace/app/<client_id>/` — the app page: the installer (admins, before installFinish) or the app;
* `/crm/deal/` — a kanban board; `/crm/deal/details/<id>/` — a deal card with the app's
  CRM_DEAL_DETAIL_TAB placements as tabs and a kanban-card preview of the deal's badge.
The app is loaded in an iframe by a form POST (the iframe POST of docs/bitrix24-protocol.md §1.2) whose target is the
iframe's name `DOMAIN|PROTOCOL|APP_SID`; `static/portal.js` plays the parent side of the b24jssdk
postMessage protocol and talks back to the `/_portal/...` endpoints below (same origin only).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, render_template, request, send_from_directory
from werkzeug.wrappers import Response as WerkzeugResponse

from .envelope import json_response
from .errors import SandboxError
from .frames import FrameSession
from .layout import localized
from .models import DEAL_STAGES, PORTAL_LANGUAGES, STAGE_NAMES

if TYPE_CHECKING:
    from .models import AppCard, Portal
    from .sandbox import Sandbox

USER_COOKIE = "sandbox_user"
LANG_COOKIE = "sandbox_lang"  # the browser's UI language on the portal page: the LANG the app's frames get
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "ru": "Русский", "ua": "Українська", "kz": "Қазақша",
                  "by": "Беларуская", "pl": "Polski", "fr": "Français", "es": "Español", "la": "Español (LA)",
                  "br": "Português (BR)", "it": "Italiano", "tr": "Türkçe", "ja": "日本語", "sc": "中文(简体)",
                  "tc": "中文(繁體)", "vn": "Tiếng Việt", "id": "Bahasa Indonesia", "ms": "Bahasa Melayu",
                  "th": "ไทย", "ar": "العربية"}
STATIC_DIR = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-src http://127.0.0.1:* https://127.0.0.1:*; form-action 'self' http://127.0.0.1:* https://127.0.0.1:*")


def current_user_id(portal: Portal) -> int:
    """The portal's "logged-in" user: `?sandbox_user=` or the `sandbox_user` cookie, default the admin (1)."""
    raw = request.args.get(USER_COOKIE) or request.cookies.get(USER_COOKIE) or "1"
    try:
        return int(raw)
    except ValueError:
        return 1


def current_lang(portal: Portal) -> str:
    """The user's UI language: `?sandbox_lang=` or the `sandbox_lang` cookie, if the portal knows it, else the
    portal's language. It is what Bitrix24 sends as LANG (the user's language, docs/bitrix24-protocol.md §1.2)."""
    for raw in (request.args.get(LANG_COOKIE), request.cookies.get(LANG_COOKIE)):
        if raw in PORTAL_LANGUAGES:
            return str(raw)
    return portal.language


def tab_title(title: str, lang_all: dict[str, Any], lang: str) -> str:
    """A placement's TITLE in the user's language (LANG_ALL), else its TITLE."""
    texts = {k: v.get("TITLE") for k, v in lang_all.items() if isinstance(v, dict) and v.get("TITLE")}
    return texts.get(lang) or title or localized(texts, lang) or "App"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_page_blueprint(sb: Sandbox, this_portal: Callable[[], Portal]) -> Blueprint:
    bp = Blueprint("sandbox_page", __name__)

    def page(template: str, portal: Portal, **context: Any) -> Response:
        user_id = current_user_id(portal)

        def when(ts: float | None) -> str:
            """A time on the portal's clock, in its time zone."""
            return datetime.fromtimestamp(ts, portal.tz).strftime("%d.%m.%Y %H:%M:%S") if ts else ""

        lang = current_lang(portal)
        html = render_template(template, portal=portal, user=portal.users.get(user_id),
                               users=list(portal.users.values()), apps=list(sb.apps.values()), when=when,
                               lang=lang, languages=[(code, LANGUAGE_NAMES.get(code, code)) for code in
                                                     PORTAL_LANGUAGES], **context)
        resp = Response(html, 200, content_type="text/html; charset=utf-8")
        resp.headers["Content-Security-Policy"] = CSP
        if request.args.get(USER_COOKIE):
            resp.set_cookie(USER_COOKIE, str(user_id), samesite="Lax")
        if request.args.get(LANG_COOKIE) in PORTAL_LANGUAGES:
            resp.set_cookie(LANG_COOKIE, lang, samesite="Lax")
        return resp

    def frame_config(portal: Portal, app: AppCard, session: FrameSession) -> str:
        inst = portal.installations[app.client_id]
        user = portal.users[session.user_id]
        form = session.form
        init = {"AUTH_ID": form["AUTH_ID"], "REFRESH_ID": form["REFRESH_ID"],
                "AUTH_EXPIRES": int(form["AUTH_EXPIRES"]),
                "DOMAIN": portal.domain, "PROTOCOL": 0, "PATH": urlsplit(session.url).path, "LANG": session.lang,
                "MEMBER_ID": portal.member_id, "IS_ADMIN": user.admin, "APP_OPTIONS": {}, "USER_OPTIONS": {},
                "PLACEMENT": session.placement, "PLACEMENT_OPTIONS": session.options,
                "INSTALL": session.installer, "FIRST_RUN": inst.installed and user.id not in inst.first_run_done}
        base = f"/_portal/frame/{session.app_sid}"
        endpoints = {"log": f"{base}/log", "refreshAuth": f"{base}/refresh-auth",
                     "installFinish": f"{base}/install-finish", "setInstall": f"{base}/set-install"}
        return json.dumps({"appSid": session.app_sid, "frameOrigin": _origin(session.url), "init": init,
                           "endpoints": endpoints})

    def open_frame(portal: Portal, app: AppCard, placement: str, options: dict[str, Any],
                   handler: str | None = None) -> tuple[FrameSession | None, str | None]:
        user_id = current_user_id(portal)
        try:
            url, installer = sb.lifecycle.target(portal, app, user_id, placement, handler)
            session = sb.lifecycle.frame_session(portal, app, user_id, placement, options, url, installer=installer,
                                                 lang=current_lang(portal))
        except SandboxError as exc:
            return None, str(exc)
        return session, None

    def badge_view(portal: Portal, deal_id: int) -> dict[str, str] | None:
        badge = sb.deal_badge(portal, deal_id)
        return sb.badge_display(badge, current_lang(portal)) if badge else None

    def require_same_origin(portal: Portal) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and origin != portal.base_url:
            abort(403)

    def session_for(portal: Portal, app_sid: str) -> FrameSession:
        session = sb.frames.get(app_sid)
        if session is None or session.member_id != portal.member_id:
            abort(404)
        return session

    # -- pages ------------------------------------------------------------------------------------
    @bp.get("/")
    def home() -> Response:
        portal = this_portal()
        deals = [(d, badge_view(portal, d.id)) for d in portal.deals.values()]
        return page("portal_home.html", portal, deals=deals, installations=portal.installations)

    @bp.get("/marketplace/app/<client_id>/")
    def app_page(client_id: str) -> Response:
        portal = this_portal()
        app = sb.apps.get(client_id) or abort(404)
        session, problem = open_frame(portal, app, "DEFAULT", {})
        config = frame_config(portal, app, session) if session else ""
        return page("app_page.html", portal, app=app, session=session, problem=problem, frame_config=config)

    @bp.get("/crm/deal/")
    def kanban() -> Response:
        portal = this_portal()
        stages: dict[str, list[Any]] = {stage: [] for stage in DEAL_STAGES}
        for deal in portal.deals.values():
            stages.setdefault(deal.stage_id, []).append((deal, badge_view(portal, deal.id)))
        rules = sb.automation_rules(portal)
        return page("kanban.html", portal, stages=stages, rules=rules, stage_names=STAGE_NAMES)

    @bp.get("/crm/deal/details/<int:deal_id>/")
    def deal_card(deal_id: int) -> Response:
        portal = this_portal()
        deal = portal.deals.get(deal_id) or abort(404)
        user_id = current_user_id(portal)
        viewer = portal.users.get(user_id)
        tabs = [p for p in portal.placements if p.placement == "CRM_DEAL_DETAIL_TAB"
                and p.client_id in portal.installations
                and (portal.installations[p.client_id].installed or (viewer is not None and viewer.admin))]
        active = next((t for t in tabs if str(t.id) == request.args.get("tab")), None)
        session = problem = config = None
        if active is not None:
            app = sb.apps[active.client_id]
            session, problem = open_frame(portal, app, "CRM_DEAL_DETAIL_TAB", {"ID": str(deal.id)}, active.handler)
            config = frame_config(portal, app, session) if session else None
        titles = {t.id: tab_title(t.title, t.lang_all, current_lang(portal)) for t in tabs}
        return page("deal.html", portal, deal=deal, badge=badge_view(portal, deal.id), tabs=tabs, active=active,
                    titles=titles, session=session, problem=problem, frame_config=config, stages=DEAL_STAGES,
                    stage_names=STAGE_NAMES, timeline=sb.deal_timeline(portal, deal.id),
                    rules=sb.automation_rules(portal))

    @bp.post("/_portal/deals/<int:deal_id>/stage")
    def move_deal(deal_id: int) -> WerkzeugResponse:
        """The "Move to stage…" control of the deal card: the stage's robots run, then the card reloads."""
        portal = this_portal()
        require_same_origin(portal)
        if deal_id not in portal.deals:
            abort(404)
        sb.move_deal(portal, deal_id, request.form.get("stage", ""), current_user_id(portal))
        return redirect(f"/crm/deal/details/{deal_id}/#timeline", 303)

    @bp.post("/_portal/apps/<client_id>/install")
    def start_install(client_id: str) -> WerkzeugResponse:
        portal = this_portal()
        require_same_origin(portal)
        app = sb.apps.get(client_id) or abort(404)
        sb.lifecycle.begin_install(portal, app, current_user_id(portal))
        return redirect(f"/marketplace/app/{client_id}/", 303)

    @bp.get("/_portal/user/<int:user_id>")
    def switch_user(user_id: int) -> WerkzeugResponse:
        portal = this_portal()
        target = request.args.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        resp = redirect(target, 303)
        if user_id in portal.users:
            resp.set_cookie(USER_COOKIE, str(user_id), samesite="Lax")
        return resp

    @bp.get("/_portal/lang")
    def switch_language() -> WerkzeugResponse:
        """The language switch of the top bar: the browser's UI language, kept in a cookie."""
        this_portal()  # a portal's address only
        target = request.args.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        resp = redirect(target, 303)
        lang = request.args.get("lang", "")
        if lang in PORTAL_LANGUAGES:
            resp.set_cookie(LANG_COOKIE, lang, samesite="Lax")
        elif lang == "":  # back to the portal's language
            resp.delete_cookie(LANG_COOKIE)
        return resp

    @bp.get("/_portal/static/<path:filename>")
    def static(filename: str) -> Response:
        return send_from_directory(STATIC_DIR, filename, max_age=0)

    # -- the parent side of the frame -------------------------------------------------------------
    @bp.post("/_portal/frame/<app_sid>/log")
    def frame_log(app_sid: str) -> Response:
        portal = this_portal()
        require_same_origin(portal)
        session = session_for(portal, app_sid)
        data = request.get_json(silent=True) or {}
        sb.frame_log.add({"member_id": portal.member_id, "app_sid": app_sid, "user_id": session.user_id,
                          "client_id": session.client_id, "placement": session.placement,
                          "command": str(data.get("command", "")), "params": data.get("params"),
                          "at": sb.clock.now()})
        return json_response({"ok": True})

    @bp.post("/_portal/frame/<app_sid>/refresh-auth")
    def refresh_auth(app_sid: str) -> Response:
        portal = this_portal()
        require_same_origin(portal)
        session = session_for(portal, app_sid)
        return json_response(sb.frame_auth(portal, session.user_id, session.client_id, session.lang or None))

    @bp.post("/_portal/frame/<app_sid>/install-finish")
    def install_finish(app_sid: str) -> Response:
        portal = this_portal()
        require_same_origin(portal)
        session = session_for(portal, app_sid)
        if not session.installer:
            return json_response({"installed": True, "deliveries": []})
        deliveries = sb.install_finish(portal, session.client_id)
        return json_response({"installed": True, "deliveries": [d.public() for d in deliveries]})

    @bp.post("/_portal/frame/<app_sid>/set-install")
    def set_install(app_sid: str) -> Response:
        portal = this_portal()
        require_same_origin(portal)
        session = session_for(portal, app_sid)
        with sb.lock:
            inst = portal.installations.get(session.client_id)
            if inst is not None:
                inst.first_run_done.add(session.user_id)
        return json_response({"ok": True})

    return bp
