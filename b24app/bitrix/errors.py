"""Every Bitrix24 REST error code, its typed exception, and what the client does about it.

Bitrix24's HTTP statuses disagree between docs, core and SDKs (docs/bitrix24-protocol.md §3.3), so we branch on the
`error` code (case-insensitive), never on the status. Each code has one decided behaviour:

- REFRESH: the token is the problem — refresh the chain once (single-flight) and retry once.
- WAIT: the portal asks us to slow down — wait (limiter, backoff with jitter, or until
  `operating_reset_at`) within a bounded budget, then retry.
- RETRY_READ: transient failure of unknown outcome — retry reads; a write is resolved by the caller
  (e.g. badge.add → badge.get), never blindly repeated.
- FAIL: retrying cannot help — raise at once with a message a person can act on.

What the UI sees is decided in web/errors.py: the code is kept, the status is a fitting 4xx, or 503
for limits and transient portal failures — never 500.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import AppError
from .transport import FAILURE_KINDS


class Policy(Enum):
    REFRESH = "refresh-and-retry-once"
    WAIT = "wait-and-retry"
    RETRY_READ = "retry-reads"
    FAIL = "fail-fast"


class B24Error(AppError):
    """A Bitrix24 REST error. Subclasses group codes that call for the same handling."""

    policy = Policy.FAIL
    hint = ""

    def __init__(self, code: str, description: str = "", *, http_status: int = 0, method: str = "",
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.args = (f"{method}: {code}: {description}" if method else f"{code}: {description}",)
        self.code = code
        self.http_status = http_status
        self.method = method
        self.extra = extra or {}

    @property
    def message(self) -> str:
        """What to show a person: the portal's words plus what to do about it."""
        text = self.description or self.code
        return f"{text} {self.hint}".strip() if self.hint else text


class TokenError(B24Error):
    """The stored chain's access token is refused; after one refresh it means the chain is broken."""

    policy = Policy.REFRESH


class OwnerCannotAct(B24Error):
    hint = "The user who authorized the app can no longer act; an administrator must open the app once."


class AppNotInstalled(B24Error):
    hint = "The app is no longer installed on this portal."


class AccessDenied(B24Error):
    """The user or the app lacks a right or a scope."""


class PaymentRequired(B24Error):
    hint = "The app's subscription or the portal's plan does not allow REST calls."


class MethodNotFound(B24Error):
    """The method does not exist, or its scope is not granted."""


class NotFound(B24Error):
    """The entity does not exist."""


class Conflict(B24Error):
    """The entity exists already, or is still in use."""


class InvalidArgument(B24Error):
    """The portal refused our input."""


class QueryLimitExceeded(B24Error):
    policy = Policy.WAIT
    hint = "The portal's request budget is exhausted; try again in a few seconds."


class OperationTimeLimit(B24Error):
    policy = Policy.WAIT
    hint = "This method used up its 10-minute execution budget on the portal; it unblocks by itself."


class Overloaded(B24Error):
    hint = "Bitrix24 blocked the REST API for this portal manually; contact Bitrix24 support."


class PortalServerError(B24Error):
    policy = Policy.RETRY_READ
    hint = "The portal failed to answer; try again later."


class TransientAuthError(B24Error):
    policy = Policy.WAIT
    hint = "The portal could not reach its authorization server; try again later."


class TransportError(B24Error):
    """No usable answer (timeout, connection reset, not JSON): the outcome of a write is unknown."""

    policy = Policy.RETRY_READ
    hint = "The portal did not answer in time."


@dataclass(frozen=True)
class Rule:
    error_class: type[B24Error]
    hint: str = ""


