"""app.info (portal shape), app.option.get, app.option.set (docs/bitrix24-protocol.md §6.1, §6.5).

An app token sees its installation; a webhook gets `{SCOPE, LICENSE}` from app.info, as the official
Python SDK models and tests it, and ACCESS_DENIED from the app.option methods, which need app context.
"""
from __future__ import annotations

from typing import Any

from ..errors import RestError, access_denied
from .base import CallContext, rest_method


@rest_method("app.info")
def app_info(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    if ctx.webhook is not None:
        scopes = [s.strip() for s in ctx.webhook.scope.split(",") if s.strip()]
        return {"SCOPE": scopes, "LICENSE": ctx.portal.license}
    if not ctx.is_app or ctx.installation is None:
        raise access_denied("Application context required")
    inst = ctx.installation
    return {"ID": ctx.sandbox.app_number(inst.client_id), "CODE": inst.client_id, "VERSION": inst.version,
            "STATUS": inst.status, "INSTALLED": inst.installed, "PAYMENT_EXPIRED": "N", "DAYS": None,
            "LANGUAGE_ID": ctx.portal.language, "LICENSE": ctx.portal.license,
            "LICENSE_TYPE": ctx.portal.license_type, "LICENSE_FAMILY": ctx.portal.license_family}


def _app_client(ctx: CallContext) -> str:
    if not ctx.is_app or ctx.client_id is None:
        raise access_denied("Application context required")
    return ctx.client_id


@rest_method("app.option.get")
def app_option_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    """One value (null when unknown), or every option (`[]` when none) as app.option.set saved them."""
    options = ctx.portal.app_options.get(_app_client(ctx), {})
    if "option" in params and params["option"] not in (None, ""):
        return options.get(str(params["option"]))
    return dict(options) if options else []


@rest_method("app.option.set")
def app_option_set(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Admins only; only the keys sent change; without `options` the parameters themselves are the options."""
    client_id = _app_client(ctx)
    if not ctx.user.admin:
        raise access_denied("Administrator authorization required")
    options = params.get("options", params)
    if not isinstance(options, dict) or not options:
        raise RestError("ERROR_ARGUMENT", "Argument 'options' is null or empty", 400, {"argument": "options"})
    ctx.portal.app_options.setdefault(client_id, {}).update({str(k): v for k, v in options.items()})
    return True
