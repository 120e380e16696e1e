"""crm.activity.add and crm.activity.fields: the old-style system activity (docs/bitrix24-protocol.md §5.8).

Errors are the old REST proxy's: HTTP 400 with an empty `error` code and the message in
`error_description`, first failing check wins. Only deals exist as owners in the sandbox, so any
other owner is "not found", as a missing one is on a portal.
"""
from __future__ import annotations

from typing import Any

from ..errors import RestError
from ..models import Activity, SystemFields
from ..phpquery import as_list
from .base import CallContext, rest_method, upper_keys

ACTIVITY_TYPES = {1: "MEETING", 2: "CALL", 3: "TASK", 4: "EMAIL", 5: "ACTION", 6: "PROVIDER"}
OWNER_NAMES = {1: "LEAD", 2: "DEAL", 3: "CONTACT", 4: "COMPANY", 7: "QUOTE"}
CONFIGURABLE_PROVIDER = "CONFIGURABLE_REST_APP"
SINGLE_COMMUNICATION_TYPES = (2,)  # a call has one counterpart

# (name, type, required, read-only, immutable, multiple, title) from the docs' crm.activity.fields answer.
FIELD_TABLE: tuple[tuple[str, str, bool, bool, bool, bool, str], ...] = (
    ("ID", "integer", False, True, False, False, "ID"),
    ("OWNER_ID", "integer", False, False, True, False, "Owner ID"),
    ("OWNER_TYPE_ID", "crm_enum_ownertype", False, False, True, False, "Owner Type"),
    ("TYPE_ID", "crm_enum_activitytype", True, False, True, False, "Type"),
    ("PROVIDER_ID", "string", False, False, False, False, "Provider ID"),
    ("PROVIDER_TYPE_ID", "string", False, False, False, False, "Provider Type"),
    ("PROVIDER_GROUP_ID", "string", False, False, False, False, "Connector Type"),
    ("ASSOCIATED_ENTITY_ID", "integer", False, True, False, False, "ID of the entity associated with the activity"),
    ("SUBJECT", "string", True, False, False, False, "Subject"),
    ("START_TIME", "datetime", False, False, False, False, "Start"),
    ("END_TIME", "datetime", False, False, False, False, "Deadline"),
    ("DEADLINE", "datetime", False, False, False, False, "Due Date"),
    ("COMPLETED", "char", False, False, False, False, "Completed"),
    ("STATUS", "crm_enum_activitystatus", False, False, False, False, "Status"),
    ("RESPONSIBLE_ID", "user", True, False, False, False, "Responsible"),
    ("PRIORITY", "crm_enum_activitypriority", False, False, False, False, "Priority"),
    ("NOTIFY_TYPE", "crm_enum_activitynotifytype", False, False, False, False, "Notification Type"),
    ("NOTIFY_VALUE", "integer", False, False, False, False, "Notification Parameter"),
    ("DESCRIPTION", "string", False, False, False, False, "Description"),
    ("DESCRIPTION_TYPE", "crm_enum_contenttype", False, False, False, False, "Description Type"),
    ("DIRECTION", "crm_enum_activitydirection", False, False, False, False, "Direction"),
    ("LOCATION", "string", False, False, False, False, "Location"),
    ("CREATED", "datetime", False, True, False, False, "Creation Date"),
    ("AUTHOR_ID", "user", False, True, False, False, "Created By"),
    ("LAST_UPDATED", "datetime", False, True, False, False, "Last Updated"),
    ("EDITOR_ID", "user", False, True, False, False, "Edited By"),
    ("SETTINGS", "object", False, False, False, False, "Settings"),
    ("ORIGIN_ID", "string", False, False, False, False, "External Code"),
    ("ORIGINATOR_ID", "string", False, False, False, False, "External Source"),
    ("BINDINGS", "crm_activity_binding", False, True, False, True, "Bindings"),
    ("COMMUNICATIONS", "crm_activity_communication", True, False, False, True, "Communication Channel"),
    ("FILES", "diskfile", False, False, False, True, "Files"),
    ("IS_INCOMING_CHANNEL", "char", False, True, False, False, "IS_INCOMING_CHANNEL"),
)


def _proxy_error(message: str) -> RestError:
    """The old REST proxy's failure: `{"error": "", "error_description": message}`, HTTP 400."""
    return RestError("", message, 400)


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


