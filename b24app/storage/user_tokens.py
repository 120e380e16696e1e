"""What the app keeps about a portal's UI users: their own frame token and the portal's word on whether
they are an administrator (storage/keys.py `user_token`, `admin_answer`).

Bitrix24 tells whether a user is an admin only to that user's own token (`user.admin`, `profile`), so
the token that came with the frame is kept, encrypted, for as long as the UI session it opened lives;
the answer is kept a short while so that writes re-ask at most that often. Both go with the uninstall.

Every admin write needs the answer, so each process also keeps the answers it has seen until the moment
the stored one expires (its TTL, read with it): no write pays a Redis round-trip for it, and no process
trusts an answer longer than Redis keeps it, so the re-check window stays the same for all of them.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import redis

from . import keys
from .connection import text
from .crypto import TokenCipher


class UserTokens:
    def __init__(self, client: redis.Redis, cipher: TokenCipher, *, answer_ttl: int = 60,
                 clock: Callable[[], float] = time.monotonic, memo_size: int = 4096) -> None:
        self._redis = client
        self._cipher = cipher
        self.answer_ttl = answer_ttl
        self._clock = clock
        self._memo_size = memo_size
        self._answers: dict[tuple[str, int], tuple[bool, float]] = {}  # (member, user) → (answer, until)

    def keep(self, member_id: str, user_id: int, access_token: str, is_admin: bool, ttl: int) -> None:
        """The frame's token for `ttl` seconds (the session's life), and the answer just obtained."""
        pipe = self._redis.pipeline(transaction=False)
        if ttl > 0:
            pipe.set(keys.user_token(member_id, user_id), self._cipher.encrypt(access_token), ex=ttl)
        pipe.set(keys.admin_answer(member_id, user_id), "1" if is_admin else "0", ex=self.answer_ttl)
        pipe.execute()
        self._memo(member_id, user_id, is_admin, self.answer_ttl)

    def token(self, member_id: str, user_id: int) -> str | None:
        raw = self._redis.get(keys.user_token(member_id, user_id))
        return self._cipher.decrypt(text(raw)) if raw else None

    def admin_answer(self, member_id: str, user_id: int) -> bool | None:
        """The portal's latest answer, or None once it is older than `answer_ttl`."""
        seen = self._answers.get((member_id, user_id))
        if seen is not None and seen[1] > self._clock():
            return seen[0]
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.admin_answer(member_id, user_id))
        pipe.pttl(keys.admin_answer(member_id, user_id))
        raw, ttl_ms = pipe.execute()
        if raw is None:
            self._answers.pop((member_id, user_id), None)
            return None
        answer = text(raw) == "1"
        self._memo(member_id, user_id, answer, max(0, int(ttl_ms)) / 1000)
        return answer

    def remember_answer(self, member_id: str, user_id: int, is_admin: bool) -> None:
        self._redis.set(keys.admin_answer(member_id, user_id), "1" if is_admin else "0", ex=self.answer_ttl)
        self._memo(member_id, user_id, is_admin, self.answer_ttl)

    def forget_answer(self, member_id: str, user_id: int) -> None:
        """Ask the portal again at the next write, in every process (the others once their copy lapses)."""
        self._redis.delete(keys.admin_answer(member_id, user_id))
        self._answers.pop((member_id, user_id), None)

    def _memo(self, member_id: str, user_id: int, answer: bool, seconds: float) -> None:
        now = self._clock()
        if len(self._answers) >= self._memo_size:
            for key, (_answer, until) in list(self._answers.items()):  # a copy: other threads add meanwhile
                if until <= now:
                    self._answers.pop(key, None)
            if len(self._answers) >= self._memo_size:
                self._answers.clear()
        self._answers[(member_id, user_id)] = (answer, now + seconds)
