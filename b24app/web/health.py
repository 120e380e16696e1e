"""Operations probes: liveness never touches Redis; readiness checks Redis and configuration."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..storage.connection import OUTAGES, ping
from .common import services

bp = Blueprint("health", __name__)
_NO_ANSWER: tuple[type[Exception], ...] = (*OUTAGES, OSError)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    found = services()
    missing = found.config.missing()
    if missing:
        return jsonify(error="CONFIG_INCOMPLETE",
                       error_description=f"configuration incomplete: {', '.join(missing)} not set"), 503
    try:
        ping(found.probe)
    except _NO_ANSWER as exc:
        return jsonify(error="REDIS_UNAVAILABLE",
                       error_description=f"Redis does not answer: {type(exc).__name__}"), 503
    return jsonify(status="ready")
