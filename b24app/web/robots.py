"""POST /robots/badge: a run of the "Set activity badge" robot from the portal's queue (badges/robots.py).

Verified like an event — the stored application_token, compared in constant time — before anything is
read from the body; then answered at once, the work queued (docs/bitrix24-protocol.md §11.3).
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..badges.robots import RobotRun
from ..errors import Forbidden, InvalidInput
from ..portals.frames import unflatten
from ..portals.lifecycle import application_token_matches
from .common import portal_services, services

bp = Blueprint("robots", __name__)


@bp.post("/robots/badge")
def robot_badge() -> tuple[Response, int]:
    payload = unflatten(request.form)
    auth = payload.get("auth")
    auth = auth if isinstance(auth, dict) else {}
    member_id, given = str(auth.get("member_id", "")), str(auth.get("application_token", ""))
    found = services()
    clients = portal_services().clients
    if not application_token_matches(found.store, member_id, given):
        raise Forbidden("This robot run does not carry the application_token of an installed portal.")
    run = RobotRun.parse(payload)
    codes = [robot.code for robot in found.manifest.robots]
    if run.robot not in codes:
        raise InvalidInput(f"This handler runs the robot {', '.join(codes)}, not {run.robot!r}.",
                           fields={"code": f"One of: {', '.join(codes)}."})
    accepted = found.robot_runs.accept(run, lambda: clients.for_user(run.member_id, run.access_token))
    return jsonify(status="accepted" if accepted else "duplicate"), 200
