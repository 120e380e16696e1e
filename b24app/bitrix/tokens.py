"""Single-flight token refresh across every process and host, however slowly the OAuth server answers.

Bitrix24 refresh tokens are single-use and rotate: two workers refreshing the same chain means the
second one burns a dead token and the portal is lost. So a refresh (1) takes a per-portal Redis lock
with an owner token (redis-py `Lock`: SET NX PX + Lua release), (2) re-reads the record — another
worker may have refreshed while we waited, (3) calls the OAuth server, (4) saves compare-and-set on the
refresh token it used (Lua, see `store.swap_tokens`): that is the fencing check, a holder whose answer
comes late never overwrites a newer chain; (5) releases.

The lock is a lease of LEASE seconds, renewed every LEASE/4 by a thread of the holder for as long as the
refresh runs, so a slow OAuth answer (up to its 30 s timeout) keeps it, while a killed holder delays the
others by LEASE at most. Others wait up to REFRESH_WAIT (longer than a lease, so a dead holder's lapses
within it) for a refresh in flight — within the portal's share of waiting threads (bitrix/bulkhead.py) —
and then answer 503 (RefreshBusy): never a second refresh with the same token.

One window is inherent to single-use refresh tokens: a holder killed after the OAuth server consumed the
refresh token and before its answer was saved loses the chain (the answer dies with the process); the
next refresh gets invalid_grant and the portal needs re-authorization. Nothing else loses a portal.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Protocol
from urllib.parse import urlsplit

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from ..errors import PortalNeedsReauth, PortalUninstalled, PortalUnknown, RefreshBusy
from ..observability import metrics
from ..storage import keys
from ..storage.installations import Installation, InstallationStore, PortalState
from .bulkhead import Bulkhead
from .oauth import InvalidGrant, OAuthClient, OAuthError

log = logging.getLogger(__name__)

LEASE = 4.0
REFRESH_WAIT = 6.0
EXPIRY_LEEWAY = 30.0


REAUTH_MESSAGE = "The portal's authorization expired: an administrator must open the app or re-authorize it."


class RefreshLock(Protocol):
    def acquire(self, *, blocking: bool | None = None) -> bool:
        """Take the lock, waiting (bounded) when `blocking`; False when it stayed taken."""

    def reacquire(self) -> bool:
        """Renew the lease; raises when it was lost."""

    def release(self) -> None: ...


LockFactory = Callable[[str], RefreshLock]


class _Unread(Enum):
    UNREAD = "unread"


UNREAD = _Unread.UNREAD  # the record was not read by the caller: read it from the store


def redis_locks(client: redis.Redis, *, lease: float = LEASE, wait: float = REFRESH_WAIT) -> LockFactory:
    """Per-portal refresh locks shared by every process and host (storage/keys.py `refresh_lock`)."""
    def lock(member_id: str) -> RefreshLock:
        return Lock(client, keys.refresh_lock(member_id), timeout=lease, blocking=True, blocking_timeout=wait,
                    sleep=0.05, thread_local=False)
    return lock


class TokenManager:
    def __init__(self, store: InstallationStore, oauth: OAuthClient, locks: LockFactory, *,
                 bulkhead: Bulkhead | None = None, renew_every: float = LEASE / 4) -> None:
        self._store = store
        self._oauth = oauth
        self._locks = locks
        self._bulkhead = bulkhead
        self._renew_every = renew_every

    def usable(self, member_id: str, found: Installation | _Unread | None = UNREAD) -> Installation:
        """The record with an access token believed valid; refreshes first when the stored expiry passed.
        `found`: the record as the caller just read it (None: there is none), instead of reading it here."""
        record = self.require(member_id, found)
        if record.token_expired(leeway=EXPIRY_LEEWAY):
            return self.refresh(member_id, record.access_token)
        return record

    def installed(self, member_id: str, found: Installation | _Unread | None = UNREAD) -> Installation:
        """The record of a portal that has the app installed, whatever its chain's state."""
        record = self._store.get(member_id) if isinstance(found, _Unread) else found
        if record is None:
            raise PortalUnknown(member_id, "This portal has not installed the app.")
        if record.state == PortalState.UNINSTALLED:
            raise PortalUninstalled(member_id, "The app was uninstalled from this portal.")
        return record

    def require(self, member_id: str, found: Installation | _Unread | None = UNREAD) -> Installation:
        """The record of a portal whose stored chain can be called with."""
        record = self.installed(member_id, found)
        if record.state == PortalState.NEEDS_REAUTH or not record.has_tokens:
            raise PortalNeedsReauth(member_id, record.last_error or REAUTH_MESSAGE)
        return record

    def refresh(self, member_id: str, stale_access_token: str | None) -> Installation:
        """Replace `stale_access_token`, once across all processes; returns the fresh record."""
        record = self.require(member_id)
        if record.access_token != stale_access_token and not record.token_expired(leeway=EXPIRY_LEEWAY):
            return record
        lock = self._locks(member_id)
        if not lock.acquire(blocking=False) and not self._wait_for(lock, member_id):
            raise RefreshBusy("The portal's authorization is being renewed; try again in a few seconds.")
        try:
            with self._lease(lock, member_id):
                record = self.require(member_id)
                if record.access_token != stale_access_token and not record.token_expired(leeway=EXPIRY_LEEWAY):
                    return record
                return self._refresh_locked(record)
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("refresh lease lost before release", extra={"member_id": member_id})

    def _wait_for(self, lock: RefreshLock, member_id: str) -> bool:
        """Wait for another process's refresh, if the portal's share of waiting threads allows."""
        if self._bulkhead is None:
            return lock.acquire(blocking=True)
        with self._bulkhead.wait_slot(member_id, "refresh") as may_wait:
            return may_wait and lock.acquire(blocking=True)

    @contextmanager
    def _lease(self, lock: RefreshLock, member_id: str) -> Iterator[None]:
        """Renew the lock while the block runs, so a slow OAuth answer never lets a second refresh in."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self._renew_every):
                try:
                    lock.reacquire()
                except (LockError, redis.RedisError) as exc:
                    log.warning("refresh lease could not be renewed", extra={"member_id": member_id,
                                                                             "error": type(exc).__name__})
                    return

        renewer = threading.Thread(target=renew, name="b24-refresh-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join(timeout=1.0)

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
