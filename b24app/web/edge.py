"""What the HTTP edge refuses before any service sees it: oversized or deeply nested bodies, and any
file under /static that is not one of the app's assets (docs/DESIGN.md §10)."""
from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from flask import Flask, Response, send_from_directory
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import NotFound

from ..config import REPO_ROOT

MAX_BODY_BYTES = 1024 * 1024
MAX_FORM_PARTS = 500
MAX_JSON_DEPTH = 32
STATIC_DIR = REPO_ROOT / "static"
# What the pages load: the UI's modules and styles, and the vendored b24jssdk bundle. Not package
# manifests, not node_modules, nothing else that happens to lie in the directory.
STATIC_ALLOWED = re.compile(r"(?:js|css)/[A-Za-z0-9_-]+\.(?:js|css)|vendor/b24jssdk\.min\.js")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (strings do not count)."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    return max(accumulate(1 if ch in "[{" else -1 for ch in brackets), default=0)


class BoundedJSONProvider(DefaultJSONProvider):
    """Refuses JSON nested deeper than MAX_JSON_DEPTH before parsing it (a parser recursing through a
    few hundred thousand `[` would fail with RecursionError, not a clean 400)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        if (text.count("[") + text.count("{") > MAX_JSON_DEPTH) and json_depth(text) > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)


def init_app(app: Flask) -> None:
    app.json = BoundedJSONProvider(app)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, MAX_FORM_PARTS=MAX_FORM_PARTS)

    def static(filename: str) -> Response:
        if not STATIC_ALLOWED.fullmatch(filename):
            raise NotFound()
        return send_from_directory(STATIC_DIR, filename, max_age=app.get_send_file_max_age(filename))

    app.add_url_rule("/static/<path:filename>", endpoint="static", view_func=static)
