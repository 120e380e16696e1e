"""What the blueprints share: the one accessor of the process's services, and framed-page headers."""
from __future__ import annotations

from flask import Flask, Response, current_app, make_response, render_template

from ..container import PortalServices, Services, ServicesOnDemand
from ..errors import ConfigIncomplete

EXTENSION = "b24"
FRAME_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {origin}")


def services(app: Flask | None = None) -> Services:
    holder: ServicesOnDemand = (app or current_app).extensions[EXTENSION]
    return holder.get()


def portal_services(app: Flask | None = None) -> PortalServices:
    """The services that need the app's credentials; CONFIG_INCOMPLETE without them."""
    found = services(app).portal_services
    if found is None:
        raise ConfigIncomplete("B24_CLIENT_ID", "The app is not configured: B24_CLIENT_ID and B24_CLIENT_SECRET "
                                                "are missing.")
    return found


def framed_page(template: str, origin: str, status: int = 200, /, **context: object) -> Response:
    """A page the portal shows in its iframe: framable by that portal's origin and nothing else."""
    response = make_response(render_template(template, **context), status)
    response.headers["Content-Security-Policy"] = FRAME_CSP.format(origin=origin)
    response.headers["Cache-Control"] = "no-store"
    return response
