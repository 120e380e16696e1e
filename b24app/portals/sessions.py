"""Signed, short-lived tokens: the UI session (iframe → our API) and the OAuth `state`.

Cookies inside a cross-site iframe are unreliable (Safari ITP), so the UI carries a bearer token
minted after the frame POST was verified with the OAuth server (the Shopify session-token idea).
It is bound to member_id, user_id and the admin flag and lives at most 15 minutes; the UI renews it
with fresh frame auth. Separate salts keep one kind of token from being replayed as the other.
"""
from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass

import redis
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import InvalidSession
from ..storage import keys

SESSION_TTL = 900
STATE_TTL = 600


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


class StateSigner:
    """OAuth `state`: signed (who it is for), expiring, and single-use (a nonce consumed in Redis)."""

    def __init__(self, secret_key: str, client: redis.Redis, ttl: int = STATE_TTL) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="b24-oauth-state")
        self._redis = client
        self._ttl = ttl

    def issue(self, member_id: str, domain: str) -> str:
        nonce = secrets.token_urlsafe(16)
        self._redis.set(keys.oauth_state(member_id, nonce), int(time.time()), ex=self._ttl)
        return self._serializer.dumps({"m": member_id, "d": domain, "n": nonce})

    def consume(self, state: str, member_id: str, domain: str) -> None:
        """Accept `state` once, for the portal it was issued for; raises InvalidSession otherwise."""
        try:
            claims = self._serializer.loads(state, max_age=self._ttl)
        except SignatureExpired:
            raise InvalidSession("the authorization took too long; start again") from None
        except BadSignature:
            raise InvalidSession("state is not valid") from None
        if not isinstance(claims, dict) or claims.get("m") != member_id or claims.get("d") != domain.lower():
            raise InvalidSession("state was issued for another portal")
        if not self._redis.delete(keys.oauth_state(member_id, str(claims.get("n")))):
            raise InvalidSession("state was already used")
