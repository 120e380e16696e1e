"""Proving that a request comes from a user of a portal that installed this app.

The token a request carries is shown to the configured, allow-listed OAuth server, whose app.info
says which app, portal and user it belongs to (docs/bitrix24-protocol.md §6.2, §6.4). Only then is
anything stored or any portal called — and always at the `client_endpoint` the OAuth server named,
never the one the request claims.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..bitrix.bulkhead import Bulkhead
from ..bitrix.client import RestResult, call_with_token
from ..bitrix.errors import AccessDenied, B24Error, Policy
from ..bitrix.limiter import RateLimiter
from ..bitrix.oauth import AppInfo, OAuthClient, OAuthError, OAuthUnavailable
from ..bitrix.transport import Transport
from ..errors import Forbidden, RateLimitTimeout, Unverified, VerifierUnavailable
from .frames import FrameRequest, portal_origin


@dataclass(frozen=True)
class VerifiedFrame:
    frame: FrameRequest
    info: AppInfo
    user_id: int
    is_admin: bool

    @property
    def portal_origin(self) -> str:
        return portal_origin(self.info.client_endpoint)


class Verifier:
    def __init__(self, *, oauth: OAuthClient, http: Transport, limiter: RateLimiter | None, allow_http: bool,
                 bulkhead: Bulkhead | None = None) -> None:
        self._oauth = oauth
        self._http = http
        self._limiter = limiter
        self._allow_http = allow_http
        self._bulkhead = bulkhead

    def frame(self, frame: FrameRequest, *, installing: bool = False, check_admin: bool = True) -> VerifiedFrame:
        """Prove the frame POST with the OAuth server; then ask the portal whether the user is an admin."""
        info = self.token(frame.auth_id, frame.member_id, frame.domain)
        if not info.installed and not installing:
            raise Forbidden("the app is not fully installed on this portal yet: an administrator must open it "
                            "from the Applications menu to finish the installation")
        if info.user_id is None:
            raise Unverified("the token does not name a user")
        is_admin = False
        if check_admin:
            profile = self._user_call(info.member_id, info.client_endpoint, frame.auth_id, "profile")
            is_admin = isinstance(profile.result, dict) and truthy(profile.result.get("ADMIN"))
        return VerifiedFrame(frame=frame, info=info, user_id=info.user_id, is_admin=is_admin)

    def token(self, access_token: str, member_id: str, domain: str) -> AppInfo:
        """app.info for `access_token`, checked to belong to this app and to the claimed portal."""
        with asking_the_oauth_server("the portal's token was refused"):
            info = self._oauth.app_info(access_token)
        self.identity(info, member_id, domain)
        return info

    def identity(self, info: AppInfo, member_id: str, domain: str) -> None:
        """The OAuth server's answer names this app, the claimed portal and an endpoint we may call."""
        if not hmac.compare_digest(info.client_id.encode(), self._oauth.client_id.encode()):
            raise Unverified("the token belongs to another application")
        if info.member_id != member_id:
            raise Unverified("the token belongs to another portal")
        if info.domain != domain.lower():
            raise Unverified("the portal address does not match its token")
        self._check_endpoint(info.client_endpoint)

    def admin(self, member_id: str, client_endpoint: str, access_token: str) -> bool:
        """Whether the token's user is a portal administrator: the portal answers `user.admin` for the
        user whose token asks (docs/bitrix24-protocol.md §6.3)."""
        self._check_endpoint(client_endpoint)
        return truthy(self._user_call(member_id, client_endpoint, access_token, "user.admin").result)

    def _wait_slot(self, member_id: str) -> AbstractContextManager[bool]:
        return nullcontext(True) if self._bulkhead is None else self._bulkhead.wait_slot(member_id, "verify")

    def _check_endpoint(self, client_endpoint: str) -> None:
        scheme = urlsplit(client_endpoint).scheme
        if scheme != "https" and not (scheme == "http" and self._allow_http):
            raise Unverified("the portal's REST endpoint is not https")

    def _user_call(self, member_id: str, client_endpoint: str, access_token: str, method: str) -> RestResult:
        try:
            if self._limiter is not None:
                with self._wait_slot(member_id) as may_wait:
                    self._limiter.acquire(member_id, max_wait=None if may_wait else 0.0)
            return call_with_token(self._http, client_endpoint, access_token, method)
        except RateLimitTimeout:
            raise VerifierUnavailable("the portal's request budget is exhausted; try again in a few seconds") \
                from None
        except AccessDenied as exc:
            raise Forbidden(f"the portal refused {method} ({exc.code})") from None
        except B24Error as exc:
            if exc.policy in (Policy.WAIT, Policy.RETRY_READ):  # busy or failing: nothing was decided
                raise VerifierUnavailable(f"the portal could not answer {method} ({exc.code}); try again "
                                          f"in a few seconds") from None
            raise Unverified(f"the portal refused {method} ({exc.code})") from None


@contextmanager
def asking_the_oauth_server(refused: str) -> Iterator[None]:
    """The OAuth server's answers in the verifier's words: unreachable or busy → 503, refused → 401."""
    try:
        yield
    except OAuthUnavailable:
        raise VerifierUnavailable("the Bitrix24 authorization server is unreachable; try again shortly") from None
    except OAuthError as exc:
        raise Unverified(f"{refused} ({exc.code})") from None


def truthy(value: object) -> bool:
    """A Bitrix24 yes: true, "Y", "true", 1."""
    return value in (True, "Y", "true", 1, "1")
