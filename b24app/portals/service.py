"""The portal use cases the web layer calls: install, open the app, mint UI sessions.

A verified admin's frame brings a fresh token chain; it is stored on install, and it replaces a dead
or missing chain when an admin opens the app (owner hand-over, docs/DESIGN.md §6).
"""
from __future__ import annotations

import logging
import time

from ..errors import Forbidden
from ..storage.installations import Installation, InstallationStore
from .admins import AdminCheck
from .frames import FrameRequest
from .lifecycle import activate
from .sessions import SessionSigner
from .verification import VerifiedFrame, Verifier

log = logging.getLogger(__name__)


class Portals:
    def __init__(self, *, store: InstallationStore, verifier: Verifier, sessions: SessionSigner,
                 admins: AdminCheck) -> None:
        self._store = store
        self._verifier = verifier
        self._sessions = sessions
        self._admins = admins

    def install(self, frame: FrameRequest) -> Installation:
        """The installer POST: verify (installed=false is expected here) and store; binding comes next."""
        verified = self._verifier.frame(frame, installing=True)
        if not verified.is_admin:
            raise Forbidden("only a portal administrator can install this app")
        return activate(self._store, verified.info, frame.auth_id, frame.refresh_id,
                        time.time() + frame.auth_expires, verified.user_id,
                        application_token=frame.application_token or None)

    def open_app(self, frame: FrameRequest) -> tuple[VerifiedFrame, Installation | None]:
        """Verify a frame; an admin's fresh chain replaces a dead or missing one (owner hand-over)."""
        verified = self._verifier.frame(frame)
        record = self._store.get(frame.member_id)
        if verified.is_admin and (record is None or record.chain_dead) and frame.refresh_id:
            record = activate(self._store, verified.info, frame.auth_id, frame.refresh_id,
                              time.time() + frame.auth_expires, verified.user_id)
            log.info("token chain handed over", extra={"member_id": frame.member_id, "user_id": verified.user_id})
        return verified, record

    def session_for(self, verified: VerifiedFrame) -> tuple[str, int]:
        """A UI session token for the verified user, and its lifetime in seconds. The frame's own token
        is kept for the session's life, so that writes can re-check the admin flag with it."""
        token = self._sessions.issue(verified.info.member_id, verified.user_id, verified.is_admin,
                                     verified.info.domain)
        self._admins.remember(verified, self._sessions.ttl)
        return token, self._sessions.ttl
