"""Each process's own copies of cached badge lists (storage/list_copies.py): served without Redis, and never
after a change another process made — a write, an uninstall, a dead chain — nor once Redis stops answering.
The tests through the API run on the single Redis and on the 3-master cluster."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from b24app import create_app
from b24app.storage import keys
from b24app.storage.badge_cache import QUIET
from b24app.storage.connection import connect
from b24app.storage.list_copies import Hearing, ListCopies
from b24app.web.common import services as services_of
from tests.integration.api import Api, session_for
from tests.integration.helpers import portal_requests, redis_commands
from tests.support.processes import free_port
from tests.support.redis_servers import PrivateRedis, RedisCluster3
from tests.support.wiring import serve

# Where a test is not about the PINGs' freshness, a PONG late on a busy machine must not hide a copy.
UNHURRIED = 5.0
SEED = {"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}


def _until(condition: Any, what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _copies(app: Any) -> ListCopies:
    copies = services_of(app).badges._cache.copies
    assert copies is not None
    return copies


@pytest.fixture
def b24(b24_on_both: Any) -> Any:
    return b24_on_both


@pytest.fixture
def other(b24: Any) -> Iterator[tuple[str, Any]]:
    """A second deployment of the same app on the same Redis and portal, as another process or host would be."""
    with serve(lambda _url: create_app(b24.config, configure_logs=False)) as (url, app):
        yield url, app
        _copies(app).close()


def _warm(api: Api, app: Any) -> None:
    """Read until the process holds its own copy of the list: a miss past the writes' quiet second fills
    Redis, a Redis hit fills the process."""
    _copies(app).get("warm-up")  # starts listening
    _until(lambda: _copies(app).hearing is Hearing.HEARING, "the process never heard Redis's announcements")
    time.sleep(QUIET)
    api.get("/badges")
    assert api.get("/badges").headers["X-Cache"] == "hit"


def _sessions(b24: Any, url: str, portal: Any) -> tuple[Api, Api]:
    """One badge written, then the same UI session through the first deployment and through the second."""
    writer = session_for(b24, portal)
    assert writer.post("/badges", json=SEED).status_code == 201
    b24.services.jobs.wait()
    return writer, Api(url, writer.headers["Authorization"].removeprefix("Bearer "))


def _codes(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [b["code"] for b in response.json()["badges"]]


def test_a_process_serves_its_own_copy_without_asking_redis_or_the_portal(b24: Any, monkeypatch: Any) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    assert api.post("/badges", json=SEED).status_code == 201
    b24.services.jobs.wait()
    _warm(api, b24.app)
    listed = portal_requests(b24.sandbox, portal.member_id).get("crm.activity.badge.list", 0)
    sent = redis_commands(b24.services.redis, monkeypatch)
    for _ in range(3):
        hit = api.get("/badges")
        assert (_codes(hit), hit.headers["X-Cache"]) == (["missedCall"], "hit")
    assert sent == []
    assert portal_requests(b24.sandbox, portal.member_id).get("crm.activity.badge.list", 0) == listed


def test_a_write_through_one_process_is_seen_at_once_by_another_holding_a_copy(b24: Any, other: Any,
                                                                              monkeypatch: Any) -> None:
    """Read-your-writes across processes: each write goes through the first deployment, the very next read
    through the second, which held a copy of the list until then (proven: it answered without Redis)."""
    url, app = other
    writer, reader = _sessions(b24, url, b24.installed_portal())
    sent = redis_commands(services_of(app).redis, monkeypatch)
    expected = ["missedCall"]
    for round_no in range(3):
        _warm(reader, app)
        sent.clear()
        assert _codes(reader.get("/badges")) == expected
        assert sent == [], "the second deployment answered from its own copy"
        code = f"seen{round_no}"
        assert writer.post("/badges", json={**SEED, "code": code}).status_code == 201
        expected.append(code)
        assert _codes(reader.get("/badges")) == expected
    _warm(reader, app)
    assert writer.delete("/badges/seen0").status_code == 204
    assert "seen0" not in _codes(reader.get("/badges"))


def test_a_portal_uninstalled_or_dead_through_another_process_gets_no_copy(b24: Any, other: Any) -> None:
    url, app = other
    reauth, gone = b24.installed_portal(), b24.installed_portal()
    readers = {portal.member_id: _sessions(b24, url, portal)[1] for portal in (reauth, gone)}
    for reader in readers.values():
        _warm(reader, app)
    b24.services.store.needs_reauth(reauth.member_id, "")
    b24.sandbox.uninstall(gone)
    refused = readers[reauth.member_id].get("/badges")
    assert (refused.status_code, refused.json()["error"]) == (409, "NEEDS_REAUTH")
    refused = readers[gone.member_id].get("/badges")
    assert (refused.status_code, refused.json()["error"]) == (410, "APP_UNINSTALLED")


def test_a_lost_subscription_serves_no_copy_and_misses_no_write(b24: Any, other: Any) -> None:
    """The subscribers' connections (one per primary) are cut and a write lands before they are back: the
    copy is not served."""
    url, app = other
    writer, reader = _sessions(b24, url, b24.installed_portal())
    _warm(reader, app)
    servers = [redis.Redis(host=subscription.connection.host, port=subscription.connection.port)
               for subscription in _copies(app)._subscriptions]
    with _copies(app)._lock:  # the subscriber cannot read while the connection is cut and the write made
        for server in servers:
            assert server.client_kill_filter(_type="pubsub") >= 1
        assert writer.post("/badges", json={**SEED, "code": "whileCut"}).status_code == 201
    assert _codes(reader.get("/badges")) == ["missedCall", "whileCut"]
    _warm(reader, app)
    assert _codes(reader.get("/badges")) == ["missedCall", "whileCut"]
    for server in servers:
        server.close()


def test_a_read_overtaken_by_a_change_is_not_kept(redis_client: redis.Redis) -> None:
    copies = ListCopies(connect(_url(redis_client)), fresh=UNHURRIED)
    try:
        copies.get("M")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        ticket = copies.ticket("M")
        redis_client.publish(keys.CHANGES, keys.badge_cache("M"))
        time.sleep(0.05)
        assert not copies.keep("M", b"[]", ticket)
        assert copies.keep("M", b"[1]", copies.ticket("M"))
        assert copies.keep("other", b"[2]", copies.ticket("other"))
        redis_client.publish(keys.CHANGES, keys.portal("M"))
        time.sleep(0.05)
        assert (copies.get("M"), copies.get("other")) == (None, b"[2]")
    finally:
        copies.close()


def test_a_message_that_names_no_portal_drops_every_copy(redis_client: redis.Redis, caplog: Any) -> None:
    """Another program publishing on the channel (or another version of this one) cannot break the readers
    or leave a copy served that its message may have meant: every copy goes, and listening carries on."""
    copies = ListCopies(connect(_url(redis_client)), fresh=UNHURRIED)
    try:
        copies.get("M")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        assert copies.keep("M", b"[1]", copies.ticket("M"))
        ticket = copies.ticket("other")
        with caplog.at_level("WARNING", logger="b24app.storage.list_copies"):
            for junk in ("hello", "}{", ""):
                redis_client.publish(keys.CHANGES, junk)
            _until(lambda: copies.get("M") is None, "a copy was served after a message naming no portal")
        assert any("names no portal" in r.getMessage() for r in caplog.records)
        assert not copies.keep("other", b"[2]", ticket), "a read from before the message was kept"
        _until(lambda: copies.hearing is Hearing.HEARING, "stopped listening")
        assert copies.keep("M", b"[3]", copies.ticket("M"))
        assert copies.get("M") == b"[3]"
    finally:
        copies.close()


def test_copies_are_bounded_and_expire(redis_client: redis.Redis) -> None:
    copies = ListCopies(connect(_url(redis_client)), max_copies=2, ttl=0.3, fresh=UNHURRIED)
    try:
        copies.get("a")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        for member in ("a", "b", "c"):
            assert copies.keep(member, member.encode(), copies.ticket(member))
        assert [copies.get(m) for m in ("a", "b", "c")] == [None, b"b", b"c"]
        time.sleep(0.35)
        assert copies.get("c") is None
    finally:
        copies.close()


def _listeners(server: redis.Redis) -> int:
    """How many subscribers this server has on the announcements' channel."""
    return int(dict(server.pubsub_numsub(keys.CHANGES))[keys.CHANGES.encode()])


