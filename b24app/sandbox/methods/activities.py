"""Configurable activities: crm.activity.configurable.add/update/get, crm.activity.list/delete
(docs/bitrix24-protocol.md §5.6).

A badge shows on the owner's kanban card while an activity that carries its `badgeCode` is open.
Only app (OAuth) callers may create, update or read configurable activities — a webhook gets
ERROR_WRONG_CONTEXT — and only the creating app may update one (ERROR_WRONG_APPLICATION).
"""
from __future__ import annotations

from typing import Any

from ..envelope import iso
from ..errors import RestError
from ..layout import localized, validate_layout
from ..listing import matches, page, parse_filter, sort_rows, start_of
from ..models import Activity, Portal
from ..phpquery import as_list
from .base import CallContext, Paged, as_array, as_int, rest_method, upper_keys

TRUE_VALUES = ("Y", "y", "1", "true")
FALSE_VALUES = ("N", "n", "0", "false")
PROVIDER_ID = "CONFIGURABLE_REST_APP"
OWNER_TYPES = {1: "LEAD", 2: "DEAL", 3: "CONTACT", 4: "COMPANY", 7: "QUOTE"}


def _bool_value(value: Any) -> bool | None:
    """Strict in_array of the controller: Y/y/true/1/'1'/'true' and N/n/false/0/'0'/'false'."""
    if value is True or value is False:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value in TRUE_VALUES:
            return True
        if value in FALSE_VALUES:
            return False
    return None


def _wrong_field(name: str) -> RestError:
    return RestError("WRONG_FIELD_VALUE", f"Wrong value of field `{name}`")


def _not_found() -> RestError:
    return RestError("NOT_FOUND", "Not found.")


def _context_errors(ctx: CallContext, activity: Activity | None) -> list[RestError]:
    errors = []
    if not ctx.is_app:
        errors.append(RestError("ERROR_WRONG_CONTEXT", "Method call is only possible in the context of an application"))
    if activity is not None and activity.client_id != ctx.client_id:
        errors.append(RestError("ERROR_WRONG_APPLICATION",
                                "The activity can only be updated by the application that created it"))
    return errors


def _field_errors(ctx: CallContext, fields: dict[str, Any]) -> list[RestError]:
    errors = []
    for name in ("completed", "isIncomingChannel"):
        if fields.get(name) is not None and _bool_value(fields[name]) is None:
            errors.append(_wrong_field(name))
    incoming = fields.get("isIncomingChannel")
    if incoming is not None and fields.get("deadline") and _bool_value(incoming):
        errors.append(RestError("INCOMING_ACTIVITY_CAN_NOT_BE_WITH_DEADLINE",
                                "Incoming activity cannot have a deadline"))
    if fields.get("pingOffsets") is not None:
        offsets = as_list(fields["pingOffsets"])
        if offsets is None:
            errors.append(_wrong_field("pingOffsets"))
        else:
            for index, offset in enumerate(offsets):
                if not isinstance(offset, str | int | float) or _to_int(offset) < 0:
                    errors.append(_wrong_field(f"pingOffsets[{index}]"))
    if fields.get("responsibleId") is not None and _to_int(fields["responsibleId"]) <= 0:
        errors.append(_wrong_field("responsibleId"))
    code = fields.get("badgeCode")
    if code is not None and code != "" and str(code) not in ctx.portal.badges:
        errors.append(_wrong_field("badgeCode"))
    type_id = fields.get("typeId")
    if type_id is not None and (not isinstance(type_id, str) or type_id != "CONFIGURABLE"):
        errors.append(_wrong_field("typeId"))
    return errors


