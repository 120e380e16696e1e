"""Re-authorization through Bitrix24's OAuth code flow, for a portal whose chain died.

`/oauth/authorize` sends the user to the portal's `/oauth/authorize/` with a signed, single-use,
expiring `state`; `/oauth/callback` exchanges the code (30 s lifetime) and stores the new chain
(docs/bitrix24-protocol.md §2.2).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

from ..bitrix.oauth import OAuthClient, OAuthError, OAuthUnavailable
from ..errors import IncompleteFrame, InvalidSession, PortalNotInstalled, Unverified, VerifierUnavailable
from ..storage.installations import Installation, InstallationStore
from .frames import portal_origin
from .sessions import StateSigner

log = logging.getLogger(__name__)


class Reauthorization:
    def __init__(self, *, store: InstallationStore, oauth: OAuthClient, states: StateSigner) -> None:
        self._store = store
        self._oauth = oauth
        self._states = states

    def authorize_url(self, domain: str) -> str:
        record = self._store.find_by_domain(domain.strip().lower())
        if record is None:
            raise PortalNotInstalled("this portal has not installed the app")
        state = self._states.issue(record.member_id, record.domain)
        return self._oauth.authorize_url(portal_origin(record.client_endpoint), state)

    def complete(self, args: Mapping[str, str]) -> Installation:
        code, state = args.get("code", ""), args.get("state", "")
        member_id, domain = args.get("member_id", ""), args.get("domain", "").lower()
        if not code or not state or not member_id or not domain:
            raise IncompleteFrame("the callback lacks code, state, domain or member_id")
        try:
            self._states.consume(state, member_id, domain)
        except InvalidSession as exc:
            raise Unverified(str(exc)) from None
        try:
            tokens = self._oauth.exchange_code(code)
        except OAuthUnavailable:
            raise VerifierUnavailable("the Bitrix24 authorization server is unreachable; try again") from None
        except OAuthError as exc:
            raise Unverified(f"the authorization code was refused ({exc.code})") from None
        record = self._store.get(member_id)
        if tokens.member_id != member_id or record is None:
            raise Unverified("the authorization belongs to another portal")
        saved = self._store.activate(replace(
            record, access_token=tokens.access_token, refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at, owner_user_id=tokens.user_id or record.owner_user_id,
            client_endpoint=tokens.client_endpoint or record.client_endpoint, last_error="",
            token_issued_at=time.time()))
        log.info("portal re-authorized", extra={"member_id": member_id})
        return saved
