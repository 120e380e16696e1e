"""The UI-facing JSON API under /api/v1 (DESIGN.md §4).

Every call but /session carries `Authorization: Bearer <session token>` — also the CSRF defence, as
the iframe needs no cookie. Reads are open to any user of the portal; writes need an admin session.
POSTs honour `Idempotency-Key`: a retry returns the first result without calling the portal again.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request

from .. import openapi
from ..badge_rules import BadgeValidationError, validate_code
from ..badges import Badges, portal_validation_error, validation_error
from ..errors import AppError
from ..idempotency import Conflict as KeyConflict
from ..idempotency import IdempotencyStore, InProgress, Replay, Started, request_fingerprint, validate_key
from ..installations import FrameRequest, Unverified
from ..rest import PortalClient
from ..rest_errors import B24Error, InvalidArgument, OwnerCannotAct
from ..sessions import InvalidSession, Session
from ..tokens import PortalUnavailable, RefreshBusy
from .common import installations, services, unverified_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)


@bp.errorhandler(B24Error)
def _portal_error(exc: B24Error) -> tuple[Response, int, dict[str, str]]:
    if isinstance(exc, InvalidArgument):
        refused = portal_validation_error(exc)
        return jsonify(refused.body()), refused.status, {}
    if isinstance(exc, OwnerCannotAct):
        return jsonify(error="NEEDS_REAUTH", error_description=exc.message), 409, {}
    headers = {"Retry-After": str(int(float(exc.extra.get("retry_after", 5)) + 0.999))} \
        if exc.api_status == 503 else {}
    return jsonify(error=exc.code, error_description=exc.message), exc.api_status, headers


@bp.errorhandler(PortalUnavailable)
def _portal_unavailable(exc: PortalUnavailable) -> tuple[Response, int]:
    if exc.state == "needs-reauth":
        return jsonify(error="NEEDS_REAUTH", error_description=str(exc)), 409
    return jsonify(error="APP_UNINSTALLED" if exc.state == "uninstalled" else "PORTAL_UNKNOWN",
                   error_description=str(exc)), 410


@bp.errorhandler(RefreshBusy)
def _refresh_busy(_exc: RefreshBusy) -> tuple[Response, int, dict[str, str]]:
    body = jsonify(error="TOKEN_REFRESH_BUSY", error_description="The portal's authorization is being renewed; retry.")
    return body, 503, {"Retry-After": "2"}


@bp.errorhandler(redis.RedisError)
def _redis_down(_exc: redis.RedisError) -> tuple[Response, int, dict[str, str]]:
    log.error("redis unavailable during an API call")
    return jsonify(error="SERVICE_UNAVAILABLE",
                   error_description="The app's storage is unavailable; try again shortly."), 503, {"Retry-After": "5"}


def session_required(*, admin: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AppError("Send the session token as `Authorization: Bearer <token>`.", code="UNAUTHORIZED",
                               status=401, headers={"WWW-Authenticate": 'Bearer realm="activity-badges"'})
            try:
                session = installations().sessions.verify(token.strip())
            except InvalidSession as exc:
                raise AppError(f"The session is not valid ({exc}); renew it.", code="INVALID_SESSION", status=401,
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
            if admin and not session.is_admin:
                raise AppError("Only a portal administrator can change badges.", code="ACCESS_DENIED", status=403)
            return view(session, *args, **kwargs)
        return wrapper
    return decorate


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Honour `Idempotency-Key`: replay the stored first result of the same request, per portal."""
    @functools.wraps(view)
    def wrapper(session: Session, *args: Any, **kwargs: Any) -> Any:
        raw_key = request.headers.get("Idempotency-Key")
        if raw_key is None:
            return view(session, *args, **kwargs)
        try:
            key = validate_key(raw_key)
        except ValueError:
            raise AppError("Idempotency-Key must be 1–255 printable ASCII characters.", code="BAD_REQUEST",
                           status=400, fields={"Idempotency-Key": "1–255 printable ASCII characters."}) from None
        store = _idempotency()
        fingerprint = request_fingerprint(request.method, request.path, request.get_data(), user_id=session.user_id)
        outcome = store.begin(session.member_id, key, fingerprint)
        if isinstance(outcome, Replay):
            response = jsonify(outcome.body) if outcome.body is not None else Response(status=outcome.status)
            response.status_code = outcome.status
            response.headers["Idempotent-Replayed"] = "true"
            return response
        if isinstance(outcome, KeyConflict):
            raise AppError("This Idempotency-Key was used for a different request.", code="IDEMPOTENCY_KEY_REUSED",
                           status=422)
        if isinstance(outcome, InProgress):
            raise AppError("A request with this Idempotency-Key is still running.", code="REQUEST_IN_PROGRESS",
                           status=409, headers={"Retry-After": str(outcome.retry_after)})
        assert isinstance(outcome, Started)
        try:
            response = view(session, *args, **kwargs)
        except AppError as exc:
            if exc.status >= 500:  # transient: let the retry run again
                store.abandon(session.member_id, key, token=outcome.token)
            else:
                store.complete(session.member_id, key, exc.status, exc.body(), token=outcome.token)
            raise
        except BaseException:
            store.abandon(session.member_id, key, token=outcome.token)
            raise
        response, status = response if isinstance(response, tuple) else (response, response.status_code)
        store.complete(session.member_id, key, status, response.get_json(silent=True), token=outcome.token)
        return response, status
    return wrapper


