"""Deleting what the app keeps for a portal besides its record: caches, deal links, idempotency
results, OAuth states, limiter state and the refresh lock (the patterns of storage/keys.py)."""
from __future__ import annotations

import redis

from . import keys


def purge_portal_data(client: redis.Redis, member_id: str) -> int:
    """Returns how many keys were deleted."""
    removed = 0
    for pattern in keys.purge_patterns(member_id):
        found = list(client.scan_iter(match=pattern, count=500))
        if found:
            removed += int(client.delete(*found))
    return removed
