"""The per-portal cache of the badge list, so UI reads do not burn the portal's rate budget.

`b24:cache:{MEMBER}:badges` (storage/keys.py) is a hash: `data`, the list as the JSON bytes the API
sends, `gen`, a generation that every write bumps, and `w`, when (Redis time, ms) the latest write was
admitted. A listing fetched from the portal is stored only if no write happened since it was requested
(the generation is unchanged), so a slow read never puts back a list that a write made stale. A hit is
served only while the portal's chain can be called with (storage/installations.py `lua_usable`): an
uninstalled or dead portal never answers from the cache. Both keys share the portal's hash tag, so the check
and the read are one script on one slot.

A write marks the list stale in the round-trip that admits it to the portal (`lua_write_begins`, run by
bitrix/limiter.py), before it lands, and no listing requested within QUIET of that mark is stored: the
write may not have landed when it was read. So a write that came back within QUIET of its admission needs
no round-trip of its own afterwards (`written`); a slower one bumps the generation once it is done.

Every drop is announced (storage/keys.py CHANGES), so processes that keep their own copies of the list
(storage/list_copies.py) drop theirs too.
"""
from __future__ import annotations

import redis

from . import keys
from .connection import text
from .installations import lua_usable
from .list_copies import ListCopies

DEFAULT_TTL = 30
QUIET = 1.0

_READ = f"""
local data = redis.call('HGET', KEYS[1], 'data')
local gen = redis.call('HGET', KEYS[1], 'gen') or '0'
if not {lua_usable("KEYS[2]")} then data = false end
if not data then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  if now_ms - tonumber(redis.call('HGET', KEYS[1], 'w') or '0') < {int(QUIET * 1000)} then gen = '' end
end
return {{data or false, gen}}
"""
_FILL = """
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'gen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _lua_drop(key: str, ttl: str) -> str:
    """Lua statements that drop the list at `key` and bump its generation."""
    return (f"redis.call('HDEL', {key}, 'data'); redis.call('HINCRBY', {key}, 'gen', 1); "
            f"redis.call('EXPIRE', {key}, {ttl}); {keys.lua_announce(key)}")


_BUMP = f"{_lua_drop('KEYS[1]', 'ARGV[1]')}; return 1"


def lua_write_begins(key: str, now_ms: str) -> str:
    """Lua statements that mark the list at `key` stale as a write is admitted at `now_ms` (Redis time)."""
    return f"{_lua_drop(key, str(DEFAULT_TTL))}; redis.call('HSET', {key}, 'w', string.format('%.0f', {now_ms}))"


class BadgeListCache:
    """`copies`: the process's own copies in front of Redis (storage/list_copies.py), if any."""

    def __init__(self, client: redis.Redis, *, ttl: int = DEFAULT_TTL, copies: ListCopies | None = None) -> None:
        self.ttl = ttl
        self.copies = copies
        self._read = client.register_script(_READ)
        self._fill = client.register_script(_FILL)
        self._bump = client.register_script(_BUMP)

    @staticmethod
    def key(member_id: str) -> str:
        """Where the list is kept: what a write names to be marked stale as it is admitted."""
        return keys.badge_cache(member_id)

    def read(self, member_id: str) -> tuple[bytes | None, str]:
        """The cached list (None on a miss or for a portal that cannot be served) and the generation
        to hand back to `fill` (empty, so that nothing is stored, within QUIET of a write). The process's
        copy when it may be served, else one round-trip."""
        copies = self.copies
        if copies is not None and (copy := copies.get(member_id)) is not None:
            return copy, ""
        ticket = copies.ticket(member_id) if copies is not None else None
        data, generation = self._read(keys=[keys.badge_cache(member_id), keys.portal(member_id)])
        if data and copies is not None and ticket is not None:
            copies.keep(member_id, data, ticket)
        return (data or None), text(generation)

    def close(self) -> None:
        """Stop the process's copies (process shutdown)."""
        if self.copies is not None:
            self.copies.close()

    def fill(self, member_id: str, generation: str, data: bytes) -> bool:
        if not generation:
            return False
        return bool(self._fill(keys=[keys.badge_cache(member_id)], args=[generation, data, self.ttl]))

    def invalidate(self, member_id: str) -> None:
        self._bump(keys=[keys.badge_cache(member_id)], args=[self.ttl])

    def written(self, member_id: str, seconds: float, *, marked: bool) -> None:
        """Writes that began `seconds` ago are done: unless each was `marked` at its admission and they all
        came back within QUIET of it (then no listing read before they landed can be stored), bump."""
        if not marked or seconds >= QUIET * 0.9:
            self.invalidate(member_id)
