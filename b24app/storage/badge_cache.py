"""The per-portal cache of the badge list, so UI reads do not burn the portal's rate budget.

`b24:cache:{MEMBER}:badges` (storage/keys.py) is a hash: `data`, the list as the JSON bytes the API
sends, and `gen`, a generation that every write bumps. A listing fetched from the portal is stored only
if no write happened since it was requested (the generation is unchanged), so a slow read never puts
back a list that a write made stale. A hit is served only while the portal's record is active with
tokens: an uninstalled or dead portal never answers from the cache. Both keys share the portal's hash
tag, so the check and the read are one script on one slot.
"""
from __future__ import annotations

import redis

from . import keys
from .connection import text
from .installations import lua_usable

DEFAULT_TTL = 30

_READ = f"""
local data = redis.call('HGET', KEYS[1], 'data')
local gen = redis.call('HGET', KEYS[1], 'gen') or '0'
if not {lua_usable("KEYS[2]")} then data = false end
return {{data or false, gen}}
"""
_FILL = """
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'gen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
_BUMP = """
redis.call('HDEL', KEYS[1], 'data')
redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class BadgeListCache:
    def __init__(self, client: redis.Redis, *, ttl: int = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._read = client.register_script(_READ)
        self._fill = client.register_script(_FILL)
        self._bump = client.register_script(_BUMP)

    def read(self, member_id: str) -> tuple[bytes | None, str]:
        """The cached list (None on a miss or for a portal that cannot be served) and the generation
        to hand back to `fill`. One round-trip."""
        data, generation = self._read(keys=[keys.badge_cache(member_id), keys.portal(member_id)])
        return (data or None), text(generation)

    def fill(self, member_id: str, generation: str, data: bytes) -> bool:
        return bool(self._fill(keys=[keys.badge_cache(member_id)], args=[generation, data, self.ttl]))

    def invalidate(self, member_id: str) -> None:
        self._bump(keys=[keys.badge_cache(member_id)], args=[self.ttl])
