"""`GET /metrics` (Prometheus text, summed over every gunicorn worker) and the hooks that count requests.

The metrics themselves are defined in observability/metrics.py, which knows nothing of Flask.
"""
from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, request

from ..observability import metrics

bp = Blueprint("metrics", __name__)
_START_KEY = "b24.metrics.start"


@bp.get("/metrics")
def exposition() -> Response:
    response = Response(metrics.render(), status=200)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Count and time every request by its URL rule (never the raw path) and status."""

    @app.before_request
    def _start_timer() -> None:
        request.environ[_START_KEY] = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = request.environ.pop(_START_KEY, None)
        rule = request.url_rule
        metrics.http_request(rule.rule if rule is not None else metrics.UNMATCHED_ROUTE, request.method,
                             response.status_code, None if started is None else time.perf_counter() - started)
        return response
