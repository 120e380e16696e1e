"""Idempotency-Key records against a real Redis (set B24_TEST_REDIS_URL to pick the database)."""
from __future__ import annotations

import hashlib
import re
import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster

from b24app.storage import idempotency
from b24app.storage.idempotency import (
    Conflict,
    IdempotencyStore,
    InProgress,
    Replay,
    Started,
    request_fingerprint,
    validate_key,
)
from tests.conftest import Backend

MEMBER = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER = "ffffeeeeddddccccbbbbaaaa99998888"
FP = request_fingerprint("POST", "/api/v1/badges", b'{"code":"missedCall"}')
BODY = {"badge": {"code": "missedCall", "title": {"en": "Call status", "ru": "Статус"}, "value": "Missed",
                  "type": "failure"}}



@pytest.fixture
def store(redis_client: redis.Redis) -> IdempotencyStore:
    return IdempotencyStore(redis_client)


def started(outcome: object) -> Started:
    assert isinstance(outcome, Started), outcome
    return outcome


# --- the flow ------------------------------------------------------------------------------------

def test_first_request_starts_and_a_retry_replays_the_stored_result(store):
    first = started(store.begin(MEMBER, "key-1", FP))
    assert store.complete(MEMBER, "key-1", 201, BODY, token=first.token, headers={"Location": "/x"})
    assert store.begin(MEMBER, "key-1", FP) == Replay(status=201, body=BODY, headers={"Location": "/x"})
    # Replays do not consume the result.
    assert store.begin(MEMBER, "key-1", FP) == Replay(status=201, body=BODY, headers={"Location": "/x"})


def test_replay_of_an_error_result_and_of_no_body(store):
    first = started(store.begin(MEMBER, "k-err", FP))
    store.complete(MEMBER, "k-err", 409, {"error": "BADGE_EXISTS", "error_description": "x"}, token=first.token)
    assert store.begin(MEMBER, "k-err", FP) == Replay(409, {"error": "BADGE_EXISTS", "error_description": "x"})
    second = started(store.begin(MEMBER, "k-none", FP))
    store.complete(MEMBER, "k-none", 204, None, token=second.token)
    assert store.begin(MEMBER, "k-none", FP) == Replay(204, None, {})


def test_same_key_different_request_is_a_conflict_while_running_and_when_done(store):
    other_fp = request_fingerprint("POST", "/api/v1/badges", b'{"code":"other"}')
    first = started(store.begin(MEMBER, "key-1", FP))
    assert store.begin(MEMBER, "key-1", other_fp) == Conflict()
    store.complete(MEMBER, "key-1", 201, BODY, token=first.token)
    assert store.begin(MEMBER, "key-1", other_fp) == Conflict()
    assert isinstance(store.begin(MEMBER, "key-1", FP), Replay)


def test_second_identical_request_while_the_first_runs_is_in_progress(store):
    started(store.begin(MEMBER, "key-1", FP))
    outcome = store.begin(MEMBER, "key-1", FP)
    assert outcome == InProgress(retry_after=1)


def test_concurrent_identical_requests_start_exactly_once(store):
    threads_n = 20
    barrier = threading.Barrier(threads_n)
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        outcome = store.begin(MEMBER, "race", FP)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(outcomes) == threads_n
    assert sum(isinstance(o, Started) for o in outcomes) == 1
    assert sum(isinstance(o, InProgress) for o in outcomes) == threads_n - 1


def test_result_is_kept_at_least_24_hours_and_a_claim_only_lock_ttl(store, redis_client):
    first = started(store.begin(MEMBER, "key-1", FP))
    (name,) = list(redis_client.scan_iter())
    assert 0 < redis_client.ttl(name) <= 120
    store.complete(MEMBER, "key-1", 201, BODY, token=first.token)
    assert redis_client.ttl(name) >= 24 * 3600 - 1


def test_abandon_releases_the_key_so_a_retry_runs_again(store, redis_client):
    first = started(store.begin(MEMBER, "key-1", FP))
    assert store.abandon(MEMBER, "key-1", token=first.token)
    assert redis_client.dbsize() == 0
    started(store.begin(MEMBER, "key-1", FP))


def test_only_the_owner_may_abandon_or_complete(store):
    first = started(store.begin(MEMBER, "key-1", FP))
    assert not store.abandon(MEMBER, "key-1", token="not-the-owner")
    assert not store.complete(MEMBER, "key-1", 201, {"forged": True}, token="not-the-owner")
    assert isinstance(store.begin(MEMBER, "key-1", FP), InProgress)
    assert store.complete(MEMBER, "key-1", 201, BODY, token=first.token)
    assert store.begin(MEMBER, "key-1", FP) == Replay(201, BODY)


def test_a_completed_result_cannot_be_abandoned_or_overwritten(store):
    first = started(store.begin(MEMBER, "key-1", FP))
    assert store.complete(MEMBER, "key-1", 201, BODY, token=first.token)
    assert not store.abandon(MEMBER, "key-1", token=first.token)
    # A re-sent complete (lost reply) is acknowledged but keeps the first result.
    assert store.complete(MEMBER, "key-1", 500, {"other": 1}, token=first.token)
    assert store.begin(MEMBER, "key-1", FP) == Replay(201, BODY)


