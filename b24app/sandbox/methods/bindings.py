"""event.bind/get/unbind and placement.bind/get/unbind (docs/bitrix24-protocol.md §5.7; EN/RU event-*.md pages).

Both need app context (a webhook gets 403 WRONG_AUTH_TYPE). Binding and unbinding need a portal
admin (403 ACCESS_DENIED). A duplicate bind is refused the way core does it: 400 ERROR_CORE
"Unable to set event handler: Handler already binded" / "Unable to set placement handler: Handler
already binded". Handler URLs must be http(s) with a dot in the host, so http://127.0.0.1:PORT/...
is accepted and http://localhost/... is not (ERROR_WRONG_HANDLER_URL), as on Bitrix24.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import RestError, access_denied, argument_error, wrong_auth_type
from ..models import EventHandler, PlacementHandler
from .base import CallContext, rest_method, upper_keys

BASIC_EVENTS = {"ONAPPINSTALL", "ONAPPUPDATE", "ONAPPUNINSTALL", "ONAPPTEST", "ONAPPMETHODCONFIRM",
                "ONOFFLINEEVENT"}
CRM_EVENTS = {f"ONCRM{entity}{action}" for entity in ("DEAL", "LEAD", "CONTACT", "COMPANY", "QUOTE", "ACTIVITY")
              for action in ("ADD", "UPDATE", "DELETE")}
USER_EVENTS = {"ONUSERADD"}
SINGLE_HANDLER_PLACEMENTS = {"REST_APP_URI", "PAGE_BACKGROUND_WORKER"}
_CRM_PLACEMENT = re.compile(
    r"^CRM_(DEAL|LEAD|CONTACT|COMPANY|QUOTE|SMART_INVOICE|ORDER|DYNAMIC_\d+)_"
    r"(DETAIL_TAB|DETAIL_ACTIVITY|LIST_MENU|DETAIL_TOOLBAR|LIST_TOOLBAR|ACTIVITY_TIMELINE_MENU)$")
GLOBAL_PLACEMENTS = ("LEFT_MENU", "REST_APP_URI", "PAGE_BACKGROUND_WORKER")
USER_PLACEMENTS = ("USER_PROFILE_MENU", "USER_PROFILE_TOOLBAR")
OTHER_PLACEMENTS = set(GLOBAL_PLACEMENTS) | set(USER_PLACEMENTS)
CRM_PLACEMENTS = tuple(f"CRM_{entity}_{kind}"
                       for entity in ("DEAL", "LEAD", "CONTACT", "COMPANY", "QUOTE", "SMART_INVOICE")
                       for kind in ("DETAIL_TAB", "DETAIL_ACTIVITY", "LIST_MENU", "DETAIL_TOOLBAR", "LIST_TOOLBAR",
                                    "ACTIVITY_TIMELINE_MENU"))
USER_SCOPES = {"user", "user_brief", "user_basic"}


def _app_context(ctx: CallContext) -> str:
    if not ctx.is_app or ctx.client_id is None:
        raise wrong_auth_type()
    return ctx.client_id


def _admin(ctx: CallContext) -> None:
    if not ctx.user.admin:
        raise access_denied()


def _check_handler(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RestError("ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol")
    if not parts.hostname or "." not in parts.hostname:
        raise RestError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL")


def _events_of(scope: str) -> set[str]:
    if scope == "crm":
        return CRM_EVENTS
    return USER_EVENTS if scope in USER_SCOPES else set()


def _known_events(ctx: CallContext) -> set[str]:
    known = set(BASIC_EVENTS)
    for scope in ctx.scopes:
        known |= _events_of(scope)
    return known


def _scope_or_full(params: dict[str, Any]) -> tuple[str, bool]:
    args = upper_keys(params)
    full = str(args.get("FULL") or "").lower() in ("1", "true", "y")
    return str(args.get("SCOPE") or "").strip().lower(), full


@rest_method("events")
def events(ctx: CallContext, params: dict[str, Any]) -> list[str]:
    """The events an app may bind: of one SCOPE, all (FULL), or the app's scopes plus the basic ones (§5.9)."""
    _app_context(ctx)
    scope, full = _scope_or_full(params)
    if scope:
        names = _events_of(scope)
    elif full:
        names = BASIC_EVENTS | CRM_EVENTS | USER_EVENTS
    else:
        names = _known_events(ctx)
    return sorted(names, key=lambda e: (e not in BASIC_EVENTS, e not in USER_EVENTS, e))


def _placements_of(scope: str) -> tuple[str, ...]:
    if scope == "crm":
        return CRM_PLACEMENTS
    return USER_PLACEMENTS if scope in USER_SCOPES else ()


@rest_method("placement.list", scope="placement")
def placement_list(ctx: CallContext, params: dict[str, Any]) -> list[str]:
    """Placement codes: of one SCOPE, all (FULL), or the app's scopes plus the global ones (§5.7)."""
    _app_context(ctx)
    scope, full = _scope_or_full(params)
    if scope:
        return list(_placements_of(scope))
    scopes = {"crm", "user"} if full else ctx.scopes
    codes = [code for s in sorted(scopes) for code in _placements_of(s)]
    return list(dict.fromkeys([*codes, *GLOBAL_PLACEMENTS]))


