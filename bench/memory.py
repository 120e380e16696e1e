"""Memory (docs/DESIGN.md §9): Redis bytes per installed portal, with N synthetic portals.

N portals (realistic field sizes: 32-hex member_id, bitrix24.com domain, 70-char tokens, 32-hex
application_token) are written through the real `RedisInstallationStore.activate` into the benchmark's own
Redis database. Per portal at rest the app keeps: its record `b24:portal:{m}` (one compact JSON string) and
the domain index `b24:domain:<domain>`. Bytes per portal = MEMORY USAGE (SAMPLES 0, exact) summed over the
keys of a random sample of portals. `used_memory` growth / N is reported as a cross-check. Short-lived keys
(rate bucket, operating-time hash, 30 s list cache, 24 h idempotency records) are sized once, as they appear
in use.
The database is flushed before and after.
"""
from __future__ import annotations

import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from b24app.storage import keys
from b24app.storage.crypto import TokenCipher
from b24app.storage.installations import Installation, RedisInstallationStore
from bench.harness import Harness


def _record(i: int) -> Installation:
    member_id = secrets.token_hex(16)
    domain = f"b24-{i:06d}{secrets.token_hex(2)}.bitrix24.com"
    now = time.time()
    return Installation(member_id=member_id, domain=domain, client_endpoint=f"https://{domain}/rest/",
                        plan="P", scope="crm,placement,user_brief", app_version=1, owner_user_id=1,
                        access_token=secrets.token_hex(35), refresh_token=secrets.token_hex(35),
                        expires_at=now + 3600, application_token=secrets.token_hex(16), installed_at=now,
                        token_issued_at=now)


def _usage(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)


def run(h: Harness, *, portals: int = 100_000, sample: int = 1000, threads: int = 4) -> dict[str, Any]:
    client = h.redis
    client.flushdb()
    store = RedisInstallationStore(client, TokenCipher(tuple(h.token_keys.split(","))))
    base = int(client.info("memory")["used_memory"])
    started = time.perf_counter()
    records = []

    def save(i: int) -> tuple[str, str]:
        record = _record(i)
        store.activate(record)
        return record.member_id, record.domain

    with ThreadPoolExecutor(threads) as pool:
        records = list(pool.map(save, range(portals), chunksize=256))
    write_seconds = time.perf_counter() - started
    used = int(client.info("memory")["used_memory"])
    chosen = random.Random(1).sample(records, min(sample, len(records)))
    record_bytes = [_usage(client, keys.portal(m)) for m, _ in chosen]
    value_bytes = [int(client.strlen(keys.portal(m))) for m, _ in chosen]
    domain_bytes = [_usage(client, keys.domain(d)) for _, d in chosen]
    per_portal = sum(record_bytes) / len(chosen) + sum(domain_bytes) / len(chosen)
    encoding = client.object("encoding", keys.portal(chosen[0][0]))

    # the short-lived keys of a portal in use, sized once on one real-shaped example each
    member = chosen[0][0]
    client.set(f"b24:rate:{{{member}}}", "1764300000123456", px=30_000)
    client.hset(f"b24:op:{{{member}}}", mapping={"crm.activity.badge.add:op": "0.512",
                                                  "crm.activity.badge.add:reset": "1764300060.000"})
    client.hset(f"b24:cache:{{{member}}}:badges", mapping={"data": '[{"code":"x","title":"t","value":"v",'
                                                                   '"type":"success"}]' * 1, "gen": "3"})
    transient = {name: _usage(client, key) for name, key in (
        ("rate bucket (≤ 25 s)", f"b24:rate:{{{member}}}"),
        ("operating time, one method (10 min)", f"b24:op:{{{member}}}"),
        ("badge-list cache, one badge (30 s)", f"b24:cache:{{{member}}}:badges"))}
    client.flushdb()
    return {"benchmark": "memory", "portals": portals, "sample": len(chosen), "write_seconds": round(write_seconds, 1),
            "bytes_per_portal": round(per_portal), "record_bytes_avg": round(sum(record_bytes) / len(chosen)),
            "record_value_length_avg": round(sum(value_bytes) / len(chosen)),
            "record_encoding": encoding.decode() if isinstance(encoding, bytes) else str(encoding),
            "domain_key_bytes_avg": round(sum(domain_bytes) / len(chosen)),
            "used_memory_growth_per_portal": round((used - base) / portals),
            "transient_keys_bytes": transient, "target_bytes": 1024}


def summary(result: dict[str, Any]) -> list[str]:
    return [f"memory: {result['portals']} portals written in {result['write_seconds']} s; "
            f"{result['bytes_per_portal']} B per portal (target ≤ 1024): "
            f"record {result['record_bytes_avg']} B ({result['record_encoding']}, value "
            f"{result['record_value_length_avg']} B), domain key {result['domain_key_bytes_avg']} B; "
            f"used_memory growth {result['used_memory_growth_per_portal']} B/portal",
            f"  short-lived keys while in use: {result['transient_keys_bytes']}"]
