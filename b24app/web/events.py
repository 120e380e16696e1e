"""POST /events: ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL from the portal's event queue (portals/events.py)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import Unverified
from .common import portal_services
from .errors import status_of

bp = Blueprint("events", __name__)


@bp.post("/events")
def events() -> tuple[Response, int]:
    try:
        portal_services().events.handle(request.form)
    except Unverified as exc:
        return jsonify(error="EVENT_REJECTED", error_description=exc.description), status_of(exc)
    return jsonify(status="ok"), 200
