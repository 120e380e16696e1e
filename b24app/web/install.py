"""POST /install: the installer page (iframe POST) and the REST-only `event=ONAPPINSTALL` form."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from ..bitrix.errors import B24Error
from ..errors import IncompleteFrame, PortalUnavailable, Unverified
from ..portals.frames import FrameRequest, portal_origin
from .common import framed_page, portal_services, services
from .errors import status_of

bp = Blueprint("install", __name__)
log = logging.getLogger(__name__)


@bp.post("/install")
def install() -> Response | tuple[Response, int]:
    found = portal_services()
    if request.form.get("event", "").upper() == "ONAPPINSTALL" and "auth[member_id]" in request.form:
        try:
            found.events.handle(request.form)
        except Unverified as exc:
            return jsonify(status="rejected", message=exc.description), status_of(exc)
        return jsonify(status="ok", message="ok"), 200
    frame = FrameRequest.parse(request.form, request.args)
    record = found.portals.install(frame)
    origin = portal_origin(record.client_endpoint)
    context: dict[str, object] = {"manifest": services().manifest, "lang": frame.lang, "domain": record.domain}
    try:
        report = found.binder.bind(record.member_id)
    except (B24Error, PortalUnavailable) as exc:
        log.warning("install binding failed", extra={"member_id": record.member_id, "error": str(exc)[:200]})
        message = exc.message if isinstance(exc, B24Error) else exc.description
        return framed_page("install.html", origin, 502, error=message, **context)
    return framed_page("install.html", origin, report=report, **context)


@bp.get("/install")
def install_get() -> Response:
    raise IncompleteFrame("open this app from your Bitrix24 portal to install it")
