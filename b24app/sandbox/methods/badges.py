"""crm.activity.badge.add/get/list/delete (docs/bitrix24-protocol.md §5.1–§5.5).

Engine-controller semantics: binder errors first (`100`), then the action's own checks in source
order (admin, title, value, type, code length, ORM uniqueness); only the first error is returned,
always with HTTP 400. The code-length check exists in one core version only, so its limit is a
portal setting (`badge_code_limit`, 30 by default; None leaves only the 255-character column).
"""
from __future__ import annotations

from typing import Any

from ..errors import RestError, param_missing
from ..models import BADGE_CODE_COLUMN, PORTAL_LANGUAGES, Badge
from .base import CallContext, Paged, as_str, rest_method

BADGE_TYPES = ("success", "failure", "warning", "primary", "secondary")


def _access_denied() -> RestError:
    return RestError("ACCESS_DENIED", "Access denied.", 400)


def _not_found() -> RestError:
    """The docs' text; the mirrored core says "Badge not found for code `X`" (docs/bitrix24-protocol.md §5.3)."""
    return RestError("NOT_FOUND", "Not found.", 400)


def _code_too_long(ctx: CallContext, code: str) -> RestError | None:
    limit = ctx.portal.settings.badge_code_limit
    bound = BADGE_CODE_COLUMN if limit is None else limit
    if len(code) <= bound:
        return None
    return RestError(0, f"The length of the `code` field must not exceed {bound} characters")


def _translated_text_errors(value: Any, field: str) -> list[RestError]:
    """`validateTranslatedText`: a non-empty string, or {lang: non-empty string} with known langs."""
    if isinstance(value, str):
        return [RestError("REQUIRED_ARG_MISSING", f"Argument '{field}' is required")] if value == "" else []
    if isinstance(value, list):
        value = {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        errors: list[RestError] = []
        for lang, text in value.items():
            if lang not in PORTAL_LANGUAGES:
                errors.append(RestError(0, f"Language `{lang}` was not found"))
            if not isinstance(text, str) or text == "":
                errors.append(RestError(0, f"Wrong value of field `{field}` for language {lang}"))
        return errors
    return [RestError("REQUIRED_ARG_MISSING", f"Argument '{field}' is required")]


def _stored(value: Any) -> Any:
    """TITLE/VALUE are stored as JSON and decoded on output: a list becomes its PHP-array form."""
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return value


@rest_method("crm.activity.badge.add", scope="crm")
def badge_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    code = as_str(params, "code")
    for name in ("title", "value"):
        if name not in params:
            raise param_missing(name)
    kind = as_str(params, "type")
    if not ctx.user.admin:
        raise _access_denied()
    errors = _translated_text_errors(params["title"], "title") + _translated_text_errors(params["value"], "value")
    if kind not in BADGE_TYPES:
        errors.append(RestError("WRONG_TYPE_VALUE", "Wrong value of field `type`"))
    if errors:
        raise errors[0]
    too_long = _code_too_long(ctx, code)
    if too_long is not None:
        raise too_long
    if code == "":
        raise RestError("BX_EMPTY_REQUIRED", 'Field "CODE" is required')
    if code in ctx.portal.badges:
        raise RestError("BX_INVALID_VALUE", "Code must be unique")
    badge = Badge(code, _stored(params["title"]), _stored(params["value"]), kind)
    ctx.portal.badges[code] = badge
    return {"badge": badge.public()}


@rest_method("crm.activity.badge.get", scope="crm")
def badge_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    code = as_str(params, "code")
    badge = ctx.portal.badges.get(code)
    if badge is None:
        raise _not_found()
    return {"badge": badge.public()}


@rest_method("crm.activity.badge.list", scope="crm")
def badge_list(ctx: CallContext, params: dict[str, Any]) -> Paged:
    badges = [b.public() for b in ctx.portal.badges.values()]
    return Paged({"badges": badges}, total=len(badges))


@rest_method("crm.activity.badge.delete", scope="crm")
def badge_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    code = as_str(params, "code")
    if not ctx.user.admin:
        raise _access_denied()
    if code not in ctx.portal.badges:
        raise _not_found()
    if any(a.shows_badge and a.badge_code == code for a in ctx.portal.activities.values()):
        raise RestError("ENTITY_WITH_BADGE_EXISTS", "There are entities with this badge. Delete them first.")
    del ctx.portal.badges[code]
    return True
