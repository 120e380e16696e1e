"""One error shape for the whole app: JSON `{"error", "error_description"}`, HTML for framed pages.

Services raise `AppError` (or a subclass) with a stable code; the handlers here turn it, any
werkzeug HTTP error and any unexpected exception into a response that never carries a traceback.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .logs import request_id_var

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "ACCESS_DENIED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 409: "CONFLICT", 410: "GONE",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE",
    429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
}
# Blueprints whose pages live inside the portal's iframe: their errors are pages, not JSON.
FRAMED_BLUEPRINTS = frozenset({"install", "frame"})
ERROR_PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors *"


class AppError(Exception):
    """An error with a stable machine-readable code that is safe to show to the caller."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, description: str, *, code: str | None = None, status: int | None = None,
                 fields: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"error": self.code, "error_description": self.description}
        if self.fields:
            payload["fields"] = self.fields
        return payload


def error_response(status: int, code: str, description: str, **extra: Any) -> Response:
    """Build the error in the shape the caller expects: an HTML page in the frame, JSON elsewhere."""
    if request.blueprint in FRAMED_BLUEPRINTS:
        html = render_template("error.html", status=status, code=code, description=description,
                               request_id=request_id_var.get(), **extra)
        response = current_app.response_class(html, status=status, mimetype="text/html")
        # Nothing was verified, so the portal's origin is unknown; the page carries no data worth framing.
        response.headers["Content-Security-Policy"] = ERROR_PAGE_CSP
    else:
        payload = {"error": code, "error_description": description, **extra}
        response = jsonify(payload)
        response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError) -> Response:
        extra = {"fields": exc.fields} if exc.fields else {}
        response = error_response(exc.status, exc.code, exc.description, **extra)
        response.headers.update(exc.headers)
        return response

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
