"""Single-flight token refresh across every process and host.

Bitrix24 refresh tokens are single-use and rotate: two workers refreshing the same chain means the
second one burns a dead token and the portal is lost. So a refresh (1) takes a per-portal Redis
lock with an owner token and a TTL (redis-py `Lock`: SET NX PX + Lua release), (2) re-reads the
record — another worker may have refreshed while we waited, (3) calls the OAuth server, (4) saves
compare-and-set on the refresh token it used (Lua, see `store.swap_tokens`), (5) releases. A
process killed while holding the lock blocks the portal for at most the lock TTL.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from ..errors import PortalNeedsReauth, PortalUninstalled, PortalUnknown, RefreshBusy
from ..observability import metrics
from ..storage import keys
from ..storage.installations import Installation, InstallationStore, PortalState
from .oauth import InvalidGrant, OAuthClient, OAuthError

log = logging.getLogger(__name__)

LOCK_TTL = 15.0
LOCK_WAIT = 20.0
EXPIRY_LEEWAY = 30.0


REAUTH_MESSAGE = "The portal's authorization expired: an administrator must open the app or re-authorize it."


class RefreshLock(Protocol):
    def acquire(self) -> bool:
        """Wait for the lock (bounded); False when it stayed taken."""

    def release(self) -> None: ...


LockFactory = Callable[[str], RefreshLock]


def redis_locks(client: redis.Redis, *, ttl: float = LOCK_TTL, wait: float = LOCK_WAIT) -> LockFactory:
    """Per-portal refresh locks shared by every process and host (storage/keys.py `refresh_lock`)."""
    def lock(member_id: str) -> RefreshLock:
        return Lock(client, keys.refresh_lock(member_id), timeout=ttl, blocking=True, blocking_timeout=wait,
                    sleep=0.05, thread_local=False)
    return lock


class TokenManager:
    def __init__(self, store: InstallationStore, oauth: OAuthClient, locks: LockFactory) -> None:
        self._store = store
        self._oauth = oauth
        self._locks = locks

    def usable(self, member_id: str) -> Installation:
        """The record with an access token believed valid; refreshes first when the stored expiry passed."""
        record = self.require(member_id)
        if record.token_expired(leeway=EXPIRY_LEEWAY):
            return self.refresh(member_id, record.access_token)
        return record

    def require(self, member_id: str) -> Installation:
        record = self._store.get(member_id)
        if record is None:
            raise PortalUnknown(member_id, "This portal has not installed the app.")
        if record.state == PortalState.UNINSTALLED:
            raise PortalUninstalled(member_id, "The app was uninstalled from this portal.")
        if record.state == PortalState.NEEDS_REAUTH or not record.has_tokens:
            raise PortalNeedsReauth(member_id, record.last_error or REAUTH_MESSAGE)
        return record

    def refresh(self, member_id: str, stale_access_token: str | None) -> Installation:
        """Replace `stale_access_token`, once across all processes; returns the fresh record."""
        record = self.require(member_id)
        if record.access_token != stale_access_token and not record.token_expired(leeway=EXPIRY_LEEWAY):
            return record
        lock = self._locks(member_id)
        if not lock.acquire():
            raise RefreshBusy(f"token refresh for {member_id} is still running elsewhere")
        try:
            record = self.require(member_id)
            if record.access_token != stale_access_token and not record.token_expired(leeway=EXPIRY_LEEWAY):
                return record
            return self._refresh_locked(record)
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("refresh lock expired before release", extra={"member_id": member_id})

    def _refresh_locked(self, record: Installation) -> Installation:
        member_id = record.member_id
        try:
            tokens = self._oauth.refresh(record.refresh_token or "")
        except InvalidGrant as exc:
            metrics.token_refresh(ok=False)
            again = self._store.get(member_id)
            if again is not None and again.refresh_token != record.refresh_token and again.has_tokens:
                return again
            message = ("The portal's refresh token was rejected (invalid_grant): an administrator must open "
                       "the app in Bitrix24 or re-authorize it at /oauth/authorize.")
            self._store.needs_reauth(member_id, f"invalid_grant: {exc.description}"[:300])
            log.warning("refresh rejected, portal needs re-authorization", extra={"member_id": member_id})
            raise PortalNeedsReauth(member_id, message) from None
        except OAuthError:
            metrics.token_refresh(ok=False)
            raise
        metrics.token_refresh(ok=tokens.member_id == member_id)
        if tokens.member_id != member_id:
            log.error("refresh answered for another portal; not saved", extra={"member_id": member_id})
            raise OAuthError("invalid_response", "The OAuth server answered for another portal.")
        saved = self._store.swap_tokens(member_id, record.refresh_token or "", tokens.access_token,
                                        tokens.refresh_token, tokens.expires_at, last_error="")
        if not saved:
            log.warning("stored chain changed during refresh; keeping the stored one", extra={"member_id": member_id})
        elif tokens.client_endpoint and tokens.client_endpoint != record.client_endpoint:
            self._store.update(member_id, client_endpoint=tokens.client_endpoint,
                               domain=urlsplit(tokens.client_endpoint).netloc.lower())
        log.info("token refreshed", extra={"member_id": member_id, "saved": saved})
        return self.require(member_id)
