"""Activating a portal with a token chain the OAuth server vouched for, and recognising its later calls.

Install (the installer POST and ONAPPINSTALL), an admin's owner hand-over and an OAuth
re-authorization all end here: the store's `activate` transition with a complete record
(storage/installations.py has the state diagram). Events and robot runs then prove their origin with
the application_token stored at install (docs/bitrix24-protocol.md §1.6, §11.3).
"""
from __future__ import annotations

import hmac
import time

from ..bitrix.oauth import AppInfo
from ..errors import IncompleteFrame
from ..storage.installations import Installation, InstallationStore, PortalState


def activate(store: InstallationStore, info: AppInfo, access_token: str, refresh_token: str, expires_at: float,
             user_id: int | None, *, application_token: str | None = None,
             app_version: int | None = None) -> Installation:
    """Store a fresh chain for the portal `info` names; an application_token not given is kept, unless
    the portal had uninstalled (its old one died with the uninstall)."""
    if not refresh_token:
        raise IncompleteFrame("the request carries no refresh token")
    previous = store.get(info.member_id)
    kept = previous.application_token if previous and previous.state != PortalState.UNINSTALLED else None
    return store.activate(Installation(
        member_id=info.member_id, domain=info.domain, client_endpoint=info.client_endpoint, plan=info.status,
        scope=info.scope, app_version=app_version or info.version, owner_user_id=user_id,
        access_token=access_token, refresh_token=refresh_token, expires_at=expires_at,
        application_token=application_token or kept, token_issued_at=time.time(), last_error=""))


def application_token_matches(store: InstallationStore, member_id: str, given: str) -> bool:
    """Constant-time check of a call's `auth[application_token]` against the stored one."""
    record = store.get(member_id) if member_id else None
    stored = record.application_token if record is not None else None
    if not stored or not given:
        return False
    return hmac.compare_digest(stored.encode(), given.encode())
