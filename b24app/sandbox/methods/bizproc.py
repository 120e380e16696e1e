"""bizproc.robot.add/update/list/delete, bizproc.event.send, bizproc.activity.log (docs/bitrix24-protocol.md §11).

Scope `bizproc`. The robot methods need app context (403 ACCESS_DENIED "Access denied! Application
context required") and a portal admin (403 ACCESS_DENIED "Access denied!"); they see only the calling
app's robots, and CODE is unique per app. Checks run in core's order (`Bitrix\\Bizproc\\RestService`):
the first failing one answers, 400 with ERROR_ACTIVITY_VALIDATION_FAILURE and core's texts. Keys are
case-insensitive the way core's `prepareActivityData` makes them: every key is upper-cased, recursively,
except the keys directly under PROPERTIES, RETURN_PROPERTIES and OPTIONS.

`bizproc.event.send` and `bizproc.activity.log` take any user; a token this portal did not sign answers
403 ACCESS_DENIED. A verified token of a run that no longer waits is accepted and ignored (`true`).
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import RestError, access_denied
from ..models import Robot
from ..robots import unsign_token
from .base import CallContext, rest_method

SCOPE = "bizproc"
_CODE = re.compile(r"^[a-z0-9.\-_]+$", re.IGNORECASE)
_PROPERTY_KEY = re.compile(r"^[a-z][a-z0-9_]*$", re.IGNORECASE)
_KEEP_CASE = ("PROPERTIES", "RETURN_PROPERTIES", "OPTIONS")


def _validation(message: str) -> RestError:
    return RestError("ERROR_ACTIVITY_VALIDATION_FAILURE", message)


def _not_found() -> RestError:
    return RestError("ERROR_ACTIVITY_NOT_FOUND", "Activity or Robot not found!")


def php_empty(value: Any) -> bool:
    """PHP's `empty()`: null, false, 0, 0.0, "", "0" and empty arrays."""
    if value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str):
        return value in ("", "0")
    if isinstance(value, dict | list | tuple):
        return len(value) == 0
    return False


def php_int(value: Any) -> int:
    """PHP's `(int)` cast: leading digits of a string, else 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        matched = re.match(r"^\s*([+-]?\d+)", value)
        return int(matched.group(1)) if matched else 0
    return 1 if isinstance(value, dict | list) and value else 0


def _is_array(value: Any) -> bool:
    return isinstance(value, dict | list)


def _items(value: dict[str, Any] | list[Any]) -> list[tuple[Any, Any]]:
    return list(value.items()) if isinstance(value, dict) else list(enumerate(value))


def prepare(data: Any, keep_case: bool = False) -> Any:
    """RestService::prepareActivityData: upper-case every key, recursively, except directly under
    PROPERTIES, RETURN_PROPERTIES and OPTIONS (property names and option values keep their case)."""
    if isinstance(data, list):
        return [prepare(v) if _is_array(v) else v for v in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key) if keep_case else str(key).upper()
        out[name] = prepare(value, name in _KEEP_CASE) if _is_array(value) else value
    return out


def _check_code(code: Any) -> str:
    if php_empty(code):
        raise _validation("Empty activity code!")
    if not isinstance(code, str) or not _CODE.match(code):
        raise _validation("Wrong activity code!")
    return code


def check_callback(url: Any) -> str:
    """HandlerHelper::checkCallback: a host with a dot (not first), then http or https."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
    except ValueError:
        parts, host = None, None
    if parts is None or not host or host.find(".") <= 0:
        raise RestError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
    if parts.scheme not in ("http", "https"):
        raise RestError("ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol")
    return str(url)


def _check_properties(properties: Any) -> dict[str, Any]:
    if not _is_array(properties):
        raise _validation("Wrong properties array!")
    checked: dict[str, Any] = {}
    for key, prop in _items(properties):
        name = str(key)
        if not _PROPERTY_KEY.match(name):
            raise _validation(f"Wrong property key ({name})!")
        if not isinstance(prop, dict) or php_empty(prop.get("NAME")):
            raise _validation(f"Empty property NAME ({name})!")
        checked[name] = prop
    return checked


def _check_document_type(value: Any) -> list[str]:
    """A complex document type `[module, entity, type]`: three non-empty strings (CBPHelper::ParseDocumentId)."""
    parts = [v for _, v in _items(value)] if _is_array(value) else []
    if len(parts) < 3 or not all(isinstance(p, str) and p for p in parts[:3]):
        raise _validation("Wrong activity DOCUMENT_TYPE!")
    return [str(p) for p in parts[:3]]


def _use_subscription(value: Any) -> str:
    """Y waits, empty lets the user choose per rule; anything else does not wait."""
    if php_empty(value):
        return ""
    return "Y" if value == "Y" else "N"


def _app_admin(ctx: CallContext) -> str:
    if not ctx.is_app or ctx.client_id is None:
        raise access_denied("Application context required")
    if not ctx.user.admin:
        raise access_denied()
    return ctx.client_id


def _find(ctx: CallContext, client_id: str, code: str) -> Robot:
    robot = ctx.sandbox.automation.robot(ctx.portal, client_id, code)
    if robot is None:
        raise _not_found()
    return robot


