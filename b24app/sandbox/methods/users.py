"""profile, user.admin, user.current, user.fields, user.access, server.time (docs/bitrix24-protocol.md §6.3, §6.6).

Dates are written in the portal's time zone: `LAST_LOGIN`/`DATE_REGISTER` as ISO 8601 with the offset,
`TIMESTAMP_X` and `LAST_ACTIVITY_DATE` in the site formats the core sends them in.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..envelope import iso, local
from ..models import Portal
from ..phpquery import as_list
from .base import CallContext, rest_method, upper_keys

USER_SCOPES = ("user_brief", "user_basic")
# user.fields: field -> title, as the docs' answer lists them (§6.6).
USER_FIELDS = {
    "ID": "ID", "XML_ID": "External code", "ACTIVE": "Activity", "NAME": "First Name", "LAST_NAME": "Last Name",
    "SECOND_NAME": "Middle Name", "TITLE": "User List", "EMAIL": "E-Mail", "LAST_LOGIN": "Last Login",
    "DATE_REGISTER": "Registration Date", "TIME_ZONE": "TIME_ZONE", "IS_ONLINE": "IS_ONLINE",
    "TIMESTAMP_X": "TIMESTAMP_X", "LAST_ACTIVITY_DATE": "LAST_ACTIVITY_DATE", "PERSONAL_GENDER": "Gender",
    "PERSONAL_PROFESSION": "Profession", "PERSONAL_WWW": "Homepage", "PERSONAL_BIRTHDAY": "Birthday",
    "PERSONAL_PHOTO": "Photo", "PERSONAL_PHONE": "Personal Phone", "PERSONAL_MOBILE": "Personal Mobile",
    "PERSONAL_CITY": "City of Residence", "WORK_PHONE": "Company Phone", "WORK_COMPANY": "Company",
    "WORK_POSITION": "Position", "WORK_DEPARTMENT": "Department", "UF_EMPLOYMENT_DATE": "Employment Date",
    "UF_DEPARTMENT": "Departments", "UF_PHONE_INNER": "Internal Phone", "USER_TYPE": "USER_TYPE",
}
CONTACT_FIELDS = ("EMAIL",)  # left out for `user_brief` (the sandbox's reading of the scopes, §6.3)
DEPARTMENT = 1  # every demo user sits in the head department


@rest_method("profile")
def profile(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    user = ctx.user
    return {"ID": str(user.id), "ADMIN": user.admin, "NAME": user.name, "LAST_NAME": user.last_name,
            "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "TIME_ZONE": "", "TIME_ZONE_OFFSET": 0}


@rest_method("user.admin")
def user_admin(ctx: CallContext, params: dict[str, Any]) -> bool:
    return ctx.user.admin


def _sees_contacts(ctx: CallContext) -> bool:
    return bool(ctx.scopes & {"user", "user_basic"})


def _registered(portal: Portal) -> str:
    """Users were registered the day the portal was made, at local midnight (the docs' examples)."""
    day = datetime.fromtimestamp(portal.created, portal.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.isoformat(timespec="seconds")


@rest_method("user.current", scope="user", alt_scopes=USER_SCOPES)
def user_current(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    user, portal = ctx.user, ctx.portal
    record: dict[str, Any] = {
        "ID": str(user.id), "XML_ID": "", "ACTIVE": user.active, "NAME": user.name, "LAST_NAME": user.last_name,
        "SECOND_NAME": "", "TITLE": "", "LAST_LOGIN": iso(ctx.now, portal.tz), "DATE_REGISTER": _registered(portal),
        "TIME_ZONE": "", "IS_ONLINE": "Y", "TIME_ZONE_OFFSET": "0",
        "TIMESTAMP_X": local(portal.created, portal.tz, "%d.%m.%Y %H:%M:%S"),
        "LAST_ACTIVITY_DATE": local(ctx.now, portal.tz, "%Y-%m-%d %H:%M:%S"),
        "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "PERSONAL_BIRTHDAY": "", "WORK_POSITION": "",
        "UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": [DEPARTMENT], "USER_TYPE": "employee"}
    if _sees_contacts(ctx):
        record["EMAIL"] = user.email
    return record


@rest_method("user.fields", scope="user", alt_scopes=USER_SCOPES)
def user_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, str]:
    """Field names and titles; what the scope hides from user.current is left out here too (§6.6)."""
    hidden = () if _sees_contacts(ctx) else CONTACT_FIELDS
    return {name: title for name, title in USER_FIELDS.items() if name not in hidden}


@rest_method("user.access")
def user_access(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Whether the user holds one of the ACCESS codes; always true for an admin (§6.6)."""
    if ctx.user.admin:
        return True
    raw = upper_keys(params).get("ACCESS")
    listed = as_list(raw)
    codes = listed if listed is not None else ([raw] if raw else [])
    return any(_holds(ctx, str(code).upper()) for code in codes)


def _holds(ctx: CallContext, code: str) -> bool:
    own = {"AU", "G2", f"U{ctx.user.id}", f"IU{ctx.user.id}", f"D{DEPARTMENT}", f"DR{DEPARTMENT}"}
    return code in own


@rest_method("server.time")
def server_time(ctx: CallContext, params: dict[str, Any]) -> str:
    return iso(ctx.now, ctx.portal.tz)
