"""The one place that turns exceptions into HTTP responses.

Every error response is `{"error": CODE, "error_description": text}` (plus `fields` for bad input),
or the HTML error page inside the portal's frame; a 500 carries the request id and never a traceback.
`STATUS` gives each class of the app's exception tree (b24app/errors.py) its status; a class not
listed takes its nearest listed ancestor's. Every 503 carries `Retry-After`: the wait the refusal
knows of (the next rate-limit slot, a method's pause) or a default, plus up to half of it at random, so
that callers refused together (one portal's flood, everyone during a Redis outage) do not come back
together and be refused together again.
"""
from __future__ import annotations

import logging
import random
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..badges.deals import DealBusy
from ..badges.rules import portal_refusal
from ..badges.service import BadgeExists, BadgeInUse, BadgeNotFound, PortalAnswerInvalid
from ..bitrix import errors as b24
from ..bitrix.oauth import OAuthError
from ..errors import (
    AppError,
    ConfigError,
    Forbidden,
    IncompleteFrame,
    InvalidInput,
    InvalidSession,
    NoSession,
    PortalNeedsReauth,
    PortalUnavailable,
    RateLimitTimeout,
    ReauthLinkInvalid,
    RefreshBusy,
    StorageError,
    Unverified,
    VerifierUnavailable,
)
from ..observability.logs import LineThrottle, request_id_var
from ..storage.connection import OUTAGES
from ..storage.idempotency import KeyReused, RequestInProgress

log = logging.getLogger(__name__)

STATUS: dict[type, int] = {
    AppError: 500,
    ConfigError: 503,
    StorageError: 503,
    InvalidInput: 400,
    Unverified: 401, IncompleteFrame: 400, Forbidden: 403, NoSession: 401, InvalidSession: 401,
    ReauthLinkInvalid: 400, VerifierUnavailable: 503,
    PortalUnavailable: 410, PortalNeedsReauth: 409,
    RefreshBusy: 503,
    RateLimitTimeout: 503,
    OAuthError: 503,
    b24.B24Error: 400, b24.TokenError: 409, b24.OwnerCannotAct: 409, b24.AppNotInstalled: 410,
    b24.AccessDenied: 403, b24.PaymentRequired: 402, b24.MethodNotFound: 404, b24.NotFound: 404,
    b24.Conflict: 409, b24.InvalidArgument: 400, b24.QueryLimitExceeded: 503, b24.OperationTimeLimit: 503,
    b24.Overloaded: 503, b24.PortalServerError: 503, b24.TransientAuthError: 503, b24.TransportError: 503,
    BadgeExists: 409, BadgeNotFound: 404, BadgeInUse: 409, PortalAnswerInvalid: 503, DealBusy: 503,
    KeyReused: 422, RequestInProgress: 409,
}
HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "ACCESS_DENIED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 409: "CONFLICT", 410: "GONE",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE",
    429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
}
DEFAULT_RETRY_AFTER = 5
# Blueprints whose pages live inside the portal's iframe: their errors are pages, not JSON.
FRAMED_BLUEPRINTS = frozenset({"install", "frame"})
ERROR_PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors *"


def status_of(exc: AppError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def describe(exc: AppError) -> tuple[int, str, str, dict[str, Any], dict[str, str]]:
    """(status, code, description, extra body fields, headers) for an exception of the app's tree."""
    status = status_of(exc)
    code, description = exc.code, exc.description or exc.code
    extra: dict[str, Any] = {"fields": exc.fields} if exc.fields else {}
    headers: dict[str, str] = {}
    if isinstance(exc, b24.InvalidArgument):
        refused = portal_refusal(exc.description or exc.code)
        code, description, extra = refused.code, refused.description, {"fields": refused.fields}
    elif isinstance(exc, b24.OwnerCannotAct):
        code, description = PortalNeedsReauth.code, exc.message
    elif isinstance(exc, b24.B24Error):
        description = exc.message
    elif isinstance(exc, BadgeInUse):
        extra["deals"] = exc.deals
    elif isinstance(exc, Unverified):
        description = description[:1].upper() + description[1:] + ("" if description.endswith(".") else ".")
    if isinstance(exc, NoSession):
        headers["WWW-Authenticate"] = 'Bearer realm="activity-badges"'
    elif isinstance(exc, InvalidSession):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if status == 503:
        headers["Retry-After"] = str(_retry_after(exc))
    elif isinstance(exc, RequestInProgress):
        headers["Retry-After"] = str(exc.retry_after)
    return status, code, description, extra, headers


def _retry_after(exc: AppError) -> int:
    if isinstance(exc, RateLimitTimeout):
        seconds = exc.retry_after
    elif isinstance(exc, b24.B24Error):
        seconds = float(exc.extra.get("retry_after", DEFAULT_RETRY_AFTER))
    elif isinstance(exc, RefreshBusy):
        seconds = 2
    else:
        seconds = DEFAULT_RETRY_AFTER
    return _spread(seconds)


def _spread(seconds: float) -> int:
    """Whole seconds to wait, plus up to half of them at random (the module docstring says why)."""
    whole = max(1, int(seconds + 0.999))
    return whole + random.randint(0, max(1, whole // 2))


def error_response(status: int, code: str, description: str, **extra: Any) -> Response:
    """Build the error in the shape the caller expects: an HTML page in the frame, JSON elsewhere."""
    if request.blueprint in FRAMED_BLUEPRINTS:
        html = render_template("error.html", status=status, code=code, description=description,
                               request_id=request_id_var.get(), **extra)
        response = current_app.response_class(html, status=status, mimetype="text/html")
        # Nothing was verified, so the portal's origin is unknown; the page carries no data worth framing.
        response.headers["Content-Security-Policy"] = ERROR_PAGE_CSP
    else:
        response = jsonify({"error": code, "error_description": description, **extra})
        response.status_code = status
    return response


def init_app(app: Flask) -> None:
    throttle = LineThrottle()

    def _app_error(exc: AppError) -> Response:
        status, code, description, extra, headers = describe(exc)
        if status >= 500:
            held_back = throttle.admit((code, getattr(exc, "member_id", "")))
            if held_back is not None:
                log.warning("request failed", extra={"error": code, "reason": str(exc)[:200], "held_back": held_back})
        response = error_response(status, code, description, **extra)
        response.headers.update(headers)
        return response

    app.register_error_handler(AppError, _app_error)

    def _storage_down(exc: Exception) -> Response:
        held_back = throttle.admit(("redis", type(exc).__name__))
        if held_back is not None:
            log.error("redis unavailable", extra={"error": type(exc).__name__, "held_back": held_back})
        response = error_response(503, "SERVICE_UNAVAILABLE", "The app's storage is unavailable; try again shortly.")
        response.headers["Retry-After"] = str(_spread(DEFAULT_RETRY_AFTER))
        return response

    for outage in OUTAGES:
        app.register_error_handler(outage, _storage_down)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, HTTP_CODES.get(status, "HTTP_ERROR"), exc.description or exc.name)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        request_id = request_id_var.get()
        return error_response(500, "INTERNAL_ERROR",
                              f"An unexpected error occurred; quote request id {request_id} when reporting it.",
                              request_id=request_id)
