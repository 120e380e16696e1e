"""The HTTP edge: blueprints over the services, and the one place that maps exceptions to responses."""
from __future__ import annotations

from flask import Flask

from . import api, edge, errors, events, frame, health, home, install, metrics, robots


def init_app(app: Flask) -> None:
    edge.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    for module in (home, health, install, events, robots, frame, api, metrics):
        app.register_blueprint(module.bp)
