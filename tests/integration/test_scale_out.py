"""The app on a 3-master Redis Cluster and behind Sentinel (docs/DESIGN.md §3, §6): the whole lifecycle of
a portal on the cluster, a lost master answered 503 and not 500, and a Sentinel failover the app rides out."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from b24app.storage import keys
from b24app.storage.badge_cache import QUIET
from b24app.storage.connection import connect, is_cluster
from b24app.storage.installations import PortalState
from tests.integration.api import session_for
from tests.support.redis_servers import RedisCluster3, SentinelGroup
from tests.support.wiring import stack

SEED = {"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}


@pytest.fixture
def b24(b24_on_both: Any) -> Any:
    return b24_on_both


def test_a_portals_whole_life(b24: Any) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    assert api.post("/badges", json=SEED).status_code == 201
    assert [b["code"] for b in api.get("/badges").json()["badges"]] == ["missedCall"]
    time.sleep(QUIET)  # past the write's quiet second, a list read is kept
    api.get("/badges")
    assert api.get("/badges").headers["X-Cache"] == "hit"
    b24.sandbox.expire_tokens(portal)
    assert api.post("/badges", json={**SEED, "code": "callStatus"}).status_code == 201
    assert b24.sandbox.sandbox.counters.portal(portal.member_id)["oauth"]["refresh_ok"] == 1
    assert api.post("/deals/3/badge", json={"code": "missedCall"}).status_code == 401, "the user's token expired too"
    api = session_for(b24, portal)
    shown = api.post("/deals/3/badge", json={"code": "missedCall"})
    assert shown.status_code == 201, shown.text
    assert b24.sandbox.deal_badge(portal, 3).code == "missedCall"
    assert api.delete("/deals/3/badge").status_code == 204
    (delivery,) = b24.sandbox.uninstall(portal, clean=True)
    assert delivery.status == 200
    record = b24.services.store.get(portal.member_id)
    assert (record.state, record.has_tokens) == (PortalState.UNINSTALLED, False)
    assert api.get("/badges").status_code == 410
    client = b24.services.redis
    left = [k.decode() for k in client.scan_iter(match=f"*{{{portal.member_id}}}*")]
    assert left == [keys.portal(portal.member_id)], "only the uninstalled record remains"


def test_a_portals_keys_share_one_slot_of_the_cluster(redis_cluster: Any) -> None:
    client = connect(redis_cluster.url)
    assert is_cluster(client)
    member = "0123456789abcdef0123456789abcdef"
    slots = {client.keyslot(key) for key in (
        keys.portal(member), keys.refresh_lock(member), keys.rate(member), keys.operating(member),
        keys.badge_cache(member), keys.deals(member), keys.deal_lock(member, 7), keys.idempotency(member, "0" * 64),
        keys.oauth_state(member, "n"), keys.user_token(member, 3), keys.admin_answer(member, 3))}
    assert len(slots) == 1


def test_a_lost_master_is_an_outage_not_an_error(tmp_path: Path) -> None:
    cluster = RedisCluster3(tmp_path / "cluster")
    cluster.start()
    try:
        with stack(REDIS_URL=cluster.url) as running:
            portal = running.installed_portal()
            api = session_for(running, portal)
            assert api.get("/badges").status_code == 200
            owner = running.services.redis.get_node_from_key(keys.portal(portal.member_id)).port
            doomed = cluster.processes[cluster.ports.index(owner)]
            doomed.kill()
            doomed.wait(10)
            survivor = redis.Redis(port=next(port for port in cluster.ports if port != owner))
            deadline = time.monotonic() + 20
            while survivor.execute_command("CLUSTER INFO").get("cluster_state") != "fail":
                assert time.monotonic() < deadline, "the cluster never noticed the lost master"
                time.sleep(0.1)
            answers = [api.get("/badges") for _ in range(3)] + [
                requests.get(f"{running.url}/readyz", timeout=30),
                requests.post(f"{running.url}/events", timeout=30, data={
                    "event": "ONAPPUNINSTALL", "auth[member_id]": portal.member_id, "auth[application_token]": "x"})]
            assert {a.status_code for a in answers} == {503}, [(a.status_code, a.text[:100]) for a in answers]
            assert all(a.headers.get("Retry-After") for a in answers if "readyz" not in (a.request.url or ""))
    finally:
        cluster.stop()


@pytest.mark.slow
def test_a_sentinel_failover_loses_no_portal(tmp_path: Path) -> None:
    group = SentinelGroup(tmp_path)
    group.start()
    try:
        with stack(REDIS_URL=group.url) as running:
            portal = running.installed_portal()
            api = session_for(running, portal)
            assert api.post("/badges", json=SEED).status_code == 201
            time.sleep(0.5)  # the replica has the writes (asynchronous replication)
            before = group.primary()
            group.kill_primary()
            deadline = time.monotonic() + 30
            while group.primary() == before:
                assert time.monotonic() < deadline, "the sentinel never promoted the replica"
                time.sleep(0.2)
            while True:
                response = api.get("/badges")
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
                assert time.monotonic() < deadline, "the app did not follow the failover"
                time.sleep(0.2)
            assert [b["code"] for b in response.json()["badges"]] == ["missedCall"]
            record = running.services.store.get(portal.member_id)
            assert record is not None and record.state == PortalState.ACTIVE
            assert api.post("/badges", json={**SEED, "code": "afterFailover"}).status_code == 201
            assert group.primary()[1] == group.replica_port
            assert redis.Redis(port=group.replica_port).exists(keys.portal(portal.member_id))
    finally:
        group.stop()
