"""The installation-store contract: every backend must pass these (b24phpsdk's contract-test idea).

Run against the in-memory reference implementation and the Redis store (real Redis).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import redis
from cryptography.fernet import Fernet

from b24app.storage import keys
from b24app.storage.crypto import TokenCipher
from b24app.storage.installations import (
    Installation,
    InstallationStore,
    MemoryInstallationStore,
    PortalState,
    RedisInstallationStore,
)
from tests.integration.helpers import redis_dump

KEY = Fernet.generate_key().decode()


def sample(member_id: str = "m1", **overrides) -> Installation:
    base = Installation(member_id=member_id, domain="Portal.Example.com", client_endpoint="https://portal.example.com/rest/",
                        plan="P", scope="crm,placement", app_version=1, owner_user_id=1,
                        access_token="access-1", refresh_token="refresh-1", expires_at=2_000_000_000.0,
                        application_token="apptoken-1", token_issued_at=1_700_000_000.0)
    return Installation(**{**base.__dict__, **overrides})


@pytest.fixture(params=["memory", "redis", "cluster"])
def store(request) -> Iterator[InstallationStore]:
    if request.param == "memory":
        yield MemoryInstallationStore()
    else:
        client = request.getfixturevalue("cluster_client" if request.param == "cluster" else "redis_client")
        yield RedisInstallationStore(client, TokenCipher([KEY]))


def test_save_and_get_round_trip(store: InstallationStore) -> None:
    assert store.get("m1") is None
    store.activate(sample())
    record = store.get("m1")
    assert record is not None
    assert record.domain == "portal.example.com"
    assert (record.access_token, record.refresh_token, record.application_token) == ("access-1", "refresh-1",
                                                                                     "apptoken-1")
    assert record.owner_user_id == 1
    assert record.app_version == 1
    assert record.expires_at == 2_000_000_000.0
    assert record.installed_at > 0
    assert record.updated_at > 0
    assert "access-1" not in repr(record)


def test_save_keeps_the_first_install_time(store: InstallationStore) -> None:
    store.activate(sample())
    first = store.get("m1").installed_at
    store.activate(sample(access_token="access-2"))
    assert store.get("m1").installed_at == first
    assert store.get("m1").access_token == "access-2"


def test_find_by_domain_follows_domain_changes(store: InstallationStore) -> None:
    store.activate(sample())
    assert store.find_by_domain("portal.example.com").member_id == "m1"
    assert store.update("m1", domain="new.example.com", client_endpoint="https://new.example.com/rest/")
    assert store.find_by_domain("portal.example.com") is None
    assert store.find_by_domain("NEW.example.com").client_endpoint == "https://new.example.com/rest/"


def test_update_needs_an_existing_record_and_known_fields(store: InstallationStore) -> None:
    assert store.update("ghost", last_error="x") is False
    assert store.get("ghost") is None
    store.activate(sample())
    assert store.update("m1", plan="T", last_error="binding failed")
    assert (store.get("m1").plan, store.get("m1").last_error) == ("T", "binding failed")
    with pytest.raises(ValueError, match="not updatable"):
        store.update("m1", access_token="sneaky")
    with pytest.raises(ValueError, match="not updatable"):
        store.update("m1", state=PortalState.NEEDS_REAUTH)


def test_activate_makes_the_portal_active_whatever_the_record_says(store: InstallationStore) -> None:
    record = store.activate(sample(state=PortalState.UNINSTALLED))
    assert record.state == store.get("m1").state == PortalState.ACTIVE


def test_needs_reauth_keeps_the_chain_and_says_why(store: InstallationStore) -> None:
    assert store.needs_reauth("ghost", "x") is False
    store.activate(sample())
    assert store.needs_reauth("m1", "invalid_grant")
    record = store.get("m1")
    assert (record.state, record.last_error, record.refresh_token) == (PortalState.NEEDS_REAUTH, "invalid_grant",
                                                                       "refresh-1")
    assert record.chain_dead


def test_update_application_token(store: InstallationStore) -> None:
    store.activate(sample())
    store.update("m1", application_token="apptoken-2")
    assert store.get("m1").application_token == "apptoken-2"
    assert store.get("m1").access_token == "access-1"


def test_swap_tokens_is_compare_and_set(store: InstallationStore) -> None:
    store.activate(sample())
    assert store.swap_tokens("m1", "refresh-1", "access-2", "refresh-2", 2_100_000_000.0)
    record = store.get("m1")
    assert (record.access_token, record.refresh_token, record.expires_at) == ("access-2", "refresh-2",
                                                                              2_100_000_000.0)
    assert record.token_issued_at > 1_700_000_000.0
    assert not store.swap_tokens("m1", "refresh-1", "access-X", "refresh-X", 1.0), "stale refresh token"
    assert store.get("m1").access_token == "access-2"
    assert not store.swap_tokens("ghost", "refresh-1", "a", "r", 1.0)
    assert store.get("ghost") is None


def test_concurrent_swaps_let_exactly_one_win(store: InstallationStore) -> None:
    store.activate(sample())
    wins: list[int] = []
    barrier = threading.Barrier(16)

    def attempt(i: int) -> None:
        barrier.wait()
        if store.swap_tokens("m1", "refresh-1", f"access-{i}", f"refresh-new-{i}", 3.0):
            wins.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store.get("m1").refresh_token == f"refresh-new-{wins[0]}"


def test_uninstall_keeps_the_record_without_secrets(store: InstallationStore) -> None:
    store.activate(sample())
    assert store.uninstall("m1", "uninstalled by portal")
    record = store.get("m1")
    assert record.state == PortalState.UNINSTALLED
    assert record.access_token is None
    assert record.refresh_token is None
    assert record.application_token is None
    assert record.domain == "portal.example.com"
    assert not store.uninstall("ghost", "x")


def test_delete_forgets_everything(store: InstallationStore) -> None:
    store.activate(sample())
    store.activate(sample("m2", domain="other.example.com"))
    store.delete("m1")
    assert store.get("m1") is None
    assert store.find_by_domain("portal.example.com") is None
    assert store.member_ids() == ["m2"]


def test_redis_holds_no_token_in_clear(redis_client: redis.Redis) -> None:
    store = RedisInstallationStore(redis_client, TokenCipher([KEY]))
    store.activate(sample())
    store.swap_tokens("m1", "refresh-1", "access-2", "refresh-2", 5.0)
    dump = redis_dump(redis_client)
    assert b"b24:portal:{m1}" in dump and b"portal.example.com" in dump
    for secret in (b"access-1", b"refresh-1", b"access-2", b"refresh-2", b"apptoken-1"):
        assert secret not in dump


def test_key_rotation_reads_old_records_and_rewrites_them(redis_client: redis.Redis) -> None:
    old_key, new_key = KEY, Fernet.generate_key().decode()
    RedisInstallationStore(redis_client, TokenCipher([old_key])).activate(sample())
    before = _stored(redis_client)
    rotated = RedisInstallationStore(redis_client, TokenCipher([new_key, old_key]))
    assert rotated.get("m1").access_token == "access-1"
    after = _stored(redis_client)
    assert after["k"] != before["k"] and after["n"] != before["n"]
    Fernet(new_key).decrypt(after["k"].encode())  # rewritten under the new key
    assert RedisInstallationStore(redis_client, TokenCipher([new_key])).get("m1").application_token == "apptoken-1"


def _stored(client: redis.Redis, member_id: str = "m1") -> dict:
    return json.loads(client.get(keys.portal(member_id)))


@pytest.mark.parametrize(("access", "refresh", "app_token"), [
    ("a" * 70, "0123456789" * 7, "f" * 32),                   # Bitrix24's shape: lowercase hex
    ("access-1", "refresh-1", "apptoken-1"),                  # anything else, kept as text
    ("ABCDEF", "abcdef", "ÄÖÜ-токен"), ("0" * 510, "1" * 2, "ab"),
])
def test_tokens_of_any_shape_round_trip(redis_client: redis.Redis, access: str, refresh: str, app_token: str) -> None:
    store = RedisInstallationStore(redis_client, TokenCipher([KEY]))
    store.activate(sample(access_token=access, refresh_token=refresh, application_token=app_token))
    record = store.get("m1")
    assert (record.access_token, record.refresh_token, record.application_token) == (access, refresh, app_token)
    assert store.swap_tokens("m1", refresh, refresh, access, 2_100_000_000.0)
    assert (store.get("m1").access_token, store.get("m1").refresh_token) == (refresh, access)


def test_a_record_is_compact_and_shows_no_token(redis_client: redis.Redis) -> None:
    hexed = sample(access_token="a1" * 35, refresh_token="b2" * 35, application_token="c3" * 16)
    RedisInstallationStore(redis_client, TokenCipher([KEY])).activate(hexed)
    raw = redis_client.get(keys.portal("m1"))
    assert len(raw) < 640, len(raw)
    assert redis_client.type(keys.portal("m1")) == b"string"
    for secret in ("a1" * 35, "b2" * 35, "c3" * 16):
        assert secret.encode() not in raw


def test_a_record_of_the_earlier_layout_is_read_and_stored_anew(redis_client: redis.Redis) -> None:
    cipher = TokenCipher([KEY])
    redis_client.hset(keys.portal("m1"), mapping={
        "domain": "old.example.com", "client_endpoint": "https://old.example.com/rest/", "state": "active",
        "status": "P", "app_version": "3", "owner_user_id": "7", "expires_at": "2000000000.0",
        "installed_at": "1700000000.5", "tokens": cipher.encrypt(json.dumps({"a": "access-1", "r": "refresh-1"})),
        "rt": "x", "app_token": cipher.encrypt("apptoken-1")})
    store = RedisInstallationStore(redis_client, cipher)
    record = store.get("m1")
    assert (record.domain, record.plan, record.app_version, record.owner_user_id, record.installed_at) == (
        "old.example.com", "P", 3, 7, 1_700_000_000.5)
    assert (record.access_token, record.refresh_token, record.application_token) == ("access-1", "refresh-1",
                                                                                     "apptoken-1")
    assert redis_client.type(keys.portal("m1")) == b"string"
    assert store.swap_tokens("m1", "refresh-1", "access-2", "refresh-2", 2_100_000_000.0), "a live chain again"


def test_redis_keys_share_a_cluster_slot_per_portal() -> None:
    per_portal = [keys.portal("abc123"), keys.refresh_lock("abc123"), keys.rate("abc123"), keys.operating("abc123"),
                  keys.badge_cache("abc123"), keys.deals("abc123"), keys.deal_lock("abc123", 7),
                  keys.idempotency("abc123", "f" * 64), keys.oauth_state("abc123", "nonce")]
    assert keys.portal("abc123") == "b24:portal:{abc123}"
    for key in per_portal:
        assert key.startswith("b24:") and key.index("{abc123}") == key.index("{"), key