@rest_method("bizproc.robot.add", scope=SCOPE)
def robot_add(ctx: CallContext, params: dict[str, Any]) -> bool:
    client_id = _app_admin(ctx)
    data = prepare(params)
    if not data:
        raise _validation("Empty data!")
    code = _check_code(data.get("CODE"))
    handler = check_callback(data.get("HANDLER"))
    if php_empty(data.get("NAME")):
        raise _validation("Empty activity NAME!")
    properties = _check_properties(data["PROPERTIES"]) if data.get("PROPERTIES") is not None else {}
    document_type = _check_document_type(data["DOCUMENT_TYPE"]) if data.get("DOCUMENT_TYPE") is not None else None
    returns = _check_properties(data["RETURN_PROPERTIES"]) if data.get("RETURN_PROPERTIES") is not None else {}
    if data.get("FILTER") is not None and not _is_array(data["FILTER"]):
        raise _validation("Wrong activity FILTER!")
    if ctx.sandbox.automation.robot(ctx.portal, client_id, code) is not None:
        raise RestError("ERROR_ACTIVITY_ALREADY_INSTALLED", "Activity or Robot already installed!")
    use_placement = "Y" if data.get("USE_PLACEMENT") == "Y" else "N"
    placement_handler = check_callback(data.get("PLACEMENT_HANDLER")) if use_placement == "Y" else ""
    auth_user_id = php_int(data["AUTH_USER_ID"]) if data.get("AUTH_USER_ID") is not None else 0
    description = data["DESCRIPTION"] if data.get("DESCRIPTION") is not None else ""
    ctx.portal.robots.append(Robot(client_id, code, handler, data["NAME"], auth_user_id,
                                   _use_subscription(data.get("USE_SUBSCRIPTION")), use_placement, placement_handler,
                                   description, properties, returns, document_type, data.get("FILTER"),
                                   ctx.portal.next_id()))
    return True


@rest_method("bizproc.robot.update", scope=SCOPE)
def robot_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    if not ctx.is_app or ctx.client_id is None:
        raise access_denied("Application context required")
    data = prepare(params)
    if not ctx.user.admin:
        raise access_denied()
    code = _check_code(data.get("CODE"))
    robot = _find(ctx, ctx.client_id, code)
    fields = data.get("FIELDS")
    if not isinstance(fields, dict) or not fields:
        raise _validation("No fields to update")
    changes: dict[str, Any] = {}
    if fields.get("HANDLER") is not None:
        changes["handler"] = check_callback(fields["HANDLER"])
    if fields.get("AUTH_USER_ID") is not None:
        changes["auth_user_id"] = php_int(fields["AUTH_USER_ID"])
    if fields.get("USE_SUBSCRIPTION") is not None:
        changes["use_subscription"] = _use_subscription(fields["USE_SUBSCRIPTION"])
    if fields.get("USE_PLACEMENT") is not None:
        changes["use_placement"] = "Y" if fields["USE_PLACEMENT"] == "Y" else "N"
    if not php_empty(fields.get("NAME")):
        changes["name"] = fields["NAME"]
    if fields.get("DESCRIPTION") is not None:
        changes["description"] = fields["DESCRIPTION"]
    if fields.get("PROPERTIES") is not None:
        changes["properties"] = _check_properties(fields["PROPERTIES"])
    if fields.get("RETURN_PROPERTIES") is not None:
        changes["return_properties"] = _check_properties(fields["RETURN_PROPERTIES"])
    if fields.get("DOCUMENT_TYPE") is not None:
        value = fields["DOCUMENT_TYPE"]
        changes["document_type"] = None if php_empty(value) else _check_document_type(value)
    if fields.get("FILTER") is not None:
        value = fields["FILTER"]
        if not php_empty(value) and not _is_array(value):
            raise _validation("Wrong activity FILTER!")
        changes["filter"] = None if php_empty(value) else value
    if not changes:
        raise _validation("No fields to update")
    if fields.get("PLACEMENT_HANDLER") is not None:
        changes["placement_handler"] = check_callback(fields["PLACEMENT_HANDLER"])
    for name, value in changes.items():
        setattr(robot, name, value)
    if robot.use_placement == "N":
        robot.placement_handler = ""
    return True


@rest_method("bizproc.robot.list", scope=SCOPE)
def robot_list(ctx: CallContext, params: dict[str, Any]) -> list[str]:
    client_id = _app_admin(ctx)
    return [r.code for r in ctx.portal.robots if r.client_id == client_id]


@rest_method("bizproc.robot.delete", scope=SCOPE)
def robot_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    client_id = _app_admin(ctx)
    data = {str(k).upper(): v for k, v in params.items()}
    code = _check_code(data.get("CODE"))
    robot = _find(ctx, client_id, code)
    ctx.portal.robots.remove(robot)
    return True


def _token_parts(ctx: CallContext, params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    data = {str(k).upper(): v for k, v in params.items()}
    parts = unsign_token(ctx.portal, data.get("EVENT_TOKEN"))
    if parts is None:  # CBPRestActivity::extractToken failed -> AccessException
        raise access_denied()
    return data, parts


@rest_method("bizproc.event.send", scope=SCOPE)
def event_send(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The app's answer to a waiting robot: RETURN_VALUES (registered RETURN_PROPERTIES only) and LOG_MESSAGE."""
    data, parts = _token_parts(ctx, params)
    ctx.sandbox.automation.answer(ctx.portal, parts, data.get("RETURN_VALUES"), data.get("LOG_MESSAGE"))
    return True


@rest_method("bizproc.activity.log", scope=SCOPE)
def activity_log(ctx: CallContext, params: dict[str, Any]) -> bool:
    """A line in the workflow log while the robot keeps waiting."""
    data, parts = _token_parts(ctx, params)
    message = data.get("LOG_MESSAGE")
    if php_empty(message):
        raise RestError("ERROR_EMPTY_LOG_MESSAGE", "Empty log message!")
    ctx.sandbox.automation.write_log(ctx.portal, parts, message if isinstance(message, str) else str(message))
    return True
