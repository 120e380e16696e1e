"""What the app keeps about a portal's UI users: their own frame token and the portal's word on whether
they are an administrator (storage/keys.py `user_token`, `admin_answer`).

Bitrix24 tells whether a user is an admin only to that user's own token (`user.admin`, `profile`), so
the token that came with the frame is kept, encrypted, for as long as the UI session it opened lives;
the answer is kept a short while so that writes re-ask at most that often. Both go with the uninstall.
"""
from __future__ import annotations

import redis

from . import keys
from .connection import text
from .crypto import TokenCipher


class UserTokens:
    def __init__(self, client: redis.Redis, cipher: TokenCipher, *, answer_ttl: int = 60) -> None:
        self._redis = client
        self._cipher = cipher
        self.answer_ttl = answer_ttl

    def keep(self, member_id: str, user_id: int, access_token: str, is_admin: bool, ttl: int) -> None:
        """The frame's token for `ttl` seconds (the session's life), and the answer just obtained."""
        pipe = self._redis.pipeline(transaction=False)
        if ttl > 0:
            pipe.set(keys.user_token(member_id, user_id), self._cipher.encrypt(access_token), ex=ttl)
        pipe.set(keys.admin_answer(member_id, user_id), "1" if is_admin else "0", ex=self.answer_ttl)
        pipe.execute()

    def token(self, member_id: str, user_id: int) -> str | None:
        raw = self._redis.get(keys.user_token(member_id, user_id))
        return self._cipher.decrypt(text(raw)) if raw else None

    def admin_answer(self, member_id: str, user_id: int) -> bool | None:
        """The portal's latest answer, or None once it is older than `answer_ttl`."""
        raw = self._redis.get(keys.admin_answer(member_id, user_id))
        return None if raw is None else text(raw) == "1"

    def remember_answer(self, member_id: str, user_id: int, is_admin: bool) -> None:
        self._redis.set(keys.admin_answer(member_id, user_id), "1" if is_admin else "0", ex=self.answer_ttl)
