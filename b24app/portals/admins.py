"""Whether a UI session's user is still a portal administrator, asked again at most once a minute.

A session records the admin flag at the moment it was minted (up to 15 minutes earlier); a demoted or
fired admin must lose the catalogue's write access sooner (docs/DESIGN.md §4). The portal is asked
with the user's own token (`user.admin`), the only one it answers that question for. When that token
can no longer answer (expired, revoked, or no longer kept) the session's word stands, for the window,
rather than lock an admin out; when the portal cannot be reached it stands for this request only.
"""
from __future__ import annotations

import logging

from ..bitrix.client import call_with_token
from ..bitrix.errors import AccessDenied, B24Error, OwnerCannotAct, TokenError
from ..bitrix.transport import Transport
from ..storage.installations import InstallationStore
from ..storage.user_tokens import UserTokens
from .verification import VerifiedFrame, truthy

log = logging.getLogger(__name__)


class AdminCheck:
    def __init__(self, *, store: InstallationStore, users: UserTokens, http: Transport) -> None:
        self._store = store
        self._users = users
        self._http = http

    def remember(self, verified: VerifiedFrame, session_ttl: int) -> None:
        """Keep the frame's token for the session's life (never longer than the token's own)."""
        frame = verified.frame
        self._users.keep(verified.info.member_id, verified.user_id, frame.auth_id, verified.is_admin,
                         min(session_ttl, frame.auth_expires))

    def still_admin(self, member_id: str, user_id: int) -> bool:
        """For a session that says the user is an admin: does the portal (still) say so?"""
        answer = self._users.admin_answer(member_id, user_id)
        if answer is not None:
            return answer
        token = self._users.token(member_id, user_id)
        if token is None:
            # Nothing to ask with (the token went with a Redis that lost its data, or was evicted): the session's
            # word stands, and is kept like an answer, so the window's other writes do not look again. A frame
            # the user opens meanwhile brings the portal's own word, which replaces it (`remember`).
            self._users.remember_answer(member_id, user_id, True)
            return True
        record = self._store.get(member_id)
        if record is None:
            return True
        try:
            result = call_with_token(self._http, record.client_endpoint, token, "user.admin").result
        except TokenError:
            answer = True
        except (OwnerCannotAct, AccessDenied):
            answer = False
        except B24Error as exc:
            log.info("admin re-check not possible now", extra={"member_id": member_id, "error": exc.code})
            return True
        else:
            answer = truthy(result)
        self._users.remember_answer(member_id, user_id, answer)
        if not answer:
            log.info("session user is no longer an administrator", extra={"member_id": member_id,
                                                                          "user_id": user_id})
        return answer
