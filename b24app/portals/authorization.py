"""Re-authorization through Bitrix24's OAuth code flow, for a portal whose chain died or whose owner left.

It starts only from an administrator's session inside the app (docs/DESIGN.md §4): `link()` gives a
one-time address, valid for a minute, that the UI opens top-level. Following it sends the user to the
portal's `/oauth/authorize/` with an opaque, single-use, expiring `state` bound to that portal
(docs/bitrix24-protocol.md §2.2). The callback exchanges the code (30 s lifetime) and stores the new
chain only if the code's user is a portal administrator: anyone may follow a portal's consent screen,
but the chain every admin's write rides on must not become a non-admin's.

Nothing about a portal can be learnt from outside: without a valid link every request gets the same
answer and nothing is stored.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlencode

import redis

from ..bitrix.oauth import OAuthClient
from ..errors import Forbidden, IncompleteFrame, ReauthLinkInvalid, Unverified
from ..storage import keys
from ..storage.connection import text
from ..storage.installations import Installation, InstallationStore
from .frames import portal_origin
from .verification import Verifier, asking_the_oauth_server

log = logging.getLogger(__name__)

LINK_TTL = 60
STATE_TTL = 600
INVALID_LINK = ("This re-authorization link is not valid (any more): an administrator starts the "
                "re-authorization from the app inside Bitrix24.")


class Reauthorization:
    def __init__(self, *, store: InstallationStore, oauth: OAuthClient, verifier: Verifier,
                 redis_client: redis.Redis, app_url: str) -> None:
        self._store = store
        self._oauth = oauth
        self._verifier = verifier
        self._redis = redis_client
        self._app_url = app_url.rstrip("/")

    def link(self, member_id: str) -> str:
        """A one-time address (valid LINK_TTL seconds) that starts the code flow for this portal."""
        ticket = secrets.token_urlsafe(32)
        self._redis.set(keys.reauth_link(_digest(ticket)), member_id, ex=LINK_TTL)
        return f"{self._app_url}/oauth/authorize?{urlencode({'link': ticket})}"

    def authorize_url(self, ticket: str) -> str:
        """Where a valid link leads: the portal's consent page, with a fresh opaque state."""
        found = self._redis.getdel(keys.reauth_link(_digest(ticket))) if 20 <= len(ticket) <= 100 else None
        record = self._store.get(text(found)) if found else None
        if record is None:
            raise ReauthLinkInvalid(INVALID_LINK)
        state = secrets.token_urlsafe(24)
        self._redis.set(keys.oauth_state(record.member_id, state), "1", ex=STATE_TTL)
        return self._oauth.authorize_url(portal_origin(record.client_endpoint), state)

    def complete(self, args: Mapping[str, str]) -> Installation:
        code, state = args.get("code", ""), args.get("state", "")
        member_id, domain = args.get("member_id", ""), args.get("domain", "").lower()
        if not code or not state or not member_id or not domain or len(state) > 100:
            raise IncompleteFrame("the callback lacks code, state, domain or member_id")
        record = self._store.get(member_id)
        if record is None or not self._redis.delete(keys.oauth_state(member_id, state)):
            raise Unverified("this authorization was not started here, took too long, or was already used")
        with asking_the_oauth_server("the authorization code was refused"):
            tokens = self._oauth.exchange_code(code)
        if tokens.member_id != member_id:
            raise Unverified("the authorization belongs to another portal")
        if not self._verifier.admin(member_id, tokens.client_endpoint, tokens.access_token):
            log.warning("re-authorization by a non-administrator refused", extra={"member_id": member_id,
                                                                                 "user_id": tokens.user_id})
            raise Forbidden("only a portal administrator can authorize the app; nothing was changed")
        saved = self._store.activate(replace(
            record, access_token=tokens.access_token, refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at, owner_user_id=tokens.user_id or record.owner_user_id,
            client_endpoint=tokens.client_endpoint or record.client_endpoint, last_error="",
            token_issued_at=time.time()))
        log.info("portal re-authorized", extra={"member_id": member_id, "user_id": tokens.user_id})
        return saved


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()

