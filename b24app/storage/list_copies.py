"""Each process's own copies of cached badge lists, dropped as soon as Redis says a list may have changed.

A cached read from Redis costs a blocking round-trip, which on a busy host costs more CPU than the rest of
the request (docs/PERFORMANCE.md, Reads). So a process keeps what it read, and every change that could make
a list stale — a badge write's mark, a bump, any change of the portal's record — is announced on
`keys.CHANGES` by the script that makes it, on the portal's own server (storage/keys.py `lua_announce`).

A copy is served only while the process has heard everything Redis announced up to a moment ago:

* Before a copy is served, the announcements already in the subscriber's socket are applied (a `poll`, no
  wait). Redis sends an announcement to every subscriber in the event-loop turn that makes the change, so
  for a write answered to its caller before this read began, the announcement is already here (one host:
  loopback delivers at once; across hosts it has the write's portal call and the caller's next request as
  a head start).
* Redis answers a `PING` after everything it sent before, so the latest `PONG` proves the subscriber
  caught up to when its `PING` was sent. A copy is served only while that was less than FRESH ago: a frozen
  or cut-off Redis stops every copy within FRESH, and reads go to Redis and answer 503 from there
  (docs/DESIGN.md §9). A (re)connection starts a new epoch: nothing is served until a `PONG` of that
  epoch arrives, and nothing read before it is kept.
* A copy is taken only from a read that no announcement for its portal overtook (`ticket`, `keep`).
* On a Redis Cluster a message published on one master reaches the others' subscribers a bus hop later,
  so the process subscribes on every primary: the announcement of a change comes straight from the master
  that made it, as on a single Redis (the copies from the other masters are duplicates, and harmless). All
  of them must be current for a copy to be served. The cluster's primaries are asked every TOPOLOGY_EVERY
  (`CLUSTER SLOTS`); when they changed — slots moved onto a new master, a replica promoted — the process
  starts over on the new ones, so an announcement reaches it a bus hop late for at most that long.

A background thread pings every PING_EVERY and applies what arrived; it exits (closing the subscription)
after IDLE without a read, so an idle process holds no connection and receives nothing.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis
from redis.cluster import RedisCluster

from . import keys
from .connection import OUTAGES, is_cluster, text

log = logging.getLogger(__name__)

PING_EVERY = 0.1
FRESH = 0.5
COPY_TTL = 5.0
IDLE = 10.0
RETRY_AFTER = 1.0
TOPOLOGY_EVERY = 1.0
MAX_COPIES = 10_000
MAX_BYTES = 32 * 1024 * 1024
_SLOTS = 1024


class Hearing(Enum):
    """Whether this process hears the announcements: only HEARING serves and keeps copies."""

    DEAF = "deaf"  # no subscription (not started, idle, lost)
    JOINING = "joining"  # subscribed; no PONG of this epoch yet
    HEARING = "hearing"


@dataclass(frozen=True)
class Ticket:
    """What a read saw before it went to Redis: a copy is kept only if nothing overtook it."""

    epoch: int
    drops: int


@dataclass
class _Copy:
    data: bytes
    until: float


class ListCopies:
    def __init__(self, client: redis.Redis, *, fresh: float = FRESH, ping_every: float = PING_EVERY,
                 ttl: float = COPY_TTL, idle: float = IDLE, max_copies: int = MAX_COPIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self._client = client
        self.fresh, self.ping_every, self.ttl, self.idle = fresh, ping_every, ttl, idle
        self._max_copies, self._max_bytes = max_copies, max_bytes
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscriptions: list[Any] = []
        self._topology: frozenset[str] = frozenset()
        self._pongs: list[float] = []
        self._copies: dict[str, _Copy] = {}
        self._bytes = 0
        self._drops = [0] * _SLOTS
        self._epoch = 0
        self._hearing = Hearing.DEAF
        self._warned = False
        self._used = time.monotonic()

    # -- the read path ----------------------------------------------------------------------------

    def get(self, member_id: str) -> bytes | None:
        """The process's copy of the list, if it may be served now; starts listening when it is not."""
        now = self._touch()
        if self._hearing is not Hearing.HEARING:
            return None
        with self._lock:
            self._apply()
            copy = self._copies.get(member_id)
            if copy is None or not self._serving(now) or copy.until < now:
                return None
            return copy.data

    def ticket(self, member_id: str) -> Ticket:
        """Taken before a read goes to Redis. Only a read sent while hearing can be kept: before the first
        PONG of an epoch, the subscription may not be in force yet at the server. The epoch is read before
        the state, which every change of epoch leaves first (`_leave`), so no ticket pairs a new epoch with
        the hearing of the old one."""
        epoch = self._epoch
        if self._hearing is not Hearing.HEARING:
            epoch = -1
        return Ticket(epoch, self._drops[_slot(member_id)])

    def keep(self, member_id: str, data: bytes, ticket: Ticket) -> bool:
        """Keep what a read taken with `ticket` found in Redis, unless an announcement for the portal (or
        a new epoch) came since."""
        with self._lock:
            self._apply()
            if self._hearing is not Hearing.HEARING or ticket != self.ticket(member_id) or \
                    len(data) > self._max_bytes // 16:
                return False
            self._drop(member_id)
            self._copies[member_id] = _Copy(data, time.monotonic() + self.ttl)
            self._bytes += len(data)
            while len(self._copies) > self._max_copies or self._bytes > self._max_bytes:
                self._drop(next(iter(self._copies)))
            return True

    @property
    def hearing(self) -> Hearing:
        return self._hearing

    def close(self) -> None:
        """Stop listening (process shutdown); copies are no longer served."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._deafen()

    # -- announcements ----------------------------------------------------------------------------

    def _apply(self) -> None:
        """Apply every message already received (no wait). Caller holds the lock."""
        try:
            for index, subscription in enumerate(self._subscriptions):
                while (message := subscription.get_message(ignore_subscribe_messages=True, timeout=0.0)) is not None:
                    if message["type"] == "message":
                        self._announced(text(message["data"]))
                    elif message["type"] == "pong":
                        self._ponged(index, text(message["data"]))
        except OUTAGES as exc:
            self._lost(exc)
            return
        if self._hearing is Hearing.JOINING and self._pongs and all(self._pongs):
            self._hearing, self._warned = Hearing.HEARING, False

    def _ponged(self, index: int, data: str) -> None:
        """A PONG proves the subscriber caught up to when its PING was sent (which the PING names), not to
        when the PONG was read: a listener late to read must not make an old answer look fresh."""
        name, _, sent = data.rpartition(":")
        if name == self._pong_name(index):
            self._pongs[index] = max(self._pongs[index], float(sent))

    def _announced(self, key: str) -> None:
        """A message that names no portal (another program on the channel, an older or newer version of
        this one) could stand for any change: start over, as after a reconnection."""
        try:
            member_id = keys.member_of(key)
        except ValueError:
            member_id = ""
        if not member_id:
            log.warning("an announcement names no portal; every list copy is dropped")
            self._leave(Hearing.JOINING)
            return
        self._changed(member_id)

    def _changed(self, member_id: str) -> None:
        self._drops[_slot(member_id)] += 1
        self._drop(member_id)

    def _drop(self, member_id: str) -> None:
        copy = self._copies.pop(member_id, None)
        if copy is not None:
            self._bytes -= len(copy.data)

    def _serving(self, now: float) -> bool:
        return self._hearing is Hearing.HEARING and now - min(self._pongs) < self.fresh

    def _leave(self, hearing: Hearing) -> None:
        """Whatever happened before is unknown: forget every copy and refuse reads taken before."""
        self._hearing = hearing
        self._epoch += 1
        self._pongs = [0.0] * len(self._subscriptions)
        self._copies.clear()
        self._bytes = 0

    def _pong_name(self, index: int) -> str:
        return f"{self._epoch}:{index}"

    def _deafen(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        self._topology = frozenset()
        self._leave(Hearing.DEAF)
        self._close(subscriptions)

    def _close(self, subscriptions: list[Any]) -> None:
        for subscription in subscriptions:
            try:
                if subscription.connection is not None:
                    subscription.connection.deregister_connect_callback(self._reconnected)
                subscription.close()
            except OUTAGES:
                pass

    def _reconnected(self, _connection: Any) -> None:
        """redis-py re-subscribes a broken subscription by itself: what was sent meanwhile is lost."""
        self._leave(Hearing.JOINING)

    # -- the listener -------------------------------------------------------------------------------

    def _touch(self) -> float:
        now = time.monotonic()
        self._used = now
        thread = self._thread
        if (thread is None or not thread.is_alive()) and not self._stop.is_set():
            with self._starting:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._listen, name="b24-list-copies", daemon=True)
                    self._thread.start()
        return now

    def _listen(self) -> None:
        checked = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - self._used > self.idle:
                with self._lock:
                    self._deafen()
                return
            if not self._subscriptions and not self._subscribe():
                self._stop.wait(RETRY_AFTER)
                continue
            with self._lock:
                self._apply()
                self._ping()
            if self._topology and time.monotonic() - checked >= TOPOLOGY_EVERY:
                checked = time.monotonic()
                if self._moved():
                    with self._lock:
                        self._deafen()
                    continue
            self._stop.wait(self.ping_every)

    def _subscribe(self) -> bool:
        """Open the subscriptions outside the lock (a connect may take its timeout), then start an epoch."""
        subscriptions: list[Any] = []
        client: Any = self._client
        try:
            nodes, topology = self._current_primaries() if is_cluster(self._client) else ([None], frozenset())
            for node in nodes:
                subscription = client.pubsub(node=node) if node is not None else client.pubsub()
                subscriptions.append(subscription)
                subscription.subscribe(keys.CHANGES)
                subscription.connection.register_connect_callback(self._reconnected)
        except OUTAGES as exc:
            self._close(subscriptions)
            with self._lock:
                self._lost(exc)
            return False
        with self._lock:
            self._subscriptions = subscriptions
            self._topology = topology
            self._leave(Hearing.JOINING)
        return True

    def _current_primaries(self) -> tuple[list[Any], frozenset[str]]:
        """The client's primaries, after making it read the cluster's map again if the cluster now names
        others (the client itself learns of a change only when a command of its own is redirected), and
        the cluster's own list, which `_moved` compares with."""
        client: Any = self._client
        topology = _primaries(client)
        if topology != {node.name for node in client.get_primaries()}:
            client.nodes_manager.initialize()
        return list(client.get_primaries()), topology

    def _moved(self) -> bool:
        """The cluster names other primaries than when the process subscribed. An unanswered question is
        not a move: the PINGs stop the copies if a primary is gone."""
        try:
            return _primaries(self._client) != self._topology
        except OUTAGES:
            return False

    def _ping(self) -> None:
        """Caller holds the lock. Each PONG names the epoch and the subscription, so one from before a
        reconnection counts for nothing, and when its PING was sent."""
        try:
            for index, subscription in enumerate(self._subscriptions):
                subscription.ping(f"{self._pong_name(index)}:{time.monotonic()!r}")
        except OUTAGES as exc:
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        """Caller holds the lock. Logged once until heard again, not once per retry."""
        if not self._warned:
            self._warned = True
            log.warning("badge list announcements lost (%s); lists are read from Redis until heard again",
                        type(exc).__name__)
        self._deafen()


def _primaries(client: Any) -> frozenset[str]:
    """The primaries that hold slots, as a node of the cluster says now."""
    slots = client.cluster_slots(target_nodes=RedisCluster.RANDOM)
    return frozenset(f"{host}:{port}" for host, port in (entry["primary"] for entry in slots.values()))


def _slot(member_id: str) -> int:
    return hash(member_id) % _SLOTS
