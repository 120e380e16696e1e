"""`GET /`: what this address is, for a person who opens it in a browser (the app itself lives in a portal)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, make_response, render_template

from ..config import OFFICIAL_OAUTH_HOSTS
from .common import services

bp = Blueprint("home", __name__)
PAGE_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'"


@bp.get("/")
def home() -> Response:
    found = services()
    config = found.config
    sandbox = not config.is_production and urlsplit(config.oauth_url).netloc not in OFFICIAL_OAUTH_HOSTS
    placement = found.manifest.placements[0].title.get("en", "") if found.manifest.placements else ""
    response = make_response(render_template("home.html", name=found.manifest.name, tab=placement,
                                             sandbox_url=f"{config.oauth_url}/" if sandbox else ""))
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
