"""The pages the portal frames: the app page and every placement (POST /app), and the OAuth flow."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request

from ..installations import FrameRequest, Unverified, portal_origin_of
from ..store import ACTIVE
from .common import framed_page, installations, services, unverified_error

bp = Blueprint("frame", __name__)


@bp.post("/app")
def app_page() -> Response:
    service = installations()
    try:
        verified, record = service.open_app(FrameRequest.parse(request.form, request.args))
    except Unverified as exc:
        raise unverified_error(exc) from None
    frame = verified.frame
    token, ttl = service.session_for(verified)
    state = "unavailable" if record is None else record.state
    context = {
        "session_token": token, "session_ttl": ttl, "lang": frame.lang, "placement": frame.placement,
        "placement_options": frame.placement_options, "is_admin": verified.is_admin, "state": state,
        "domain": verified.info.domain, "last_error": record.last_error if record else "",
        "reauthorize_url": "/oauth/authorize?" + urlencode({"domain": verified.info.domain}),
        "badge_prefix": services().badges.prefix,
    }
    status = 200 if state == ACTIVE else 409
    return framed_page("app.html", verified.portal_origin, status, **context)


@bp.get("/app")
def app_get() -> Response:
    raise unverified_error(Unverified("open this app from your Bitrix24 portal", 400))


@bp.get("/oauth/authorize")
def oauth_authorize() -> Response:
    try:
        url = installations().authorize_url(request.args.get("domain", ""))
    except Unverified as exc:
        raise unverified_error(exc) from None
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/oauth/callback")
def oauth_callback() -> Response:
    try:
        record = installations().complete_authorization(request.args)
    except Unverified as exc:
        raise unverified_error(exc) from None
    return framed_page("authorized.html", portal_origin_of(record.client_endpoint), domain=record.domain)
