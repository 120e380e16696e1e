"""The pages the portal frames: the app page and every placement (POST /app), and the OAuth flow."""
from __future__ import annotations

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from ..errors import IncompleteFrame
from ..portals.frames import FrameRequest, portal_origin
from ..storage.installations import PortalState
from .common import framed_page, portal_services, services

bp = Blueprint("frame", __name__)


@bp.post("/app")
def app_page() -> Response:
    portals = portal_services().portals
    verified, record = portals.open_app(FrameRequest.parse(request.form, request.args))
    frame = verified.frame
    token, ttl = portals.session_for(verified)
    state = "unavailable" if record is None else record.state.value
    context = {
        "session_token": token, "session_ttl": ttl, "lang": frame.lang, "placement": frame.placement,
        "placement_options": frame.placement_options, "is_admin": verified.is_admin, "state": state,
        "domain": verified.info.domain, "last_error": record.last_error if record else "",
        "badge_prefix": services().badges.prefix,
    }
    status = 200 if state == PortalState.ACTIVE else 409
    return framed_page("app.html", verified.portal_origin, status, **context)


@bp.get("/app")
def app_get() -> Response:
    raise IncompleteFrame("open this app from your Bitrix24 portal")


@bp.get("/oauth/authorize")
def oauth_authorize() -> WerkzeugResponse:
    """A one-time link from `POST /api/v1/oauth/authorize` → the portal's consent page."""
    url = portal_services().reauthorization.authorize_url(request.args.get("link", ""))
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/oauth/callback")
def oauth_callback() -> Response:
    record = portal_services().reauthorization.complete(request.args)
    return framed_page("authorized.html", portal_origin(record.client_endpoint), domain=record.domain)
