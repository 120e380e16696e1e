"""The one exception tree of the app. Every error the app raises on purpose derives from `AppError`.

Errors say *what* went wrong in the app's own terms: a stable machine-readable `code` and a description
safe to show the caller. They carry no HTTP status: `b24app/web/errors.py` is the single place that
turns them into responses (statuses, `Retry-After`, JSON or the framed HTML page). A test walks every
module of the app and checks that each exception class it defines sits in this tree.

    AppError
    ├── ConfigError ·························· a missing or malformed variable (config.py)
    │   ├── ConfigIncomplete ················· the app runs, but without what a route needs
    │   └── ManifestError ···················· install.json is unusable (portals/manifest.py)
    ├── StorageError ························· the app's own storage cannot serve
    │   ├── TokenDecryptError ················ no configured key opens a stored token (storage/crypto.py)
    │   ├── EmbeddedRedisError ··············· the embedded Redis did not start (storage/embedded.py)
    │   └── AlreadyRunning ··················· another server holds the data directory (rundir.py)
    ├── InvalidInput ························· the caller sent something unusable; `fields` names it
    │   ├── BadRequest ······················· not even the shape of a request (no JSON object, bad header)
    │   └── BadgeValidationError ············· a badge breaks the rules (badges/rules.py)
    ├── Unverified ··························· a request could not be shown to come from a portal user
    │   ├── IncompleteFrame ·················· required frame fields are missing
    │   ├── Forbidden ························ verified, but not allowed (not an admin, not installed yet, …)
    │   ├── NoSession ························ the API call carries no session token
    │   ├── InvalidSession ··················· a UI session or OAuth state is forged, foreign or expired
    │   │   └── UserTokenExpired ············· the user's own Bitrix24 token behind the session is gone
    │   ├── ReauthLinkInvalid ················ a re-authorization link that is unknown, used or expired
    │   └── VerifierUnavailable ·············· the OAuth server or the portal could not be asked
    ├── PortalUnavailable ···················· the portal cannot be called on (bitrix/tokens.py)
    │   ├── PortalUnknown ···················· it never installed the app
    │   ├── PortalUninstalled ················ it uninstalled the app
    │   └── PortalNeedsReauth ················ its token chain is dead; an admin must open the app
    ├── RefreshBusy ·························· another process holds the portal's refresh too long
    ├── JobQueueFull ························· too much background work waits in this process (jobs.py)
    ├── RateLimitTimeout ····················· no rate-limit slot within the caller's wait (bitrix/limiter.py)
    ├── OAuthError ··························· the OAuth server refused (bitrix/oauth.py)
    │   ├── InvalidGrant ····················· the code or refresh token is dead
    │   ├── TokenRejected ···················· app.info refused the access token
    │   └── OAuthUnavailable ················· no answer, or a 5xx: nothing was decided
    ├── B24Error ····························· a Bitrix24 REST error code (bitrix/errors.py has one
    │   │                                      class per behaviour, and the table of every code)
    │   ├── TokenError, OwnerCannotAct, AppNotInstalled, AccessDenied, PaymentRequired,
    │   ├── MethodNotFound, NotFound, Conflict, InvalidArgument, Overloaded
    │   ├── QueryLimitExceeded, OperationTimeLimit, TransientAuthError
    │   └── PortalServerError, TransportError ····· the outcome of a write is unknown
    ├── TransportFailure ····················· no answer from a portal (bitrix/transport.py; the REST
    │                                          client turns it into TransportError)
    ├── BadgeError ··························· a badge use case cannot proceed (badges/service.py)
    │   ├── BadgeExists ······················ the code is taken on this portal
    │   ├── BadgeNotFound ···················· no badge with that code
    │   ├── BadgeInUse ······················· deals still show it
    │   ├── DealBusy ························· another change of the deal's badge is under way (badges/deals.py)
    │   └── PortalAnswerInvalid ·············· the portal's answer lacks what it must carry
    └── IdempotencyError ····················· an `Idempotency-Key` cannot be honoured (storage/idempotency.py)
        ├── KeyReused ························ the key was used for a different request
        └── RequestInProgress ················ the first request with the key is still running
"""
from __future__ import annotations


class AppError(Exception):
    """Root of the tree: `code` is stable and machine-readable, `description` safe to show."""

    code: str = "ERROR"

    def __init__(self, description: str = "", *, fields: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.fields = dict(fields) if fields else {}


class ConfigError(AppError):
    """A missing or malformed variable; `str()` is the one line shown to the operator."""

    code = "CONFIG_ERROR"

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class ConfigIncomplete(ConfigError):
    code = "CONFIG_INCOMPLETE"


class StorageError(AppError):
    code = "STORAGE_ERROR"


class InvalidInput(AppError):
    """Bad input; `fields` maps each offending field to one human message."""

    code = "VALIDATION_ERROR"


class BadRequest(InvalidInput):
    code = "BAD_REQUEST"


class Unverified(AppError):
    """The request could not be shown to come from a user of a portal that installed this app."""

    code = "UNVERIFIED"

    @property
    def reason(self) -> str:
        return self.description


class IncompleteFrame(Unverified):
    code = "BAD_REQUEST"


class Forbidden(Unverified):
    code = "ACCESS_DENIED"


class NoSession(Unverified):
    code = "UNAUTHORIZED"


class InvalidSession(Unverified):
    code = "INVALID_SESSION"


class UserTokenExpired(InvalidSession):
    """The portal refused the user's own token (a deal badge is set with it); the UI renews the session,
    which brings a fresh one."""


class ReauthLinkInvalid(Unverified):
    code = "INVALID_LINK"


class VerifierUnavailable(Unverified):
    code = "SERVICE_UNAVAILABLE"


class PortalUnavailable(AppError):
    """The portal cannot be called on; `state` says why in the lifecycle's words."""

    code = "PORTAL_UNAVAILABLE"
    state: str = "unknown"

    def __init__(self, member_id: str, description: str) -> None:
        super().__init__(description)
        self.member_id = member_id


class PortalUnknown(PortalUnavailable):
    code = "PORTAL_UNKNOWN"


class PortalUninstalled(PortalUnavailable):
    code = "APP_UNINSTALLED"
    state = "uninstalled"


class PortalNeedsReauth(PortalUnavailable):
    code = "NEEDS_REAUTH"
    state = "needs-reauth"


class RefreshBusy(AppError):
    code = "TOKEN_REFRESH_BUSY"


class RateLimitTimeout(AppError):
    """The portal has no capacity within the caller's max_wait; nothing was reserved."""

    code = "QUERY_LIMIT_EXCEEDED"

    def __init__(self, retry_after: float, member_id: str = "") -> None:
        super().__init__(f"portal {member_id or '?'} rate limit: next slot in {retry_after:.2f}s")
        self.retry_after = retry_after
        self.member_id = member_id


class BadgeError(AppError):
    code = "BADGE_ERROR"


class IdempotencyError(AppError):
    code = "IDEMPOTENCY_ERROR"
