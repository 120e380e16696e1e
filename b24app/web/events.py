"""POST /events: ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL from the portal's event queue.

Events have no retries (§1.6), so the handler verifies, stores and answers at once; re-binding after
an update runs in the background.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .common import installations

bp = Blueprint("events", __name__)


@bp.post("/events")
def events() -> tuple[Response, int]:
    outcome = installations().handle_event(request.form)
    body = {"status": "ok"} if outcome.status == 200 else {"error": "EVENT_REJECTED",
                                                           "error_description": outcome.message}
    return jsonify(body), outcome.status