def test_an_idle_process_stops_listening_and_starts_again_when_read(redis_client: redis.Redis) -> None:
    def listeners() -> int:
        return _listeners(redis_client)
    before = listeners()
    copies = ListCopies(connect(_url(redis_client)), idle=0.4)
    try:
        copies.get("a")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        assert listeners() == before + 1
        assert copies.keep("a", b"a", copies.ticket("a"))
        _until(lambda: listeners() == before, "an idle process kept listening")
        assert copies.hearing is Hearing.DEAF
        assert copies.get("a") is None, "nothing heard while deaf: the copy is gone"
        _until(lambda: copies.hearing is Hearing.HEARING, "a read did not start listening again")
    finally:
        copies.close()


def test_an_answer_read_late_is_as_old_as_its_question(redis_client: redis.Redis) -> None:
    """A PONG proves the subscriber caught up to when its PING was sent, not to when a busy process got round
    to reading it: an answer read late must not make the copies look fresh."""
    copies = ListCopies(connect(_url(redis_client)), fresh=0.3)
    try:
        copies.get("a")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        assert copies.keep("a", b"a", copies.ticket("a"))
        time.sleep(copies.ping_every * 1.5)  # the listener pinged since: its answer waits in the socket
        with copies._lock:  # and now the listener can neither read nor ping
            time.sleep(0.4)
            copies._apply()
            assert not copies._serving(time.monotonic())
        _until(lambda: copies.get("a") == b"a", "answers read in time again: the copy is served again")
    finally:
        copies.close()