def test_a_resent_begin_by_the_same_caller_is_still_started(store, monkeypatch):
    # redis-py may re-send a script after a lost reply; the caller must not then see its own claim as busy.
    monkeypatch.setattr(idempotency.secrets, "token_hex", lambda _n: "fixed-owner-token")
    assert started(store.begin(MEMBER, "key-1", FP)).token == "fixed-owner-token"
    assert started(store.begin(MEMBER, "key-1", FP)).token == "fixed-owner-token"


def test_an_abandoned_claim_of_a_killed_worker_expires_after_lock_ttl(redis_client):
    store = IdempotencyStore(redis_client, lock_ttl=1)
    dead = started(store.begin(MEMBER, "key-1", FP))
    assert isinstance(store.begin(MEMBER, "key-1", FP), InProgress)
    time.sleep(1.2)
    retry = started(store.begin(MEMBER, "key-1", FP))
    # The dead owner's late result is refused; the retry owns the key now.
    assert not store.complete(MEMBER, "key-1", 201, {"late": True}, token=dead.token)
    assert store.complete(MEMBER, "key-1", 201, BODY, token=retry.token)
    assert store.begin(MEMBER, "key-1", FP) == Replay(201, BODY)


def test_keys_are_scoped_per_portal(store):
    first = started(store.begin(MEMBER, "shared-key", FP))
    store.complete(MEMBER, "shared-key", 201, BODY, token=first.token)
    other_fp = request_fingerprint("POST", "/api/v1/badges", b'{"code":"different"}')
    other = started(store.begin(OTHER, "shared-key", other_fp))  # neither Replay nor Conflict
    store.complete(OTHER, "shared-key", 201, {"badge": "other"}, token=other.token)
    assert store.begin(MEMBER, "shared-key", FP) == Replay(201, BODY)
    assert store.begin(OTHER, "shared-key", other_fp) == Replay(201, {"badge": "other"})


def test_raw_client_key_never_appears_in_redis(store, redis_client):
    raw = "Client-Key:{weird} *?[x] ~ 42"
    first = started(store.begin(MEMBER, raw, FP))
    store.complete(MEMBER, raw, 201, BODY, token=first.token)
    names = [name.decode() for name in list(redis_client.scan_iter())]
    digest = hashlib.sha256(raw.encode()).hexdigest()
    assert names == [f"b24:idem:{{{MEMBER}}}:{digest}"]
    assert re.fullmatch(r"b24:idem:\{[0-9a-f]{32}\}:[0-9a-f]{64}", names[0])
    assert all(raw.encode() not in value for value in redis_client.hgetall(names[0]).values())


def test_works_with_a_decoding_client(backend: Backend):
    kind = RedisCluster if backend.name == "cluster" else redis.Redis
    client = kind.from_url(backend.url, decode_responses=True)
    try:
        store = IdempotencyStore(client)
        first = started(store.begin(MEMBER, "decoded", FP))
        assert isinstance(store.begin(MEMBER, "decoded", FP), InProgress)
        store.complete(MEMBER, "decoded", 201, BODY, token=first.token)
        assert store.begin(MEMBER, "decoded", FP) == Replay(201, BODY)
    finally:
        client.close()


# --- input checks --------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["a", " ", "~", "x" * 255, "550e8400-e29b-41d4-a716-446655440000",
                                 "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"])
def test_valid_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "a\x00b", "a\tb", "a\nb", "\x7f", "é", "ключ", "a\u2028",
                                 None, 42, b"bytes-key"])
def test_bad_keys_are_rejected_before_touching_redis(store, redis_client, key):
    with pytest.raises(ValueError, match="Idempotency-Key"):
        validate_key(key)
    with pytest.raises(ValueError, match="Idempotency-Key"):
        store.begin(MEMBER, key, FP)
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize("member_id", ["", "a{b", "a}b", "a b", "a\nb"])
def test_bad_member_ids_are_rejected(store, redis_client, member_id):
    with pytest.raises(ValueError, match="member_id"):
        store.begin(member_id, "k", FP)
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize("fingerprint", ["", "f" * 257, None, 5])
def test_bad_fingerprints_are_rejected(store, redis_client, fingerprint):
    with pytest.raises(ValueError, match="fingerprint"):
        store.begin(MEMBER, "k", fingerprint)
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(("ttl", "lock_ttl"), [(0, 120), (86400, 0), (-1, 1)])
def test_bad_lifetimes_are_rejected(redis_client, ttl, lock_ttl):
    with pytest.raises(ValueError, match="ttl"):
        IdempotencyStore(redis_client, ttl=ttl, lock_ttl=lock_ttl)


# --- fingerprints --------------------------------------------------------------------------------

def test_fingerprint_is_stable_and_distinguishes_each_part():
    base = request_fingerprint("POST", "/api/v1/badges", b"{}", user_id=1)
    assert base == request_fingerprint("post", "/api/v1/badges", b"{}", user_id=1)
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    variants = {
        request_fingerprint("PUT", "/api/v1/badges", b"{}", user_id=1),
        request_fingerprint("POST", "/api/v1/badges/import", b"{}", user_id=1),
        request_fingerprint("POST", "/api/v1/badges", b"{ }", user_id=1),
        request_fingerprint("POST", "/api/v1/badges", b"{}", user_id=2),
        request_fingerprint("POST", "/api/v1/badges", b"{}"),
    }
    assert base not in variants
    assert len(variants) == 5


def test_fingerprint_parts_cannot_bleed_into_each_other():
    assert request_fingerprint("POST", "/a", b"b") != request_fingerprint("POST", "/ab", b"")
    assert request_fingerprint("POST", "/a", b"", user_id="1") != request_fingerprint("POST", "/a1", b"")
