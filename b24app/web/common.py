"""Helpers shared by the blueprints: reaching the services, framed-page headers, verification errors."""
from __future__ import annotations

from flask import Response, current_app, make_response, render_template

from ..errors import AppError
from ..installations import Installations, Unverified
from ..services import Services

FRAME_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {origin}")


def services() -> Services:
    return current_app.extensions["b24"]


def installations() -> Installations:
    found = services().installations
    if found is None:
        raise AppError("The app is not configured: B24_CLIENT_ID and B24_CLIENT_SECRET are missing.",
                       code="CONFIG_INCOMPLETE", status=503)
    return found


def framed_page(template: str, origin: str, status: int = 200, **context: object) -> Response:
    """A page the portal shows in its iframe: framable by that portal's origin and nothing else."""
    response = make_response(render_template(template, **context), status)
    response.headers["Content-Security-Policy"] = FRAME_CSP.format(origin=origin)
    response.headers["Cache-Control"] = "no-store"
    return response


def unverified_error(exc: Unverified) -> AppError:
    code = {400: "BAD_REQUEST", 403: "ACCESS_DENIED", 404: "NOT_FOUND", 503: "SERVICE_UNAVAILABLE"}.get(
        exc.status, "UNVERIFIED")
    return AppError(exc.reason[:1].upper() + exc.reason[1:] + ".", code=code, status=exc.status)