@rest_method("event.bind")
def event_bind(ctx: CallContext, params: dict[str, Any]) -> bool:
    client_id = _app_context(ctx)
    _admin(ctx)
    args = upper_keys(params)
    event = str(args.get("EVENT") or "").upper()
    handler = str(args.get("HANDLER") or "")
    event_type = str(args.get("EVENT_TYPE") or "online").lower()
    if not event:
        raise argument_error("EVENT")
    if event_type not in ("online", "offline"):
        raise RestError("ERROR_ARGUMENT", "Value must be one of {online|offline}", 400, {"argument": "EVENT_TYPE"})
    if event not in _known_events(ctx):
        raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found")
    if event_type == "online":
        if not handler:
            raise argument_error("HANDLER")
        _check_handler(handler)
    try:
        auth_type = int(args.get("AUTH_TYPE") or 0)
    except (TypeError, ValueError):
        auth_type = 0
    for existing in ctx.portal.event_handlers:
        if (existing.client_id, existing.event, existing.handler, existing.auth_type) == (
                client_id, event, handler, auth_type):
            raise RestError("ERROR_CORE", "Unable to set event handler: Handler already binded")
    ctx.portal.event_handlers.append(EventHandler(ctx.portal.next_id(), client_id, event, handler, auth_type))
    return True


@rest_method("event.get")
def event_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    client_id = _app_context(ctx)
    return [{"event": h.event, "handler": h.handler, "auth_type": str(h.auth_type), "offline": 0}
            for h in ctx.portal.event_handlers if h.client_id == client_id]


@rest_method("event.unbind")
def event_unbind(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    client_id = _app_context(ctx)
    _admin(ctx)
    args = upper_keys(params)
    event = str(args.get("EVENT") or "").upper()
    if not event:
        raise argument_error("EVENT")
    handler = args.get("HANDLER")
    auth_type = args.get("AUTH_TYPE")

    def matches(h: EventHandler) -> bool:
        return (h.client_id == client_id and h.event == event
                and (not handler or h.handler == str(handler))
                and (auth_type in (None, "") or str(h.auth_type) == str(auth_type)))

    keep = [h for h in ctx.portal.event_handlers if not matches(h)]
    count = len(ctx.portal.event_handlers) - len(keep)
    ctx.portal.event_handlers[:] = keep
    return {"count": count}


def _placement_known(ctx: CallContext, code: str) -> bool:
    if _CRM_PLACEMENT.match(code):
        return "crm" in ctx.scopes
    return code in OTHER_PLACEMENTS


@rest_method("placement.bind", scope="placement")
def placement_bind(ctx: CallContext, params: dict[str, Any]) -> bool:
    client_id = _app_context(ctx)
    _admin(ctx)
    args = upper_keys(params)
    placement = str(args.get("PLACEMENT") or "").upper()
    handler = str(args.get("HANDLER") or "")
    if not placement:
        raise argument_error("PLACEMENT")
    if not handler:
        raise argument_error("HANDLER")
    if not _placement_known(ctx, placement):
        raise RestError("ERROR_PLACEMENT_NOT_FOUND", "Placement not found")
    _check_handler(handler)
    user_id = int(args.get("USER_ID") or 0) if str(args.get("USER_ID") or "0").isdigit() else 0
    if user_id and placement != "PAGE_BACKGROUND_WORKER":
        raise RestError("ERROR_PLACEMENT_USER_MODE", "User mode is not available")
    mine = [p for p in ctx.portal.placements if p.client_id == client_id and p.placement == placement]
    if placement in SINGLE_HANDLER_PLACEMENTS and mine:
        raise RestError("ERROR_PLACEMENT_MAX_COUNT", "Placement max count exceeded")
    if any(p.handler == handler for p in mine):
        raise RestError("ERROR_CORE", "Unable to set placement handler: Handler already binded")
    lang_all: dict[str, Any] = args["LANG_ALL"] if isinstance(args.get("LANG_ALL"), dict) else {}
    options = args.get("OPTIONS") if isinstance(args.get("OPTIONS"), dict | list) and args.get("OPTIONS") else []
    ctx.portal.placements.append(PlacementHandler(
        ctx.portal.next_id(), client_id, placement, handler, str(args.get("TITLE") or ""),
        str(args.get("DESCRIPTION") or ""), str(args.get("GROUP_NAME") or ""), lang_all, options, user_id))
    return True


@rest_method("placement.get", scope="placement")
def placement_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    client_id = _app_context(ctx)
    _admin(ctx)
    return [{"placement": p.placement, "userId": p.user_id, "handler": p.handler, "options": p.options,
             "title": p.title, "description": p.description, "langAll": p.lang_all}
            for p in ctx.portal.placements if p.client_id == client_id]


@rest_method("placement.unbind", scope="placement")
def placement_unbind(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    client_id = _app_context(ctx)
    _admin(ctx)
    args = upper_keys(params)
    placement = str(args.get("PLACEMENT") or "").upper()
    if not placement:
        raise argument_error("PLACEMENT")
    handler = args.get("HANDLER")
    user_id = args.get("USER_ID")

    def matches(p: PlacementHandler) -> bool:
        return (p.client_id == client_id and p.placement == placement
                and (not handler or p.handler == str(handler))
                and (user_id in (None, "") or str(p.user_id) == str(user_id)))

    keep = [p for p in ctx.portal.placements if not matches(p)]
    count = len(ctx.portal.placements) - len(keep)
    ctx.portal.placements[:] = keep
    return {"count": count}
