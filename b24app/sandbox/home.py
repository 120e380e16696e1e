"""The sandbox home page (GET / on the OAuth server port): apps and portals with links, for developers."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, render_template

from .page import STATIC_DIR

if TYPE_CHECKING:
    from .sandbox import Sandbox


def create_home_blueprint(sb: Sandbox) -> Blueprint:
    bp = Blueprint("sandbox_home", __name__)

    @bp.get("/")
    def home() -> Response:
        html = render_template("sandbox_home.html", sb=sb, apps=list(sb.apps.values()),
                               portals=list(sb.portals.values()))
        resp = Response(html, 200, content_type="text/html; charset=utf-8")
        resp.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self'"
        return resp

    @bp.get("/_portal/static/portal.css")
    def css() -> Response:
        return Response((STATIC_DIR / "portal.css").read_text(), 200, content_type="text/css; charset=utf-8")

    return bp
