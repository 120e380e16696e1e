"""The UI-facing JSON API under /api/v1 (docs/DESIGN.md §4).

Every call but /session carries `Authorization: Bearer <session token>` — also the CSRF defence, as
the iframe needs no cookie. Reads are open to any user of the portal; writes need an admin session.
POSTs honour `Idempotency-Key`: a retry returns the first result without calling the portal again.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..badges.rules import validate_code
from ..badges.service import BadgeInUse
from ..bitrix.client import PortalClient
from ..errors import AppError, BadRequest, Forbidden, InvalidInput, NoSession, UserTokenExpired
from ..portals.frames import FrameRequest
from ..portals.sessions import Session
from ..storage.idempotency import (
    Conflict,
    InProgress,
    KeyReused,
    Replay,
    RequestInProgress,
    Started,
    request_fingerprint,
    validate_key,
)
from . import openapi
from .common import portal_services, services
from .errors import describe

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def session_required(*, admin: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, token = request.environ.get("HTTP_AUTHORIZATION", "").partition(" ")  # the header
            if scheme.lower() != "bearer" or not token.strip():
                raise NoSession("Send the session token as `Authorization: Bearer <token>`.")
            found = portal_services()
            session = found.sessions.verify(token.strip())
            if not admin:
                return view(session, *args, **kwargs)
            if not session.is_admin:
                raise Forbidden("Only a portal administrator can do this.")
            if not found.admins.still_admin(session.member_id, session.user_id):
                raise Forbidden("Only a portal administrator can do this.")
            return view(session, *args, **kwargs)
        return wrapper
    return decorate


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Honour `Idempotency-Key`: replay the stored first result of the same request, per portal."""
    @functools.wraps(view)
    def wrapper(session: Session, *args: Any, **kwargs: Any) -> Any:
        raw_key = request.environ.get("HTTP_IDEMPOTENCY_KEY")  # the Idempotency-Key header
        if raw_key is None:
            return view(session, *args, **kwargs)
        try:
            key = validate_key(raw_key)
        except ValueError:
            raise BadRequest("Idempotency-Key must be 1–255 printable ASCII characters.",
                             fields={"Idempotency-Key": "1–255 printable ASCII characters."}) from None
        store = services().idempotency
        fingerprint = request_fingerprint(request.method, request.path, request.get_data(), user_id=session.user_id)
        outcome = store.begin(session.member_id, key, fingerprint)
        if isinstance(outcome, Replay):
            response = jsonify(outcome.body) if outcome.body is not None else Response(status=outcome.status)
            response.status_code = outcome.status
            response.headers["Idempotent-Replayed"] = "true"
            return response
        if isinstance(outcome, Conflict):
            raise KeyReused("This Idempotency-Key was used for a different request.")
        if isinstance(outcome, InProgress):
            raise RequestInProgress("A request with this Idempotency-Key is still running.", outcome.retry_after)
        assert isinstance(outcome, Started)
        try:
            response = view(session, *args, **kwargs)
        except AppError as exc:
            status, code, description, extra, _headers = describe(exc)
            if status >= 500 or status == 401:  # transient, or the session must be renewed: let the retry run
                store.abandon(session.member_id, key, token=outcome.token)
            else:
                store.complete(session.member_id, key, status,
                               {"error": code, "error_description": description, **extra}, token=outcome.token)
            raise
        except BaseException:
            store.abandon(session.member_id, key, token=outcome.token)
            raise
        response, status = response if isinstance(response, tuple) else (response, response.status_code)
        store.complete(session.member_id, key, status, response.get_json(silent=True), token=outcome.token)
        return response, status
    return wrapper


def _portal(session: Session) -> PortalClient:
    return portal_services().clients.portal(session.member_id)


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("Send a JSON object with Content-Type: application/json.")
    return data


def _code(raw: str) -> str:
    """A code from a URL or a body is the full stored code (other apps' badges have no prefix of ours)."""
    return validate_code(raw)


def _deal_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**31:
        raise InvalidInput("The deal id must be a positive integer.", fields={"deal_id": "A positive integer."})
    return int(raw)


@bp.post("/session")
def session() -> Response:
    """Trade fresh frame auth (from b24jssdk `auth.refreshAuth()`) for a UI session token."""
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise BadRequest("Send AUTH_ID, member_id and DOMAIN as JSON or a form.")
    portals = portal_services().portals
    frame = FrameRequest.parse({k: str(v) for k, v in data.items() if isinstance(v, (str, int))}, {})
    verified, _record = portals.open_app(frame)
    token, ttl = portals.session_for(verified)
    return jsonify(token=token, expires_in=ttl, member_id=verified.info.member_id, user_id=verified.user_id,
                   is_admin=verified.is_admin)


@bp.post("/oauth/authorize")
@session_required(admin=True)
def start_reauthorization(session: Session) -> Response:
    """A one-time link (valid 60 s) that the UI opens top-level to re-authorize the app (docs/DESIGN.md §4)."""
    if request.get_data():
        raise BadRequest("This call takes no body.")
    return jsonify(url=portal_services().reauthorization.link(session.member_id))


