"""Deleting what the app keeps for a portal besides its record: caches, deal links, idempotency
results, OAuth states, limiter state, the refresh lock and its users' tokens (storage/keys.py)."""
from __future__ import annotations

from collections.abc import Iterable

import redis

from . import keys


def purge_portal_data(client: redis.Redis, member_id: str) -> int:
    """Everything but the record (an uninstall with CLEAN, `b24 forget`); returns how many keys went."""
    return _delete_matching(client, keys.purge_patterns(member_id))


def purge_user_tokens(client: redis.Redis, member_id: str) -> int:
    """The portal users' own tokens and admin answers (every uninstall)."""
    return _delete_matching(client, keys.user_patterns(member_id))


def _delete_matching(client: redis.Redis, patterns: Iterable[str]) -> int:
    removed = 0
    for pattern in patterns:
        found = list(client.scan_iter(match=pattern, count=500))
        if found:
            removed += int(client.delete(*found))
    return removed
