"""What the app remembers about deals (storage/deal_links.py), on a single Redis and on a Redis Cluster."""
from __future__ import annotations

import json

import redis

from b24app.storage import keys
from b24app.storage.deal_links import DealLink, DealLinks

MEMBER = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER = "ffffeeeeddddccccbbbbaaaa99998888"


def test_the_deals_showing_a_code_are_read_from_the_portals_own_hash(redis_client: redis.Redis) -> None:
    links = DealLinks(redis_client)
    for deal_id, code in ((12, "missedCall"), (3, "missedCall"), (7, "callStatus")):
        links.remember(MEMBER, deal_id, 100 + deal_id, code)
    links.remember(OTHER, 4, 104, "missedCall")
    assert links.showing(MEMBER, "missedCall") == [3, 12], "lowest ids first, this portal only"
    assert links.showing(MEMBER, "missedCall", limit=1) == [3]
    assert links.get(MEMBER, 7) == DealLink(107, "callStatus")
    links.forget(MEMBER, 3)
    assert links.get(MEMBER, 3) is None
    assert links.showing(MEMBER, "missedCall") == [12]
    assert redis_client.type(keys.deals(MEMBER)) == b"hash"


def test_a_link_kept_by_an_earlier_release_is_moved_when_first_read(redis_client: redis.Redis) -> None:
    links = DealLinks(redis_client)
    redis_client.set(keys.legacy_deal(MEMBER, 9), json.dumps({"activity_id": 55, "code": "missedCall"}))
    assert links.get(MEMBER, 9) == DealLink(55, "missedCall")
    assert redis_client.exists(keys.legacy_deal(MEMBER, 9)) == 0
    assert links.showing(MEMBER, "missedCall") == [9]


def test_a_garbled_link_reads_as_none_and_is_not_listed(redis_client: redis.Redis) -> None:
    links = DealLinks(redis_client)
    redis_client.hset(keys.deals(MEMBER), mapping={"5": "{not json", "6": json.dumps({"code": "missedCall"})})
    assert links.get(MEMBER, 5) is None
    assert links.get(MEMBER, 6) is None
    assert links.showing(MEMBER, "missedCall") == []
