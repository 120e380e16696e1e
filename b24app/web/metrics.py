"""`GET /metrics`: Prometheus text, summed over every gunicorn worker (see b24app/metrics.py)."""
from __future__ import annotations

from flask import Blueprint, Response

from .. import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def exposition() -> Response:
    response = Response(metrics.render(), status=200)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response
