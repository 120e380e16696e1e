"""HTTP layer: thin blueprints over the services."""
from __future__ import annotations

from flask import Flask

from . import api, events, frame, health, install, metrics


def register_blueprints(app: Flask) -> None:
    for module in (health, install, events, frame, api, metrics):
        app.register_blueprint(module.bp)