def test_a_frozen_redis_stops_every_copy_within_fresh(tmp_path: Path) -> None:
    private = PrivateRedis(tmp_path)
    private.start()
    copies = ListCopies(connect(private.url), fresh=0.3, ping_every=0.05)
    try:
        copies.get("a")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        assert copies.keep("a", b"a", copies.ticket("a"))
        assert copies.get("a") == b"a"
        private.freeze()
        try:
            time.sleep(0.35)
            assert copies.get("a") is None
        finally:
            private.thaw()
        _until(lambda: copies.get("a") == b"a", "nothing changed while Redis was frozen: the copy is good again")
    finally:
        copies.close()
        private.stop()


def test_a_process_that_cannot_listen_says_so_once_and_reads_from_redis(tmp_path: Path, caplog: Any) -> None:
    """An operator's Redis user without pub/sub on the channel (docs/DEPLOYING.md), or no Redis at all yet:
    no copy is ever served, and the log says why once, not once per retry."""
    private = PrivateRedis(tmp_path)
    private.start()
    admin = redis.Redis(port=private.port)
    try:
        admin.acl_setuser("app", enabled=True, passwords=["+pw"], keys=["*"], channels=[],
                          commands=["+@all", "-subscribe"])
        for url, error in ((f"redis://app:pw@127.0.0.1:{private.port}/0", "NoPermissionError"),
                           (f"redis://127.0.0.1:{free_port()}/0", "ConnectionError")):
            copies = ListCopies(connect(url))
            caplog.clear()
            try:
                with caplog.at_level("WARNING", logger="b24app.storage.list_copies"):
                    for _ in range(3):
                        assert copies.get("a") is None
                        assert not copies.keep("a", b"a", copies.ticket("a"))
                        time.sleep(1.1)
                warned = [r.getMessage() for r in caplog.records if "announcements lost" in r.getMessage()]
                assert len(warned) == 1 and error in warned[0], warned
                assert copies.hearing is Hearing.DEAF
            finally:
                copies.close()
    finally:
        admin.close()
        private.stop()


