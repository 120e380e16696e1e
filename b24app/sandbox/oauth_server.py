"""The OAuth server (docs/bitrix24-protocol.md §2, §6.2): `/oauth/token/` and `/rest/app.info`.

Token endpoint: grant_type `authorization_code` or `refresh_token`, parameters in the query string
(GET, as documented) or a form body (POST, as CRest and b24jssdk send them). Errors per §2.4:
`invalid_request` (missing parameter), `invalid_client` (wrong secret), `invalid_grant` (bad, used,
expired or revoked code/refresh token), all HTTP 400; an unknown client_id gets `wrong_client` with HTTP 200.
`/rest/app.info?auth=TOKEN` answers the trusted, OAuth-server shape of app.info.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import errors as err
from .control import create_control_blueprint
from .envelope import JSON_TYPE, iso, json_response, time_block
from .errors import RestError
from .home import create_home_blueprint
from .server import DROP_KEY

if TYPE_CHECKING:
    from .sandbox import Sandbox
    from .tokens import AuthCode, RefreshToken

log = logging.getLogger("b24app.sandbox.oauth")
GRANTS = ("authorization_code", "refresh_token")


@dataclass
class OAuthAnswer:
    status: int
    body: dict[str, Any]
    hold: float | None = None
    delay: float = 0.0


def _oauth_error(code: str, description: str, status: int = 400) -> OAuthAnswer:
    return OAuthAnswer(status, {"error": code, "error_description": description})


def _fault_answer(fault: Any) -> OAuthAnswer | None:
    if fault is None or fault.mode in ("apply_then_500", "delay"):
        return None
    if fault.mode == "timeout":
        return OAuthAnswer(500, {}, hold=fault.seconds)
    if fault.mode == "500":
        return OAuthAnswer(500, err.internal_error().body())
    return OAuthAnswer(fault.status, {"error": fault.error, "error_description": fault.description})


def token_endpoint(sb: Sandbox, params: dict[str, str]) -> OAuthAnswer:
    """Exchange a code or refresh token for a new token pair."""
    grant = params.get("grant_type", "")
    with sb.lock:
        answer = _token_locked(sb, grant, params)
        value = params.get("code" if grant == "authorization_code" else "refresh_token", "")
        record = sb.tokens.codes.get(value) if grant == "authorization_code" else sb.tokens.refresh.get(value)
    ok = answer.status == 200 and "error" not in answer.body
    sb.counters.token_request(grant, ok, answer.status, record.member_id if record else None)
    return answer


def _token_locked(sb: Sandbox, grant: str, params: dict[str, str]) -> OAuthAnswer:
    now = sb.clock.now()
    if not grant:
        return _oauth_error("invalid_request", "The grant type was not specified in the request")
    if grant not in GRANTS:
        return _oauth_error("unsupported_grant_type", f'Grant type "{grant}" not supported')
    client_id = params.get("client_id", "")
    if not client_id:
        return _oauth_error("invalid_request", 'No "client_id" parameter found')
    app = sb.apps.get(client_id)
    if app is None:  # the official SDK's live test: HTTP 200 with an error body (docs/bitrix24-protocol.md §2.4)
        return _oauth_error("wrong_client", "Wrong client", 200)
    if params.get("client_secret", "") != app.client_secret:
        return _oauth_error("invalid_client", "The client credentials are invalid")
    secret_name = "code" if grant == "authorization_code" else "refresh_token"
    value = params.get(secret_name, "")
    record = (sb.tokens.codes.get(value) if grant == "authorization_code" else sb.tokens.refresh.get(value))
    fault = sb.faults.take(record.member_id if record else None, "oauth.token", f"oauth.token.{grant}")
    faulted = _fault_answer(fault)
    if faulted is not None:
        return faulted
    if not value:
        return _oauth_error("invalid_request", f'No "{secret_name}" parameter found')
    if grant == "authorization_code":
        redeemed: AuthCode | RefreshToken | None = sb.tokens.redeem_code(value, client_id, now)
        if redeemed is None:
            return _oauth_error("invalid_grant", "Authorization code doesn't exist or is invalid for the client")
    else:
        redeemed = sb.tokens.redeem_refresh(value, client_id, now, revoke_access=_revokes_access(sb, record))
        if redeemed is None:
            return _oauth_error("invalid_grant", "Invalid refresh token")
    portal = sb.portals.get(redeemed.member_id)
    if portal is None or client_id not in portal.installations:
        return _oauth_error("invalid_grant", "Application is not installed on this portal")
    access, refresh = sb.tokens.issue(client_id, portal.member_id, redeemed.user_id, now)
    if fault is not None and fault.mode == "delay":  # the chain moved on now; the answer comes late
        return OAuthAnswer(200, sb.token_payload(portal, app, access, refresh), delay=fault.seconds)
    if fault is not None:  # apply_then_500: the chain moved on, the client never learns the new pair
        return OAuthAnswer(500, err.internal_error().body())
    return OAuthAnswer(200, sb.token_payload(portal, app, access, refresh))


def _revokes_access(sb: Sandbox, record: AuthCode | RefreshToken | None) -> bool:
    """The refreshed chain's portal decides whether its old access token dies now (§2.3)."""
    portal = sb.portals.get(record.member_id) if record is not None else None
    return portal.settings.refresh_revokes_access if portal is not None else True


