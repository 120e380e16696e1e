"""Operations probes: liveness never touches Redis; readiness checks Redis and configuration."""
from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisClusterException

from ..storage.connection import ping
from .common import services

bp = Blueprint("health", __name__)


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
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        return jsonify(error="REDIS_UNAVAILABLE",
                       error_description=f"Redis does not answer: {type(exc).__name__}"), 503
    return jsonify(status="ready")