def _to_int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _apply_fields(ctx: CallContext, activity: Activity, fields: dict[str, Any]) -> None:
    if fields.get("completed") is not None:
        activity.completed = bool(_bool_value(fields["completed"]))
    if fields.get("deadline") not in (None, ""):
        activity.deadline = str(fields["deadline"])
    if fields.get("isIncomingChannel") is not None:
        activity.is_incoming = bool(_bool_value(fields["isIncomingChannel"]))
    if fields.get("responsibleId") is not None:
        activity.responsible_id = _to_int(fields["responsibleId"])
    if fields.get("pingOffsets") is not None:
        activity.ping_offsets = list(dict.fromkeys(_to_int(v) for v in as_list(fields["pingOffsets"]) or []))
    if fields.get("badgeCode") is not None:
        new_code = str(fields["badgeCode"])
        if new_code != activity.badge_code and new_code:
            activity.badge_seq = ctx.sandbox.next_badge_seq()
        activity.badge_code = new_code
    if fields.get("originatorId") is not None:
        activity.originator_id = str(fields["originatorId"])
    if fields.get("originId") is not None:
        activity.origin_id = str(fields["originId"])
    activity.updated = ctx.now


def _owner_exists(ctx: CallContext, owner_type_id: int, owner_id: int) -> bool:
    return owner_type_id == 2 and owner_id in ctx.portal.deals


@rest_method("crm.activity.configurable.add", scope="crm")
def configurable_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    owner_type_id = as_int(params, "ownerTypeId")
    owner_id = as_int(params, "ownerId")
    fields = as_array(params, "fields")
    layout = as_array(params, "layout")
    errors = _context_errors(ctx, None) + _field_errors(ctx, fields)
    if layout:
        errors += validate_layout(layout)
    else:
        errors.append(RestError("ERROR_EMPTY_LAYOUT", "The layout field must be filled"))
    if errors:
        raise errors[0]
    if not _owner_exists(ctx, owner_type_id, owner_id):
        raise RestError("OWNER_NOT_FOUND", "Owner was not found")
    activity = Activity(ctx.portal.next_id(), owner_type_id, owner_id, str(ctx.client_id), layout,
                        created=ctx.now, updated=ctx.now, responsible_id=ctx.user.id)
    _apply_fields(ctx, activity, fields)
    ctx.portal.activities[activity.id] = activity
    return {"activity": {"id": activity.id}}


@rest_method("crm.activity.configurable.update", scope="crm")
def configurable_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    activity_id = as_int(params, "id")
    fields = as_array(params, "fields", None) or {}
    layout = as_array(params, "layout", None)
    activity = ctx.portal.activities.get(activity_id)
    if activity is None or activity.system is not None:
        raise _not_found()
    errors = _context_errors(ctx, activity) + _field_errors(ctx, fields)
    if layout:
        errors += validate_layout(layout)
    if errors:
        raise errors[0]
    if layout:
        activity.layout = layout
    _apply_fields(ctx, activity, fields)
    return {"activity": {"id": activity.id}}


def activity_view(activity: Activity) -> dict[str, Any]:
    return {"id": activity.id, "ownerTypeId": activity.owner_type_id, "ownerId": activity.owner_id,
            "fields": {"typeId": activity.type_id, "completed": activity.completed, "deadline": activity.deadline,
                       "pingOffsets": list(activity.ping_offsets), "isIncomingChannel": activity.is_incoming,
                       "responsibleId": activity.responsible_id, "badgeCode": activity.badge_code,
                       "originatorId": activity.originator_id or None, "originId": activity.origin_id or None},
            "layout": activity.layout}


@rest_method("crm.activity.configurable.get", scope="crm")
def configurable_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    activity_id = as_int(params, "id")
    errors = _context_errors(ctx, None)
    if errors:
        raise errors[0]
    activity = ctx.portal.activities.get(activity_id)
    if activity is None or activity.system is not None:
        raise _not_found()
    return {"activity": activity_view(activity)}


LIST_FIELDS = ("ID", "OWNER_ID", "OWNER_TYPE_ID", "TYPE_ID", "PROVIDER_ID", "PROVIDER_TYPE_ID", "SUBJECT",
               "CREATED", "LAST_UPDATED", "START_TIME", "END_TIME", "DEADLINE", "COMPLETED", "STATUS",
               "RESPONSIBLE_ID", "PRIORITY", "DESCRIPTION", "DIRECTION", "AUTHOR_ID", "EDITOR_ID", "ORIGINATOR_ID",
               "ORIGIN_ID")
EXTRA_FIELDS = ("COMMUNICATIONS",)  # only when named in `select` (docs/bitrix24-protocol.md §5.8)


