"""`POST /events`: ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL from the portal's event queue.

Events have no retries (docs/bitrix24-protocol.md §1.6), so each is verified, stored and answered at
once; re-binding after an update runs in the background. An event is authenticated by the stored
application_token (constant-time compare); an install or update event whose token is not stored yet
is verified through app.info. An install or update event may replace the stored application_token
only when its access token belongs to a portal administrator (asked with that token, `user.admin`)
and its `data[VERSION]` is not older than the stored one: a portal's non-admin user holds genuine
tokens too, and a captured older event could otherwise be replayed (docs/DESIGN.md §4, §10).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from ..coerce import to_int
from ..errors import Forbidden, Unverified
from ..storage.installations import InstallationStore
from ..storage.purge import purge_portal_data, purge_user_tokens
from .binding import Binder
from .frames import unflatten
from .lifecycle import activate, application_token_matches
from .verification import Verifier

log = logging.getLogger(__name__)

INSTALL_EVENTS = ("ONAPPINSTALL", "ONAPPUPDATE")


@dataclass(frozen=True)
class EventOutcome:
    event: str
    member_id: str
    message: str = "ok"


class LifecycleEvents:
    def __init__(self, *, store: InstallationStore, verifier: Verifier, binder: Binder, redis_client: redis.Redis
                 ) -> None:
        self._store = store
        self._verifier = verifier
        self._binder = binder
        self._redis = redis_client

    def handle(self, form: Mapping[str, str]) -> EventOutcome:
        """Raises Unverified (or Forbidden) when the event cannot be believed; nothing changes then."""
        payload = unflatten(form)
        event = str(payload.get("event", "")).upper()
        auth, data = _section(payload, "auth"), _section(payload, "data")
        member_id = str(auth.get("member_id", ""))
        if not member_id:
            raise Forbidden("missing auth[member_id]")
        if event in INSTALL_EVENTS:
            return self._install(event, member_id, auth, data)
        if not application_token_matches(self._store, member_id, str(auth.get("application_token", ""))):
            log.warning("event rejected: application_token mismatch", extra={"event": event[:40]})
            raise Forbidden("application_token does not match")
        if event == "ONAPPUNINSTALL":
            return self._uninstall(member_id, data)
        return EventOutcome(event, member_id, "ignored: not subscribed")

    def _install(self, event: str, member_id: str, auth: dict[str, Any], data: dict[str, Any]) -> EventOutcome:
        access_token = str(auth.get("access_token", ""))
        application_token = str(auth.get("application_token", ""))
        if not access_token or not application_token:
            raise Unverified("missing auth[access_token] or auth[application_token]")
        try:
            info = self._verifier.token(access_token, member_id, str(auth.get("domain", "")))
        except Unverified as exc:
            log.warning("event rejected", extra={"event": event, "reason": str(exc)[:200]})
            raise Unverified("the event's token could not be verified") from None
        record = self._store.get(member_id)
        version = to_int(data.get("VERSION")) or info.version
        if record is not None and version < record.app_version:
            log.warning("event rejected: older version", extra={"event": event, "member_id": member_id,
                                                                "version": version, "stored": record.app_version})
            raise Forbidden(f"the event is for version {version}, older than the installed {record.app_version}")
        if not self._verifier.admin(member_id, info.client_endpoint, access_token):
            log.warning("event rejected: not an administrator's token", extra={"event": event, "member_id": member_id})
            raise Forbidden("the event's token does not belong to a portal administrator")
        fresh = record is None or record.chain_dead
        if fresh:
            expires_at = float(to_int(auth.get("expires")) or time.time() + (to_int(auth.get("expires_in")) or 3600))
            activate(self._store, info, access_token, str(auth.get("refresh_token", "")), expires_at,
                     to_int(auth.get("user_id")) or info.user_id, application_token=application_token,
                     app_version=version)
        else:
            self._store.update(member_id, application_token=application_token, app_version=version,
                               plan=info.status, scope=info.scope)
        log.info("lifecycle event accepted", extra={"event": event, "member_id": member_id})
        if fresh or event == "ONAPPUPDATE":
            # An update wipes the app's bindings (§1.4); a UI install already bound them in its installer.
            self._binder.bind_later(member_id)
        return EventOutcome(event, member_id)

    def _uninstall(self, member_id: str, data: dict[str, Any]) -> EventOutcome:
        self._store.uninstall(member_id, "uninstalled from the portal")
        clean = str(data.get("CLEAN", "0")) in ("1", "Y", "true")
        if clean:
            purge_portal_data(self._redis, member_id)
        else:
            purge_user_tokens(self._redis, member_id)
        log.info("portal uninstalled", extra={"member_id": member_id, "clean": clean})
        return EventOutcome("ONAPPUNINSTALL", member_id)


def _section(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}
