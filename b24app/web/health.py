"""Operations probes: liveness never touches Redis; readiness checks Redis and configuration."""
from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    ctx = current_app.extensions["b24"]
    missing = ctx.config.missing()
    if missing:
        return jsonify(error="CONFIG_INCOMPLETE",
                       error_description=f"configuration incomplete: {', '.join(missing)} not set"), 503
    try:
        ctx.redis.ping()
    except (redis.RedisError, OSError) as exc:
        return jsonify(error="REDIS_UNAVAILABLE",
                       error_description=f"Redis does not answer: {type(exc).__name__}"), 503
    return jsonify(status="ready")
