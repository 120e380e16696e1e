"""POST /install: the installer page (iframe POST) and the REST-only `event=ONAPPINSTALL` form."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from ..installations import FrameRequest, Unverified, portal_origin_of
from ..rest_errors import B24Error
from ..tokens import PortalUnavailable
from .common import framed_page, installations, unverified_error

bp = Blueprint("install", __name__)
log = logging.getLogger(__name__)


@bp.post("/install")
def install() -> Response | tuple[Response, int]:
    service = installations()
    if request.form.get("event", "").upper() == "ONAPPINSTALL" and "auth[member_id]" in request.form:
        outcome = service.handle_event(request.form)
        return jsonify(status="ok" if outcome.status == 200 else "rejected", message=outcome.message), outcome.status
    try:
        frame = FrameRequest.parse(request.form, request.args)
        record = service.install(frame)
    except Unverified as exc:
        raise unverified_error(exc) from None
    origin = portal_origin_of(record.client_endpoint)
    context = {"manifest": service.manifest, "lang": frame.lang, "domain": record.domain}
    try:
        report = service.bind(record.member_id)
    except (B24Error, PortalUnavailable) as exc:
        log.warning("install binding failed", extra={"member_id": record.member_id, "error": str(exc)[:200]})
        message = exc.message if isinstance(exc, B24Error) else str(exc)
        return framed_page("install.html", origin, 502, error=message, **context)
    return framed_page("install.html", origin, report=report, **context)


@bp.get("/install")
def install_get() -> Response:
    raise unverified_error(Unverified("open this app from your Bitrix24 portal to install it", 400))
