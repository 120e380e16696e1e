"""Which configurable activity shows this app's badge on a deal: `b24:deals:{MEMBER}` (storage/keys.py).

Bitrix24 cannot be asked "which activity of this app is open on deal N" cheaply, so the app remembers
the activity it created, per portal and deal, and serialises changes of one deal's badge with a lock.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import redis
from redis.lock import Lock

from ..coerce import to_int
from . import keys

LOCK_TTL = 30.0
LOCK_WAIT = 10.0


@dataclass(frozen=True)
class DealLink:
    activity_id: int
    code: str


class DealLinks:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def lock(self, member_id: str, deal_id: int) -> Lock:
        """Held while one request changes the deal's badge (a context manager)."""
        return Lock(self._redis, keys.deal_lock(member_id, deal_id), timeout=LOCK_TTL, blocking_timeout=LOCK_WAIT,
                    thread_local=False)

    def get(self, member_id: str, deal_id: int) -> DealLink | None:
        # Both places in one round-trip (one hash slot): most deals have no badge, and asking twice for
        # nothing would double the cost of every deal tab opened.
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(keys.deals(member_id), str(deal_id))
        pipe.get(keys.legacy_deal(member_id, deal_id))
        raw, legacy = pipe.execute()
        if raw is None:
            return self._move_legacy(member_id, deal_id, legacy)
        return _parse(raw)

    def remember(self, member_id: str, deal_id: int, activity_id: int, code: str) -> None:
        self._redis.hset(keys.deals(member_id), str(deal_id), json.dumps({"activity_id": activity_id, "code": code}))

    def forget(self, member_id: str, deal_id: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(keys.deals(member_id), str(deal_id))
        pipe.delete(keys.legacy_deal(member_id, deal_id))
        pipe.execute()

    def showing(self, member_id: str, code: str, limit: int = 50) -> list[int]:
        """The deals this app shows `code` on (at most `limit`, lowest ids first), as remembered."""
        found = []
        for field, raw in self._redis.hscan_iter(keys.deals(member_id), count=500):
            link = _parse(raw)
            deal_id = to_int(field)
            if link is not None and link.code == code and deal_id is not None:
                found.append(deal_id)
        return sorted(found)[:limit]

    def _move_legacy(self, member_id: str, deal_id: int, raw: bytes | str | None) -> DealLink | None:
        link = _parse(raw)
        if link is not None:
            self.remember(member_id, deal_id, link.activity_id, link.code)
            self._redis.delete(keys.legacy_deal(member_id, deal_id))
        return link


def _parse(raw: bytes | str | None) -> DealLink | None:
    try:
        stored = json.loads(raw) if raw else {}
    except ValueError:
        stored = {}
    activity_id = to_int(stored.get("activity_id")) if isinstance(stored, dict) else None
    if activity_id is None:
        return None
    return DealLink(activity_id, str(stored.get("code", "")))