def _idempotency() -> IdempotencyStore:
    return services().idempotency


def _badges() -> Badges:
    return services().badges


def _portal(session: Session) -> PortalClient:
    return installations().portal(session.member_id)


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise AppError("Send a JSON object with Content-Type: application/json.", code="BAD_REQUEST", status=400)
    return data


def _code(raw: str) -> str:
    """A code from a URL or a body is the full stored code (other apps' badges have no prefix of ours)."""
    try:
        return validate_code(raw)
    except BadgeValidationError as exc:
        raise validation_error(exc) from None


def _deal_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise AppError("The deal id must be a positive integer.", code="VALIDATION_ERROR", status=400,
                       fields={"deal_id": "A positive integer."})
    return int(raw)


@bp.post("/session")
def session() -> Response:
    """Trade fresh frame auth (from b24jssdk `auth.refreshAuth()`) for a UI session token."""
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise AppError("Send AUTH_ID, member_id and DOMAIN as JSON or a form.", code="BAD_REQUEST", status=400)
    service = installations()
    try:
        frame = FrameRequest.parse({k: str(v) for k, v in data.items() if isinstance(v, (str, int))}, {})
        verified, _record = service.open_app(frame)
    except Unverified as exc:
        raise unverified_error(exc) from None
    token, ttl = service.session_for(verified)
    return jsonify(token=token, expires_in=ttl, member_id=verified.info.member_id, user_id=verified.user_id,
                   is_admin=verified.is_admin)


@bp.get("/badges")
@session_required()
def list_badges(session: Session) -> Response:
    listing, cached = _badges().listing(session.member_id, lambda: _portal(session))
    response = Response(b'{"badges":' + listing + b"}", mimetype="application/json")
    response.headers["X-Cache"] = "hit" if cached else "miss"
    return response


@bp.get("/badges/<raw_code>")
@session_required()
def get_badge(session: Session, raw_code: str) -> Response:
    return jsonify(badge=_badges().get(_portal(session), _code(raw_code)))


@bp.post("/badges")
@session_required(admin=True)
@idempotent
def create_badge(session: Session) -> tuple[Response, int]:
    badges = _badges()
    badge = badges.validate(_json_body())
    return jsonify(badge=badges.create(_portal(session), badge)), 201


@bp.post("/badges/import")
@session_required(admin=True)
@idempotent
def import_badges(session: Session) -> tuple[Response, int]:
    items = _json_body().get("badges")
    return jsonify(results=_badges().import_many(_portal(session), items)), 200


@bp.delete("/badges/<raw_code>")
@session_required(admin=True)
def delete_badge(session: Session, raw_code: str) -> tuple[str, int]:
    _badges().delete(_portal(session), _code(raw_code))
    return "", 204


@bp.post("/deals/<raw_deal_id>/badge")
@session_required(admin=True)
@idempotent
def show_deal_badge(session: Session, raw_deal_id: str) -> tuple[Response, int]:
    deal_id = _deal_id(raw_deal_id)
    body = _json_body()
    code = body.get("code")
    if not isinstance(code, str):
        raise AppError("Give the code of the badge to show.", code="VALIDATION_ERROR", status=400,
                       fields={"code": "Required."})
    shown = _badges().show_on_deal(_portal(session), deal_id, _code(code), user_id=session.user_id,
                                   lang=str(body.get("lang", "en"))[:5])
    return jsonify(deal_id=shown.deal_id, code=shown.code, activity_id=shown.activity_id), 201 if shown.created else 200


@bp.get("/deals/<raw_deal_id>/badge")
@session_required()
def get_deal_badge(session: Session, raw_deal_id: str) -> Response:
    shown = _badges().shown_on_deal(session.member_id, _deal_id(raw_deal_id))
    if shown is None:
        raise AppError("This app shows no badge on that deal.", code="NOT_FOUND", status=404)
    return jsonify(deal_id=shown.deal_id, code=shown.code, activity_id=shown.activity_id)


@bp.delete("/deals/<raw_deal_id>/badge")
@session_required(admin=True)
def clear_deal_badge(session: Session, raw_deal_id: str) -> tuple[str, int]:
    _badges().clear_on_deal(_portal(session), _deal_id(raw_deal_id))
    return "", 204


@bp.get("/openapi.json")
def openapi_description() -> Response:
    """The OpenAPI 3.1 description of this API (b24app/openapi.py); public, like the API's shape."""
    return jsonify(openapi.document())