def app_info_endpoint(sb: Sandbox, token: str | None) -> OAuthAnswer:
    """The OAuth server's app.info: who issued the token, for which app, portal and user."""
    with sb.lock:
        answer = _app_info_locked(sb, token)
        record = sb.tokens.access.get(token or "")
    sb.counters.app_info(answer.status, record.member_id if record else None)
    return answer


def _app_info_locked(sb: Sandbox, token: str | None) -> OAuthAnswer:
    now = sb.clock.now()
    record = sb.tokens.access.get(token or "")
    fault = sb.faults.take(record.member_id if record else None, "oauth.app.info")
    faulted = _fault_answer(fault)
    if faulted is not None:
        return faulted
    answer = _app_info_answer(sb, token, now)
    if fault is not None and fault.mode == "delay":
        answer.delay = fault.seconds
    return answer


def _app_info_answer(sb: Sandbox, token: str | None, now: float) -> OAuthAnswer:
    record = sb.tokens.access.get(token or "")
    try:
        if not token:
            raise err.no_auth_found()
        if record is None or record.revoked:
            raise err.invalid_token()
        if record.expires_at <= now:
            raise err.expired_token()
        portal = sb.portals.get(record.member_id)
        inst = portal.installations.get(record.client_id) if portal else None
        app = sb.apps.get(record.client_id)
        if portal is None or inst is None or app is None:
            raise err.invalid_token()
    except RestError as exc:
        return OAuthAnswer(exc.status, exc.body())
    result = {"client_id": app.client_id, "scope": app.scope, "expires": iso(record.expires_at),
              "user_id": record.user_id,
              "install": {"installed": inst.installed, "version": inst.version, "status": inst.status,
                          "scope": inst.scope, "domain": portal.domain, "uri": portal.base_url,
                          "client_endpoint": portal.client_endpoint, "member_id": portal.member_id,
                          "member_type": "company"}}
    return OAuthAnswer(200, {"result": result, "time": time_block(now, now, 0.0)})


def _request_params() -> dict[str, str]:
    params = {k: v for k, v in request.args.items()}
    params.update({k: v for k, v in request.form.items()})
    return params


def _respond(answer: OAuthAnswer, sb: Sandbox) -> Response:
    if answer.delay:
        sb.stopping.wait(answer.delay)
    if answer.hold is not None:
        sb.stopping.wait(answer.hold)
        request.environ[DROP_KEY] = True
        return Response(b"", status=500)
    return json_response(answer.body, answer.status)


def create_oauth_app(sb: Sandbox) -> Flask:
    """WSGI app of the OAuth server port (also hosts the control API and the sandbox home page)."""
    app = Flask(__name__, template_folder="templates", static_folder=None)
    app.register_blueprint(create_control_blueprint(sb), url_prefix="/_sandbox")
    app.register_blueprint(create_home_blueprint(sb))

    @app.route("/oauth/token/", methods=["GET", "POST"], strict_slashes=False)
    def token() -> Response:
        return _respond(token_endpoint(sb, _request_params()), sb)

    @app.route("/rest/<path:method>", methods=["GET", "POST"])
    def rest(method: str) -> Response:
        name = method.lower().rstrip("/").removesuffix(".json")  # b24pysdk calls `/rest/app.info/`
        if name != "app.info":
            return json_response(err.method_not_found().body(), 404)
        params = _request_params()
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                body = {}
            if isinstance(body, dict):
                params.update({k: v for k, v in body.items() if isinstance(v, str)})
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        return _respond(app_info_endpoint(sb, token or params.get("auth") or params.get("access_token")), sb)

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Response:
        return Response(json.dumps({"error": "NOT_FOUND", "error_description": "Not found"}), 404,
                        content_type=JSON_TYPE)

    @app.errorhandler(405)
    def not_allowed(_exc: Exception) -> Response:
        return Response(json.dumps({"error": "METHOD_NOT_ALLOWED", "error_description": "Method not allowed"}),
                        405, content_type=JSON_TYPE)

    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return json_response({"error": exc.name.upper().replace(" ", "_"), "error_description": exc.name},
                                 exc.code or 500)
        log.exception("sandbox OAuth server error")
        return json_response(err.internal_error().body(), 500)

    return app
