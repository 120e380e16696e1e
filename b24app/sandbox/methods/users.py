"""app.info (portal shape), profile, user.admin, user.current, server.time (docs/bitrix24-protocol.md §6.1, §6.3)."""
from __future__ import annotations

from typing import Any

from ..envelope import iso
from ..errors import access_denied
from .base import CallContext, rest_method


@rest_method("app.info")
def app_info(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Portal-side app.info: app context required (403 ACCESS_DENIED for webhooks)."""
    if not ctx.is_app or ctx.installation is None:
        raise access_denied("Application context required")
    inst = ctx.installation
    return {"ID": ctx.sandbox.app_number(inst.client_id), "CODE": inst.client_id, "VERSION": inst.version,
            "STATUS": inst.status, "INSTALLED": inst.installed, "PAYMENT_EXPIRED": "N", "DAYS": None,
            "LANGUAGE_ID": ctx.portal.language, "LICENSE": ctx.portal.license,
            "LICENSE_TYPE": ctx.portal.license_type, "LICENSE_FAMILY": ctx.portal.license_family}


@rest_method("profile")
def profile(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    user = ctx.user
    return {"ID": str(user.id), "ADMIN": user.admin, "NAME": user.name, "LAST_NAME": user.last_name,
            "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "TIME_ZONE": "", "TIME_ZONE_OFFSET": 0}


@rest_method("user.admin")
def user_admin(ctx: CallContext, params: dict[str, Any]) -> bool:
    return ctx.user.admin


@rest_method("user.current", scope="user", alt_scopes=("user_brief", "user_basic"))
def user_current(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    user = ctx.user
    record: dict[str, Any] = {"ID": str(user.id), "XML_ID": "", "ACTIVE": user.active, "NAME": user.name,
                              "LAST_NAME": user.last_name, "SECOND_NAME": "", "TITLE": "",
                              "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "TIME_ZONE": "",
                              "TIME_ZONE_OFFSET": "0", "IS_ONLINE": "Y", "USER_TYPE": "employee",
                              "UF_DEPARTMENT": [1]}
    if ctx.scopes & {"user", "user_basic"}:
        record["EMAIL"] = user.email
    return record


@rest_method("server.time")
def server_time(ctx: CallContext, params: dict[str, Any]) -> str:
    return iso(ctx.now)
