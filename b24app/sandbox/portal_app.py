"""The WSGI app every portal port runs: `/rest/...`, `/oauth/authorize/`, and the portal page.

The portal is chosen by the local address (host and port) the request arrived on. An address left
behind by a rename answers 302 to the same path and query on the portal's new address (docs/bitrix24-protocol.md §3.1).
"""
from __future__ import annotations

import json
import logging
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Flask, Response, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from . import errors as err
from .envelope import JSON_TYPE, PREFLIGHT_HEADERS, json_response
from .errors import SandboxError
from .page import create_page_blueprint, current_user_id
from .phpquery import parse_pairs, parse_query
from .rest import Dispatcher
from .server import DROP_KEY

if TYPE_CHECKING:
    from .models import Portal
    from .sandbox import Sandbox

log = logging.getLogger("b24app.sandbox.portal")


def request_params() -> dict[str, Any]:
    """Merge query and body the way CRestUtil::getRequestData does: PHP brackets, JSON if no form."""
    params = parse_query(request.query_string.decode("latin-1"))
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update(parse_pairs(request.form.items(multi=True)))
        return params
    raw = request.get_data(cache=True)
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update(body)
    return params


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def create_portal_app(sb: Sandbox) -> Flask:
    app = Flask(__name__, template_folder="templates", static_folder=None)
    dispatcher = Dispatcher(sb)

    def routed() -> tuple[str, Portal | None]:
        """The portal is chosen by the local address the request arrived on."""
        environ = request.environ
        return sb.route(str(environ.get("SERVER_NAME", "")), int(environ.get("SERVER_PORT", 0)))

    def this_portal() -> Portal:
        kind, portal = routed()
        if portal is None or kind != "portal":
            raise SandboxError("no portal on this address")
        return portal

    @app.before_request
    def follow_rename() -> Response | None:
        kind, portal = routed()
        if portal is None:
            return json_response({"error": "PORTAL_DELETED", "error_description": "Portal was deleted"}, 404)
        if kind == "moved":
            target = portal.base_url + request.environ.get("RAW_URI", request.path)
            return Response("", 302, {"Location": target, "Access-Control-Allow-Origin": "*"})
        return None

    @app.route("/rest/", defaults={"rest_path": ""}, methods=["GET", "POST", "OPTIONS"])
    @app.route("/rest/<path:rest_path>", methods=["GET", "POST", "OPTIONS"])
    def rest(rest_path: str) -> Response:
        if request.method == "OPTIONS":
            return Response("", 200, PREFLIGHT_HEADERS)
        portal = this_portal()
        parts = [p for p in rest_path.split("/") if p != ""]
        webhook: tuple[str, str] | None = None
        if len(parts) == 3:
            webhook, parts = (parts[0], parts[1]), parts[2:]
        method = parts[0].lower().removesuffix(".json") if len(parts) == 1 else ""
        params = request_params()
        token = _bearer()
        for key in ("auth", "access_token"):
            value = params.pop(key, None)
            if token is None and isinstance(value, str) and value:
                token = value
        answer = dispatcher.handle(portal, method, params, token, webhook)
        if answer.delay:
            sb.stopping.wait(answer.delay)
        if answer.hold is not None:
            sb.stopping.wait(answer.hold)
            request.environ[DROP_KEY] = True
            return Response(b"", 500)
        return Response(answer.body, answer.status, answer.headers, content_type=JSON_TYPE)

    @app.get("/oauth/authorize/", strict_slashes=False)
    def authorize() -> WerkzeugResponse:
        """Authorization-code flow (docs/bitrix24-protocol.md §2.2): 302 to the app's registered redirect URI."""
        portal = this_portal()
        client_id = request.args.get("client_id", "")
        user_id = current_user_id(portal)
        with sb.lock:
            app_card = sb.apps.get(client_id)
            inst = portal.installations.get(client_id)
            user = portal.users.get(user_id)
            if app_card is None or inst is None or not inst.installed:
                return _error_page("The application was not found or is not installed on this portal.", 400)
            if user is None or not user.active:
                return _error_page("Unable to authorize user.", 403)
            code = sb.tokens.issue_code(client_id, portal.member_id, user.id, sb.clock.now())
        query = {"code": code.code, "state": request.args.get("state", ""), "domain": portal.domain,
                 "member_id": portal.member_id, "scope": app_card.scope, "server_domain": sb.oauth_host}
        return redirect(f"{app_card.redirect_uri}?{urlencode(query)}", 302)

    app.register_blueprint(create_page_blueprint(sb, this_portal))

    @app.errorhandler(SandboxError)
    def misuse(exc: SandboxError) -> Response:
        return _error_page(str(exc), 400)

    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            if request.path.startswith("/rest/"):
                return json_response(err.method_not_found().body(), 404)
            return _error_page(exc.name, exc.code or 500)
        log.exception("sandbox portal error")
        if request.path.startswith("/rest/"):
            return json_response(err.internal_error().body(), 500)
        return _error_page("Internal server error", 500)

    return app


def _error_page(message: str, status: int) -> Response:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>Bitrix24 sandbox</title></head>"
            f"<body><h1>Bitrix24 sandbox</h1><p class='error'>{escape(message)}</p></body></html>")
    return Response(body, status, content_type="text/html; charset=utf-8")