# Codes from docs/bitrix24-protocol.md §3.3 and §2.4, and §5 (badges, activities, bindings).
RULES: dict[str, Rule] = {
    # token and chain (§3.3, §2.4)
    "expired_token": Rule(TokenError),
    "invalid_token": Rule(TokenError),
    "no_auth_found": Rule(TokenError),
    "authorization_error": Rule(OwnerCannotAct),
    "application_not_found": Rule(AppNotInstalled),
    "error_oauth": Rule(AppNotInstalled),
    "not_installed": Rule(AppNotInstalled),
    "portal_deleted": Rule(AppNotInstalled, "The portal was deleted or closed."),
    "connection_error": Rule(TransientAuthError),
    # rights, scope, plan (§3.3; "Insufficient permissions")
    "access_denied": Rule(AccessDenied, "The user lacks the rights for this action (badges need a portal admin)."),
    "insufficient_scope": Rule(AccessDenied, "The app lacks a scope: check the scopes in the developer console."),
    "invalid_credentials": Rule(AccessDenied),
    "user_access_error": Rule(AccessDenied, "An administrator restricted the app to some users."),
    "wrong_auth_type": Rule(AccessDenied),
    "allowed_only_intranet_user": Rule(AccessDenied),
    "access_error": Rule(AccessDenied),
    "method_confirm_waiting": Rule(AccessDenied, "A portal administrator must confirm this method first."),
    "method_confirm_denied": Rule(AccessDenied, "A portal administrator refused this method."),
    "payment_required": Rule(PaymentRequired),
    "error_wrong_context": Rule(AccessDenied),
    "error_wrong_application": Rule(AccessDenied, "Only the app that created this activity may change it."),
    # limits (§4)
    "query_limit_exceeded": Rule(QueryLimitExceeded),
    "operation_time_limit": Rule(OperationTimeLimit),
    "overload_limit": Rule(Overloaded),
    # the portal failed (§3.3)
    "internal_server_error": Rule(PortalServerError),
    "error_unexpected_answer": Rule(PortalServerError),
    # our request is wrong (§3.3, §3.4)
    "error_method_not_found": Rule(MethodNotFound, "The method does not exist or its scope is missing."),
    "error_manifest_is_not_available": Rule(NotFound),
    "error_batch_method_not_allowed": Rule(InvalidArgument),
    "error_batch_length_exceeded": Rule(InvalidArgument),
    "invalid_request": Rule(InvalidArgument, "The portal requires https."),
    "wrong_encoding": Rule(InvalidArgument),
    "error_argument": Rule(InvalidArgument),
    "error_core": Rule(InvalidArgument),
    "error_not_found": Rule(NotFound),
    # badges (§5.2–§5.5)
    "required_arg_missing": Rule(InvalidArgument),
    "wrong_type_value": Rule(InvalidArgument),
    "bx_invalid_value": Rule(Conflict),
    "not_found": Rule(NotFound),
    "entity_with_badge_exists": Rule(Conflict, "Deals still show this badge; clear it from them first."),
    "100": Rule(InvalidArgument),
    "0": Rule(InvalidArgument),
    # configurable activities (§5.6)
    "owner_not_found": Rule(NotFound, "The deal does not exist any more, or was never there."),
    "wrong_field_value": Rule(InvalidArgument),
    "error_empty_layout": Rule(InvalidArgument),
    "field_is_required": Rule(InvalidArgument),
    "field_is_redundant": Rule(InvalidArgument),
    "enum_field": Rule(InvalidArgument),
    "wrong_lang": Rule(InvalidArgument),
    "key_contain_wrong_symbols": Rule(InvalidArgument),
    "too_many_items": Rule(InvalidArgument),
    "incoming_activity_can_not_be_with_deadline": Rule(InvalidArgument),
    # bindings (§5.7)
    "error_placement_max_count": Rule(Conflict),
    "error_placement_user_mode": Rule(InvalidArgument),
    # robots (§11.1, §11.2, §11.4)
    "error_activity_validation_failure": Rule(InvalidArgument),
    "error_activity_already_installed": Rule(Conflict),
    "error_activity_add_failure": Rule(PortalServerError),
    "error_activity_not_found": Rule(NotFound),
    "error_wrong_handler_url": Rule(InvalidArgument, "The robot's handler URL is not usable: check B24_APP_URL."),
    "error_unsupported_protocol": Rule(InvalidArgument, "The robot's handler URL must be http or https."),
    "error_empty_log_message": Rule(InvalidArgument),
}


def make_error(body: dict[str, Any], http_status: int, method: str = "") -> B24Error:
    """The typed exception for an error envelope `{"error", "error_description"}`."""
    code = str(body.get("error", "")) or f"HTTP_{http_status}"
    description = str(body.get("error_description", "") or "")
    extra = {k: v for k, v in body.items() if k not in ("error", "error_description")}
    rule = RULES.get(code.lower())
    if rule is None:
        error_class: type[B24Error] = PortalServerError if http_status >= 500 else InvalidArgument
        error = error_class(code, description, http_status=http_status, method=method, extra=extra)
    else:
        error = rule.error_class(code, description, http_status=http_status, method=method, extra=extra)
        if rule.hint:
            error.hint = rule.hint
    return error


OTHER = "OTHER"
# Codes the client makes up itself for answers that never came (transport failures, bad redirects).
_CLIENT_CODES = FAILURE_KINDS | {"BAD_REDIRECT"}
_HTTP_STATUS_RE = re.compile(r"HTTP_\d{3}")


def outcome_label(code: str) -> str:
    """`ok`, a code this table (or the client) knows, or OTHER: a portal cannot mint new metric labels."""
    if code == "ok" or (code and (code.lower() in RULES or code in _CLIENT_CODES or _HTTP_STATUS_RE.fullmatch(code))):
        return code
    return OTHER


def already_bound(error: B24Error) -> bool:
    """event.bind / placement.bind of a handler that is bound already: Bitrix24 says so only in words,
    under the generic ERROR_CORE ("Handler already binded", docs/bitrix24-protocol.md §5.7)."""
    return "already" in error.description.lower()
