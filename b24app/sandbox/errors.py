"""Errors the sandbox answers with, shaped like Bitrix24's (docs/bitrix24-protocol.md §2.4, §3.3).

`RestError` carries the exact `error` code (a string, or an int for Engine-controller errors such as
`100` and `0`), the `error_description`, the HTTP status and optional extra keys (`argument`).
"""
from __future__ import annotations

from typing import Any


class RestError(Exception):
    """An error envelope `{error, error_description}` with its HTTP status."""

    def __init__(self, code: str | int, description: str, status: int = 400,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The JSON body Bitrix24 sends for this error."""
        return {"error": self.code, "error_description": self.description, **self.extra}


class SandboxError(Exception):
    """Misuse of the sandbox's own Python or control API (not a Bitrix24 error)."""


# Auth-stage errors (docs/bitrix24-protocol.md §3.3): all 401.
def expired_token() -> RestError:
    return RestError("expired_token", "The access token provided has expired", 401)


def invalid_token() -> RestError:
    return RestError("invalid_token", "Unable to get application by token", 401)


def no_auth_found() -> RestError:
    return RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)


def authorization_error() -> RestError:
    return RestError("authorization_error", "Unable to authorize user", 401)


def method_not_found() -> RestError:
    return RestError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)


def invalid_credentials() -> RestError:
    """A webhook code or user id that names no active webhook (docs/bitrix24-protocol.md §3.3)."""
    return RestError("INVALID_CREDENTIALS", "Invalid request credentials", 401)


def insufficient_scope(webhook: bool = False, in_batch: bool = False) -> RestError:
    """401 with "webhook token" for a webhook, 403 with "access token" for an app (docs/bitrix24-protocol.md
    §3.3); inside `batch` the description is empty (§3.4)."""
    if in_batch:
        return RestError("insufficient_scope", "", 401 if webhook else 403)
    if webhook:
        return RestError("insufficient_scope",
                         "The request requires higher privileges than provided by the webhook token", 401)
    return RestError("insufficient_scope",
                     "The request requires higher privileges than provided by the access token", 403)


def access_denied(detail: str = "") -> RestError:
    """`AccessException` (403): "Access denied!" plus an optional reason."""
    text = "Access denied!" + (f" {detail}" if detail else "")
    return RestError("ACCESS_DENIED", text, 403)


def wrong_auth_type() -> RestError:
    return RestError("WRONG_AUTH_TYPE",
                     "Current authorization type is denied for this method Application context required", 403)


def internal_error() -> RestError:
    return RestError("INTERNAL_SERVER_ERROR", "Internal server error", 500)


def query_limit_exceeded() -> RestError:
    return RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)


def operation_time_limit() -> RestError:
    return RestError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)


def argument_error(name: str) -> RestError:
    """`ERROR_ARGUMENT` for a missing required argument, with the `argument` key (docs/bitrix24-protocol.md §3.3)."""
    return RestError("ERROR_ARGUMENT", f"Argument '{name}' is null or empty", 400, {"argument": name})


def param_missing(name: str) -> RestError:
    """Engine binder: a required action parameter was not sent (docs/bitrix24-protocol.md §5.2, code `100`)."""
    return RestError(100, f"Could not find value for parameter {{{name}}}", 400)


def param_wrong_type(name: str, value: Any, type_name: str) -> RestError:
    """Engine binder: a parameter could not be cast to the action's declared type (code `100`)."""
    shown = value if isinstance(value, str | int | float) else "Array"
    return RestError(100, f"Invalid value {shown} to match with parameter {{{name}}}. "
                          f"Should be value of type {type_name}.", 400)