@bp.get("/badges")
@session_required()
def list_badges(session: Session) -> Response:
    listing, cached = services().badges.listing(session.member_id, lambda: _portal(session))
    response = Response(b'{"badges":' + listing + b"}", mimetype="application/json")
    response.headers["X-Cache"] = "hit" if cached else "miss"
    return response


@bp.get("/badges/<raw_code>")
@session_required()
def get_badge(session: Session, raw_code: str) -> Response:
    return jsonify(badge=services().badges.get(_portal(session), _code(raw_code)))


@bp.post("/badges")
@session_required(admin=True)
@idempotent
def create_badge(session: Session) -> tuple[Response, int]:
    badges = services().badges
    badge = badges.validate(_json_body())
    created = badges.create(_portal(session), badge)
    _catalogue_changed(session)
    return jsonify(badge=created), 201


@bp.post("/badges/import")
@session_required(admin=True)
@idempotent
def import_badges(session: Session) -> tuple[Response, int]:
    results = services().badges.import_many(_portal(session), _json_body().get("badges"))
    if any(result.get("ok") for result in results):
        _catalogue_changed(session)
    return jsonify(results=results), 200


@bp.put("/badges/<raw_code>")
@session_required(admin=True)
@idempotent
def replace_badge(session: Session, raw_code: str) -> tuple[Response, int]:
    """New texts or type for a badge: delete and add, as Bitrix24 cannot edit one (badges/service.py)."""
    code = _code(raw_code)
    body = _json_body()
    badges = services().badges
    badge = badges.validate({"code": code, **body})
    if badge.code != code:
        raise InvalidInput("A replacement keeps the badge's code; to change it, create a new badge.",
                           fields={"code": f"Must be {code}, the code in the URL."})
    with _naming_deals(session, code):
        replaced = badges.replace(_portal(session), badge)
    _catalogue_changed(session)
    return jsonify(badge=replaced), 200


@bp.delete("/badges/<raw_code>")
@session_required(admin=True)
def delete_badge(session: Session, raw_code: str) -> tuple[str, int]:
    code = _code(raw_code)
    with _naming_deals(session, code):
        services().badges.delete(_portal(session), code)
    _catalogue_changed(session)
    return "", 204


def _catalogue_changed(session: Session) -> None:
    """The robot's badge select is a snapshot of the catalogue: register it again (portals/binding.py)."""
    portal_services().binder.robots_later(session.member_id)


@contextlib.contextmanager
def _naming_deals(session: Session, code: str) -> Iterator[None]:
    """A badge deals still show cannot go: the answer names the deals this app put it on."""
    try:
        yield
    except BadgeInUse as exc:
        raise BadgeInUse(exc.description, deals=services().deals.showing(session.member_id, code)) from exc


def _as_user(session: Session) -> PortalClient:
    """The portal called with the session user's own token, so that Bitrix24's permissions decide
    (docs/DESIGN.md §4: setting a deal's badge is anyone's who may edit the deal)."""
    found = portal_services()
    found.clients.shed_at_once(session.member_id)
    token = found.users.token(session.member_id, session.user_id)
    if token is None:
        raise UserTokenExpired("Your authorization in Bitrix24 is no longer at hand; the page renews it.")
    return found.clients.for_user(session.member_id, token)


@bp.post("/deals/<raw_deal_id>/badge")
@session_required()
@idempotent
def show_deal_badge(session: Session, raw_deal_id: str) -> tuple[Response, int]:
    deal_id = _deal_id(raw_deal_id)
    body = _json_body()
    code = body.get("code")
    if not isinstance(code, str):
        raise InvalidInput("Give the code of the badge to show.", fields={"code": "Required."})
    shown = services().deals.show(_as_user(session), deal_id, _code(code), user_id=session.user_id,
                                  lang=str(body.get("lang", "en"))[:5])
    return _deal_badge(deal_id, shown.code, shown.activity_id), 201 if shown.created else 200


def _deal_badge(deal_id: int, code: str | None, activity_id: int | None) -> Response:
    """The DealBadge shape: flat fields for old readers, `badge` null or the pair."""
    badge = None if code is None else {"code": code, "activity_id": activity_id}
    return jsonify(deal_id=deal_id, code=code, activity_id=activity_id, badge=badge)


@bp.get("/deals/<raw_deal_id>/badge")
@session_required()
def get_deal_badge(session: Session, raw_deal_id: str) -> Response:
    """What this app shows on the deal; a deal without one is not an error but `"badge": null`.

    Opening a deal is the common case, and a 404 there is logged by the browser as a failure.
    """
    deal_id = _deal_id(raw_deal_id)
    shown = services().deals.shown(session.member_id, deal_id)
    if shown is None:
        return _deal_badge(deal_id, None, None)
    return _deal_badge(deal_id, shown.code, shown.activity_id)


@bp.delete("/deals/<raw_deal_id>/badge")
@session_required()
def clear_deal_badge(session: Session, raw_deal_id: str) -> tuple[str, int]:
    services().deals.clear(_as_user(session), _deal_id(raw_deal_id))
    return "", 204


@bp.get("/openapi.json")
def openapi_description() -> Response:
    """The OpenAPI 3.1 description of this API (web/openapi.py); public, like the API's shape."""
    return jsonify(openapi.document())