@contextlib.contextmanager
def _listening(cluster: RedisCluster3) -> Iterator[tuple[Any, ListCopies]]:
    """A private cluster started, and a process's copies hearing it; all stopped afterwards."""
    cluster.start()
    client = connect(cluster.url)
    copies = ListCopies(client, fresh=UNHURRIED)
    try:
        copies.get("M")
        _until(lambda: copies.hearing is Hearing.HEARING, "never heard")
        yield client, copies
    finally:
        copies.close()
        client.close()
        cluster.stop()


def _heard_from_its_master(client: Any, copies: ListCopies) -> None:
    """A copy of M kept, then a change of M announced by the master that holds M's slot drops it."""
    assert copies.keep("M", b"[2]", copies.ticket("M"))
    assert copies.get("M") == b"[2]"
    client.eval(keys.lua_announce("KEYS[1]"), 1, keys.badge_cache("M"))
    _until(lambda: copies.get("M") is None, "the announcement of M's master was not heard")


def test_slots_moved_onto_a_new_master_are_heard_from_it_directly(tmp_path: Path) -> None:
    """A reshard onto a master added to the cluster: within TOPOLOGY_EVERY the process subscribes there too
    (the client itself would not know of it until one of its own commands was redirected), so the
    announcements of the portals whose slots moved come straight from it, not a bus hop late."""
    cluster = RedisCluster3(tmp_path)
    with _listening(cluster) as (client, copies):
        added = redis.Redis(port=cluster.add_primary())
        assert _listeners(added) == 0
        cluster.move_slot(client.keyslot(keys.badge_cache("M")), added.connection_pool.connection_kwargs["port"])
        _until(lambda: _reading(copies) and _listeners(added) == 1, "the process never subscribed on the new master",
               seconds=10)
        assert [_listeners(redis.Redis(port=port)) for port in cluster.ports] == [1] * 4
        _until(lambda: _reading(copies) and copies.hearing is Hearing.HEARING, "never heard again")
        _heard_from_its_master(client, copies)


def test_a_replica_promoted_in_place_of_a_lost_master_is_listened_to(tmp_path: Path) -> None:
    """A master lost and its replica promoted: copies stop at once (its subscription is gone), and the process
    subscribes on the new master although its client was never redirected there."""
    cluster = RedisCluster3(tmp_path, replicas=1)
    with _listening(cluster) as (client, copies):
        assert copies.keep("M", b"[1]", copies.ticket("M"))
        owner = client.get_node_from_key(keys.badge_cache("M")).port
        replica = redis.Redis(port=cluster.replica_of(owner))
        assert _listeners(replica) == 0
        cluster.processes[cluster.ports.index(owner)].kill()
        _until(lambda: copies.get("M") is None, "a copy was served after its master was lost")
        cluster.kill(owner)
        _until(lambda: _reading(copies) and _listeners(replica) == 1 and copies.hearing is Hearing.HEARING,
               "the process never listened to the promoted replica", seconds=15)
        assert copies.get("M") is None, "nothing heard while a master was lost: no copy from before"
        _heard_from_its_master(client, copies)


def _reading(copies: ListCopies) -> bool:
    """A read, which keeps the process listening (it stops when idle)."""
    copies.get("a read")
    return True


def _url(client: redis.Redis) -> str:
    options = client.connection_pool.connection_kwargs
    return f"redis://{options['host']}:{options['port']}/{options.get('db', 0)}"