def list_row(activity: Activity, portal: Portal) -> dict[str, Any]:
    """The old-style row of any activity: string values, dates in the portal's zone (§3.2, §5.8)."""
    row = _configurable_row(activity, portal) if activity.system is None else _system_row(activity, portal)
    row.update({"ID": str(activity.id), "OWNER_ID": str(activity.owner_id),
                "OWNER_TYPE_ID": str(activity.owner_type_id), "RESPONSIBLE_ID": str(activity.responsible_id),
                "COMPLETED": "Y" if activity.completed else "N", "STATUS": "2" if activity.completed else "1",
                "CREATED": iso(activity.created, portal.tz), "LAST_UPDATED": iso(activity.updated, portal.tz),
                "DEADLINE": activity.deadline or "", "ORIGINATOR_ID": activity.originator_id,
                "ORIGIN_ID": activity.origin_id})
    return {key: row.get(key, "") for key in LIST_FIELDS + EXTRA_FIELDS}


def _configurable_row(activity: Activity, portal: Portal) -> dict[str, Any]:
    return {"TYPE_ID": "6", "PROVIDER_ID": PROVIDER_ID, "PROVIDER_TYPE_ID": activity.type_id,
            "SUBJECT": localized((activity.layout.get("header") or {}).get("title", ""), portal.language),
            "PRIORITY": "2", "DIRECTION": "0", "AUTHOR_ID": str(activity.responsible_id),
            "EDITOR_ID": str(activity.responsible_id), "COMMUNICATIONS": []}


def _system_row(activity: Activity, portal: Portal) -> dict[str, Any]:
    fields = activity.system
    assert fields is not None
    return {"TYPE_ID": str(fields.type_num), "PROVIDER_ID": fields.provider_id,
            "PROVIDER_TYPE_ID": fields.provider_type_id, "SUBJECT": fields.subject,
            "START_TIME": fields.start_time, "END_TIME": fields.end_time, "PRIORITY": str(fields.priority),
            "DESCRIPTION": fields.description, "DIRECTION": str(fields.direction),
            "AUTHOR_ID": str(fields.author_id), "EDITOR_ID": str(fields.author_id),
            "COMMUNICATIONS": [dict(c) for c in fields.communications]}


def _normalized(field: str, values: list[str]) -> list[str]:
    """COMPLETED accepts the boolean spellings the controller accepts (Y/N, 1/0, true/false)."""
    if field == "COMPLETED":
        return ["Y" if _bool_value(v) else "N" for v in values]
    return values


def _selected(rows: list[dict[str, Any]], select: list[Any]) -> list[dict[str, Any]]:
    """`select` names fields; `*` (or nothing) means the standard ones; COMMUNICATIONS only when named."""
    names = {str(s).upper() for s in select}
    wanted = set(LIST_FIELDS) if not names or "*" in names else names & set(LIST_FIELDS)
    wanted |= (names & set(EXTRA_FIELDS)) | {"ID"}
    return [{k: v for k, v in r.items() if k in wanted} for r in rows]


@rest_method("crm.activity.list", scope="crm")
def activity_list(ctx: CallContext, params: dict[str, Any]) -> Paged:
    """Filters with prefixes, order, pages of 50, `start=-1` without counting (docs/bitrix24-protocol.md §3.5)."""
    args = upper_keys(params)
    conditions = parse_filter(_mapping(args.get("FILTER")), _normalized)
    rows = [list_row(a, ctx.portal) for a in ctx.portal.activities.values()]
    rows = sort_rows([r for r in rows if matches(r, conditions)], _mapping(args.get("ORDER")))
    chunk, total, following = page(rows, start_of(args.get("START")))
    return Paged(_selected(chunk, as_list(args.get("SELECT")) or []), total=total, next=following)


@rest_method("crm.activity.delete", scope="crm")
def activity_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    args = upper_keys(params)
    try:
        activity_id = int(args.get("ID") or 0)
    except (TypeError, ValueError):
        activity_id = 0
    if activity_id <= 0:
        raise RestError("ERROR_ARGUMENT", "The parameter 'id' is invalid or not defined.", 400)
    if ctx.portal.activities.pop(activity_id, None) is None:
        raise RestError("ERROR_NOT_FOUND", "Not found.", 400)
    return True


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
