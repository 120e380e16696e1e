"""The OpenAPI 3.1 description of the UI-facing JSON API under /api/v1, served at /api/v1/openapi.json.

Written from web/api.py as it behaves (docs/DESIGN.md §4, §10): every route, the request bodies, the
success shapes and the error shape, with the limits taken from badge_rules so the two cannot drift.
`tests/unit/test_openapi.py` checks that every /api/v1 rule in the Flask url_map is described here, and
the fault suite (tests/faults) drives the API from this description.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from ..badges.rules import BADGE_TYPES, LANGUAGE_IDS, MAX_CODE_LENGTH, MAX_LANGUAGES, MAX_TEXT_LENGTH
from ..badges.service import MAX_IMPORT
from ..portals.sessions import SESSION_TTL

VERSION = "1.0.0"
CODE_PATTERN = "^[A-Za-z][A-Za-z0-9_]*$"
# A text: not blank, no control characters (C0, DEL, C1); the app trims it before checking the length.
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, *codes: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    text = description + (f" Codes: {', '.join('`' + c + '`' for c in codes)}." if codes else "")
    response: dict[str, Any] = {"description": text, "content": _json(_ref("Error"))}
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}

_AUTH_ERRORS = {
    "401": _error("No bearer token, or a forged, tampered, expired or foreign session token; renew the session.",
                  "UNAUTHORIZED", "INVALID_SESSION",
                  headers={"WWW-Authenticate": {"schema": {"type": "string"}}}),
}
_PORTAL_ERRORS = {
    "402": _error("The portal's plan or the app's subscription forbids REST calls.", "PAYMENT_REQUIRED"),
    "403": _error("The portal refused the call for the token's owner.", "ACCESS_DENIED", "insufficient_scope"),
    "409": _error("The portal's authorization is dead or its owner can no longer act: an administrator must open "
                  "the app.", "NEEDS_REAUTH", "expired_token", "invalid_token", "authorization_error"),
    "410": _error("The app is not (or no longer) installed on this portal.", "APP_UNINSTALLED", "PORTAL_UNKNOWN",
                  "NOT_INSTALLED"),
    "503": _error("A transient condition: the portal's rate limit (after waiting up to 20 s), its operating-time "
                  "limit, the portal or the OAuth server not answering, a token refresh running elsewhere, or the "
                  "app's storage (Redis) being down.", "QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT",
                  "INTERNAL_SERVER_ERROR", "TOKEN_REFRESH_BUSY", "SERVICE_UNAVAILABLE", headers=_RETRY_AFTER),
}
_BODY_ERRORS = {
    "413": _error("The body exceeds 1 MB.", "PAYLOAD_TOO_LARGE"),
}
_WRITE_ERRORS = {
    "403": _error("The session's user is not a portal administrator (writes need one; the portal is asked again at "
                  "most once a minute), or the portal refused the call.", "ACCESS_DENIED"),
}
_IDEMPOTENCY_ERRORS = {
    "409": _error("A request with this Idempotency-Key is still running (retry after Retry-After), a duplicate, or "
                  "the portal's authorization is dead.", "REQUEST_IN_PROGRESS", "BADGE_EXISTS", "NEEDS_REAUTH",
                  headers=_RETRY_AFTER),
    "422": _error("This Idempotency-Key was used for a different request.", "IDEMPOTENCY_KEY_REUSED"),
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "A retry with the same key (per portal, kept 24 h) answers the first result without calling "
                   "the portal again; the replay carries `Idempotent-Replayed: true`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
_CODE_PARAM = {"name": "code", "in": "path", "required": True, "description": "The badge code.",
               "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CODE_LENGTH, "pattern": CODE_PATTERN}}
_DEAL_PARAM = {"name": "deal_id", "in": "path", "required": True, "description": "The deal id (1 … 2³¹−1).",
               "schema": {"type": "string", "pattern": "^[0-9]+$"}}


def _merge(*groups: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for group in groups:
        for status, response in group.items():
            merged.setdefault(status, response)  # the more specific description, given first, wins
    return dict(sorted(merged.items()))


def _op(op_id: str, summary: str, responses: dict[str, Any], *, tags: tuple[str, ...] = ("badges",),
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        secure: bool = True, description: str = "") -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": list(tags), "responses": responses}
    if description:
        operation["description"] = description
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = body
    if not secure:
        operation["security"] = []
    return operation


def _text_schema(name: str) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LENGTH, "pattern": TEXT_PATTERN}
    return {
        "description": f"The badge's {name}: one text, or a text per language (the portal shows the user's "
                       f"language, then `en`, then the first). At most {MAX_TEXT_LENGTH} characters after trimming.",
        "oneOf": [
            text,
            {"type": "object", "minProperties": 1, "maxProperties": MAX_LANGUAGES,
             "propertyNames": {"enum": list(LANGUAGE_IDS)}, "additionalProperties": text},
        ],
    }


def _schemas() -> dict[str, Any]:
    schemas = _base_schemas()
    replacement = dict(schemas["BadgeInput"], required=["title", "value", "type"],
                       description="As BadgeInput; `code` may be left out, and if given must be the URL's.")
    return {**schemas, "BadgeReplacement": replacement}


def _base_schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object", "required": ["error", "error_description"],
            "properties": {
                "error": {"type": "string", "description": "A stable code; Bitrix24 errors keep theirs."},
                "error_description": {"type": "string", "description": "What happened and what to do, for people."},
                "fields": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "VALIDATION_ERROR: one message per offending field (`title.de`, …)."},
                "request_id": {"type": ["string", "null"], "description": "Only on 500: quote it when reporting."},
                "deals": {"type": "array", "items": {"type": "integer"},
                          "description": "ENTITY_WITH_BADGE_EXISTS: the deals this app shows the badge on."},
            },
        },
        "BadgeInput": {
            "type": "object", "required": ["code", "title", "value", "type"], "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE_LENGTH, "pattern": CODE_PATTERN,
                         "description": "Letters, digits and _, starting with a letter (the app's B24_BADGE_PREFIX "
                                        f"counts towards the {MAX_CODE_LENGTH} characters)."},
                "title": _text_schema("title"),
                "value": _text_schema("value"),
                "type": {"type": "string", "enum": list(BADGE_TYPES)},
            },
        },
        "Badge": {
            "type": "object", "required": ["code"],
            "description": "A badge as the portal stores it. Badges are portal-wide: another app's badge may carry "
                           "other shapes of title/value.",
            "properties": {
                "code": {"type": "string"},
                "title": {"type": ["string", "object", "array"]},
                "value": {"type": ["string", "object", "array"]},
                "type": {"type": "string"},
            },
        },
        "ImportResult": {
            "type": "object", "required": ["code", "ok"],
            "properties": {
                "code": {"type": ["string", "null"]},
                "ok": {"type": "boolean"},
                "badge": _ref("Badge"),
                "error": {"type": "string"},
                "error_description": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "DealBadge": {
            "type": "object", "required": ["deal_id", "code", "activity_id", "badge"],
            "properties": {"deal_id": {"type": "integer"}, "code": {"type": ["string", "null"]},
                           "activity_id": {"type": ["integer", "null"]},
                           "badge": {"oneOf": [
                               {"type": "null"},
                               {"type": "object", "required": ["code", "activity_id"],
                                "properties": {"code": {"type": "string"}, "activity_id": {"type": "integer"}}}]}},
        },
        "SessionRequest": {
            "type": "object", "required": ["AUTH_ID", "member_id", "DOMAIN"],
            "description": "Fresh frame auth, as b24jssdk `auth.refreshAuth()` hands it out.",
            "properties": {
                "AUTH_ID": {"type": "string", "minLength": 1, "description": "The user's access token."},
                "member_id": {"type": "string", "minLength": 1},
                "DOMAIN": {"type": "string", "minLength": 1, "description": "The portal host (with :port)."},
                "REFRESH_ID": {"type": "string"},
                "AUTH_EXPIRES": {"type": ["string", "integer"]},
                "LANG": {"type": "string"},
            },
        },
        "Session": {
            "type": "object", "required": ["token", "expires_in", "member_id", "user_id", "is_admin"],
            "properties": {
                "token": {"type": "string", "description": "Send as `Authorization: Bearer <token>`."},
                "expires_in": {"type": "integer", "maximum": SESSION_TTL},
                "member_id": {"type": "string"},
                "user_id": {"type": "integer"},
                "is_admin": {"type": "boolean"},
            },
        },
    }


@functools.cache
def _document() -> dict[str, Any]:
    badge_body = {"required": True, "content": _json(_ref("BadgeInput"))}
    badge_ok = {"badge": _ref("Badge")}
    reads = _merge(_AUTH_ERRORS, _PORTAL_ERRORS)
    writes = _merge(_WRITE_ERRORS, _AUTH_ERRORS, _PORTAL_ERRORS)
    bad_input = {"400": _error("Invalid input: every offending field is named in `fields`; nothing was sent to "
                               "the portal.", "VALIDATION_ERROR", "BAD_REQUEST")}
    not_found = {"404": _error("No such badge on this portal.", "NOT_FOUND")}
    deal_shape = {"description": "What the app shows on the deal.", "content": _json(_ref("DealBadge"))}
    paths: dict[str, Any] = {
        "/session": {"post": _op(
            "createSession", "Trade fresh frame auth for a UI session token", tags=("session",), secure=False,
            description=f"Verified with the OAuth server's app.info like the app page; the token is bound to "
                        f"member_id and user_id and expires after {SESSION_TTL} s.",
            body={"required": True, "content": {
                "application/json": {"schema": _ref("SessionRequest")},
                "application/x-www-form-urlencoded": {"schema": _ref("SessionRequest")}}},
            responses=_merge(
                {"200": {"description": "A session token.", "content": _json(_ref("Session"))},
                 "400": _error("AUTH_ID, member_id or DOMAIN missing, or not a JSON object/form.", "BAD_REQUEST"),
                 "401": _error("The frame auth could not be verified (forged, expired, another app or portal).",
                               "UNVERIFIED"),
                 "403": _error("The app is not fully installed on the portal, or the portal refused the user.",
                               "ACCESS_DENIED"),
                 "503": _error("The OAuth server or the app's storage is unreachable.", "SERVICE_UNAVAILABLE",
                               "CONFIG_INCOMPLETE", headers=_RETRY_AFTER)},
                _BODY_ERRORS))},
        "/oauth/authorize": {"post": _op(
            "startReauthorization", "A one-time link that re-authorizes the app (admins)",
            description="The link is valid 60 s and once; the UI opens it top-level. It leads to the portal's "
                        "consent page, and the callback stores the new chain only if the consenting user is a "
                        "portal administrator.",
            responses=_merge(
                {"200": {"description": "The link.", "content": _json(
                    {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}})}},
                _WRITE_ERRORS, _AUTH_ERRORS))},
        "/badges": {
            "get": _op("listBadges", "Every badge of the portal (cached)", responses=_merge(
                {"200": {"description": "All badges. Served from a short-lived per-portal cache that writes "
                                        "invalidate.",
                         "headers": {"X-Cache": {"schema": {"type": "string", "enum": ["hit", "miss"]}}},
                         "content": _json({"type": "object", "required": ["badges"],
                                           "properties": {"badges": {"type": "array", "items": _ref("Badge")}}})}},
                reads)),
            "post": _op("createBadge", "Create a badge (admins)", params=[_IDEMPOTENCY_KEY], body=badge_body,
                        description="A 5xx or timeout of `crm.activity.badge.add` is resolved with "
                                    "`crm.activity.badge.get`, so a retry never creates a duplicate.",
                        responses=_merge(
                            {"201": {"description": "Created.", "content": _json(
                                {"type": "object", "required": ["badge"], "properties": badge_ok})}},
                            bad_input, _IDEMPOTENCY_ERRORS, writes, _BODY_ERRORS)),
        },
        "/badges/import": {"post": _op(
            "importBadges", "Create up to 500 badges through batch (admins)", params=[_IDEMPOTENCY_KEY],
            description="Sent through `batch` (50 commands a request) within the portal's rate limit; invalid "
                        "items are reported per item and never sent.",
            body={"required": True, "content": _json({
                "type": "object", "required": ["badges"],
                "properties": {"badges": {"type": "array", "minItems": 1, "maxItems": MAX_IMPORT,
                                          "items": _ref("BadgeInput")}}})},
            responses=_merge(
                {"200": {"description": "One result per input item, in order.", "content": _json(
                    {"type": "object", "required": ["results"],
                     "properties": {"results": {"type": "array", "items": _ref("ImportResult")}}})},
                 "400": _error("Not a JSON object with a list of 1 to 500 badges.", "VALIDATION_ERROR",
                               "BAD_REQUEST")},
                _IDEMPOTENCY_ERRORS, writes, _BODY_ERRORS))},
        "/badges/{code}": {
            "get": _op("getBadge", "One badge", params=[_CODE_PARAM], responses=_merge(
                {"200": {"description": "The badge.", "content": _json(
                    {"type": "object", "required": ["badge"], "properties": badge_ok})},
                 "400": _error("The code is malformed.", "VALIDATION_ERROR")},
                not_found, reads)),
            "put": _op("replaceBadge", "Give a badge new texts or type (admins)",
                       params=[_CODE_PARAM, _IDEMPOTENCY_KEY],
                       description="Bitrix24 cannot edit a badge, so this deletes it and adds it again: refused "
                                   "while deals show it, and if the portal refuses the new badge the old one is put "
                                   "back. `code` may be left out; if given it must be the URL's.",
                       body={"required": True, "content": _json(_ref("BadgeReplacement"))},
                       responses=_merge(
                           {"200": {"description": "Replaced (or unchanged, when nothing differed).",
                                    "content": _json({"type": "object", "required": ["badge"],
                                                      "properties": badge_ok})},
                            "409": _error("Deals still show this badge: `deals` lists those this app put it on; "
                                          "nothing changed.", "ENTITY_WITH_BADGE_EXISTS", "NEEDS_REAUTH")},
                           bad_input, not_found, _IDEMPOTENCY_ERRORS, writes, _BODY_ERRORS)),
            "delete": _op("deleteBadge", "Delete a badge (admins)", params=[_CODE_PARAM], responses=_merge(
                {"204": {"description": "Deleted."},
                 "400": _error("The code is malformed.", "VALIDATION_ERROR"),
                 "409": _error("Deals still show this badge: `deals` lists those this app put it on.",
                               "ENTITY_WITH_BADGE_EXISTS", "NEEDS_REAUTH")},
                not_found, writes)),
        },
        "/deals/{deal_id}/badge": {
            "get": _op("getDealBadge", "The badge this app shows on a deal", tags=("deals",), params=[_DEAL_PARAM],
                       responses=_merge({"200": {**deal_shape, "description": "What the app shows; `code`, "
                                                 "`activity_id` and `badge` are null when it shows none."},
                                         "400": _error("The deal id is not a positive integer.", "VALIDATION_ERROR")},
                                        reads)),
            "post": _op("showDealBadge", "Show a badge on a deal's kanban card", tags=("deals",),
                        params=[_DEAL_PARAM, _IDEMPOTENCY_KEY],
                        description="Through one open `crm.activity.configurable.add` activity (badgeCode) per "
                                    "deal; switching badges updates it. Done with the session user's own "
                                    "Bitrix24 authorization: whoever may edit the deal may do it.",
                        body={"required": True, "content": _json({
                            "type": "object", "required": ["code"],
                            "properties": {"code": {"type": "string", "maxLength": MAX_CODE_LENGTH,
                                                    "pattern": CODE_PATTERN},
                                           "lang": {"type": "string", "description": "Language of the activity "
                                                                                     "text (default en)."}}})},
                        responses=_merge(
                            {"200": {**deal_shape, "description": "Switched the deal's activity to this badge."},
                             "201": {**deal_shape, "description": "Created the deal's activity."},
                             "400": _error("Bad deal id, code or body.", "VALIDATION_ERROR", "BAD_REQUEST"),
                             "404": _error("No such badge on this portal.", "NOT_FOUND")},
                            _IDEMPOTENCY_ERRORS, writes, _BODY_ERRORS)),
            "delete": _op("clearDealBadge", "Clear the badge this app shows on a deal", tags=("deals",),
                          params=[_DEAL_PARAM], responses=_merge(
                              {"204": {"description": "Cleared (also when nothing was shown)."},
                               "400": _error("The deal id is not a positive integer.", "VALIDATION_ERROR")},
                              writes)),
        },
        "/openapi.json": {"get": _op(
            "openapi", "This description", tags=("meta",), secure=False,
            responses={"200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Activity Badges UI API", "version": VERSION,
                 "description": "The JSON API the embedded UI calls. Every call but /session carries "
                                "`Authorization: Bearer <session token>` (also the CSRF defence). Reads are open to "
                                "any user of the portal; writes need an administrator's session. Errors are always "
                                "`{\"error\", \"error_description\"}` JSON; Bitrix24 errors keep their code with a "
                                "4xx status, or 503 for limits and transient failures — never 500."},
        "servers": [{"url": "/api/v1"}],
        "tags": [{"name": "session"}, {"name": "badges"}, {"name": "deals"}, {"name": "meta"}],
        "security": [{"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"session": {"type": "http", "scheme": "bearer",
                                            "description": "The UI session token from POST /session or the "
                                                           "`b24-session` meta tag of the app page."}},
            "schemas": _schemas(),
        },
    }


def document() -> dict[str, Any]:
    """A fresh copy of the description (callers may change it)."""
    return copy.deepcopy(_document())