@rest_method("crm.activity.fields", scope="crm")
def activity_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    return {name: {"type": kind, "isRequired": required, "isReadOnly": read_only, "isImmutable": immutable,
                   "isMultiple": multiple, "isDynamic": False, "title": title}
            for name, kind, required, read_only, immutable, multiple, title in FIELD_TABLE}


@rest_method("crm.activity.add", scope="crm")
def activity_add(ctx: CallContext, params: dict[str, Any]) -> int:
    """A system activity (call, meeting, e-mail...) on a deal; returns its id (§5.8)."""
    raw = upper_keys(params).get("FIELDS")
    if not isinstance(raw, dict) or not raw:
        raise _proxy_error("The parameter 'fields' must be array.")
    fields = upper_keys(raw)
    communications = _checked_fields(ctx, fields)
    owner_type, owner_id = _owner(ctx, fields)
    completed = str(fields.get("COMPLETED", "N")).upper() in ("Y", "1", "TRUE")
    system = SystemFields(
        _int(fields["TYPE_ID"]), str(fields["SUBJECT"]), ctx.user.id, str(fields.get("DESCRIPTION") or ""),
        str(fields.get("START_TIME") or ""), str(fields.get("END_TIME") or ""), _int(fields.get("DIRECTION")),
        _int(fields.get("PRIORITY")) or 2, str(fields.get("PROVIDER_ID") or ""),
        str(fields.get("PROVIDER_TYPE_ID") or ACTIVITY_TYPES[_int(fields["TYPE_ID"])]), communications)
    activity = Activity(ctx.portal.next_id(), owner_type, owner_id, str(ctx.client_id or ""), {},
                        created=ctx.now, updated=ctx.now, completed=completed,
                        responsible_id=_int(fields["RESPONSIBLE_ID"]),
                        deadline=system.start_time if system.type_num in (1, 2) else system.end_time,
                        originator_id=str(fields.get("ORIGINATOR_ID") or ""),
                        origin_id=str(fields.get("ORIGIN_ID") or ""), system=system)
    ctx.portal.activities[activity.id] = activity
    return activity.id


def _checked_fields(ctx: CallContext, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The field checks, in the order of the docs' error table; returns the communications."""
    if not str(fields.get("SUBJECT") or "").strip():
        raise _proxy_error("The field SUBJECT is not defined or empty.")
    if _int(fields.get("RESPONSIBLE_ID")) <= 0:
        raise _proxy_error("The field RESPONSIBLE_ID is not defined or invalid.")
    type_num = _int(fields.get("TYPE_ID"))
    if type_num not in ACTIVITY_TYPES:
        raise _proxy_error("The field TYPE_ID is not defined or invalid.")
    provider = str(fields.get("PROVIDER_ID") or "")
    if provider.upper() == CONFIGURABLE_PROVIDER:
        raise _proxy_error("Use crm.activity.configurable.add for this activity provider")
    if type_num == 6 and not provider:
        raise _proxy_error("The custom activity without provider is not supported in current context")
    communications = [c for c in as_list(fields.get("COMMUNICATIONS")) or [] if isinstance(c, dict)]
    if not communications or not all(str(c.get("VALUE") or c.get("ENTITY_ID") or "") for c in communications):
        raise _proxy_error("The field COMMUNICATIONS is not defined or invalid.")
    if type_num in SINGLE_COMMUNICATION_TYPES and len(communications) > 1:
        raise _proxy_error("The only one communication is allowed for activity of specified type.")
    return [_communication(c, type_num) for c in communications]


def _communication(item: dict[str, Any], type_num: int) -> dict[str, Any]:
    kind = {2: "PHONE", 4: "EMAIL"}.get(type_num, "")
    return {"TYPE": str(item.get("TYPE") or kind), "VALUE": str(item.get("VALUE") or ""),
            "ENTITY_ID": str(item.get("ENTITY_ID") or ""), "ENTITY_TYPE_ID": str(item.get("ENTITY_TYPE_ID") or "")}


def _owner(ctx: CallContext, fields: dict[str, Any]) -> tuple[int, int]:
    owner_type, owner_id = _int(fields.get("OWNER_TYPE_ID")), _int(fields.get("OWNER_ID"))
    if owner_type not in OWNER_NAMES or owner_id <= 0:
        raise _proxy_error("Could not build binding. Please ensure that owner info and communications "
                           "are defined correctly.")
    if owner_type != 2 or owner_id not in ctx.portal.deals:
        raise _proxy_error(f"Could not find '{OWNER_NAMES[owner_type]}' with ID: {owner_id}")
    return owner_type, owner_id
