"""The UI session: a signed, short-lived bearer token (iframe → our API).

Cookies inside a cross-site iframe are unreliable (Safari ITP), so the UI carries a bearer token
minted after the frame POST was verified with the OAuth server (the Shopify session-token idea).
It is bound to member_id, user_id and the admin flag and lives at most 15 minutes; the UI renews it
with fresh frame auth.
"""
from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import InvalidSession

SESSION_TTL = 900


@dataclass(frozen=True)
class Session:
    member_id: str
    user_id: int
    is_admin: bool
    domain: str
    expires_at: float


class SessionSigner:
    def __init__(self, secret_key: str, audience: str, ttl: int = SESSION_TTL, *, memo_size: int = 4096) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="b24-ui-session")
        self._audience = audience
        self.ttl = min(ttl, SESSION_TTL)
        # A UI sends the same token with every call for up to 15 minutes: check its signature once per
        # process and only its expiry afterwards (failures are not memoised; the key never changes here).
        self._checked = functools.lru_cache(maxsize=memo_size)(self._check)

    def issue(self, member_id: str, user_id: int, is_admin: bool, domain: str) -> str:
        """A new token every time (a random id), even for the same user within one second."""
        return self._serializer.dumps({"m": member_id, "u": user_id, "a": bool(is_admin), "d": domain,
                                       "aud": self._audience, "i": secrets.token_urlsafe(9)})

    def verify(self, token: str) -> Session:
        session = self._checked(token)
        if int(time.time()) > session.expires_at:  # whole seconds, as itsdangerous counts a token's age
            raise InvalidSession("session expired")
        return session

    def _check(self, token: str) -> Session:
        try:
            claims, issued = self._serializer.loads(token, max_age=self.ttl, return_timestamp=True)
        except SignatureExpired:
            raise InvalidSession("session expired") from None
        except BadSignature:
            raise InvalidSession("session token is not valid") from None
        if not isinstance(claims, dict) or claims.get("aud") != self._audience or not claims.get("m"):
            raise InvalidSession("session token is not for this app")
        return Session(member_id=str(claims["m"]), user_id=int(claims["u"]), is_admin=bool(claims["a"]),
                       domain=str(claims.get("d", "")), expires_at=issued.timestamp() + self.ttl)
