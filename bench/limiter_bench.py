"""Latency of RateLimiter.acquire() on the no-wait path (one Lua call), for docs/PERFORMANCE.md.

Usage: .venv/bin/python bench/limiter_bench.py [--url redis://127.0.0.1:6379/14] [-n 5000]
Uses a throw-away key and a limit so high that no call ever waits, so only the Redis round-trip and
the script are measured. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from b24app.bitrix.limiter import RateLimiter
from b24app.storage import keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/14", help="Redis URL (default: %(default)s)")
    parser.add_argument("-n", type=int, default=5000, help="number of acquire() calls (default: %(default)s)")
    args = parser.parse_args()

    client = redis.Redis.from_url(args.url)
    member_id = f"bench-{uuid.uuid4().hex[:8]}"
    limiter = RateLimiter(client, rps=1e6, burst=10**9)
    try:
        for _ in range(100):  # connect, load the script, warm caches
            limiter.acquire(member_id)
        samples = []
        for _ in range(args.n):
            start = time.perf_counter()
            waited = limiter.acquire(member_id)
            samples.append(time.perf_counter() - start)
            assert waited == 0.0, "the no-wait path waited; raise the bench limits"
    finally:
        client.delete(keys.rate(member_id))
        client.close()

    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"acquire() no-wait path, n={args.n}, redis={args.url}")
    print(f"  median {statistics.median(samples) * 1e3:.3f} ms   p99 {p99 * 1e3:.3f} ms   "
          f"max {samples[-1] * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
