"""The shared per-portal limiter, against a real Redis (set B24_TEST_REDIS_URL to pick the database)."""
from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time

import pytest
import redis

from b24app.bitrix.limiter import OperatingBudget, RateLimiter, RateLimitTimeout
from b24app.storage import keys

TOL = 0.05  # seconds of real time that pass between a test's Redis calls



class FakeSleep:
    """Records requested sleeps instead of sleeping, to check the reservation math quickly."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class CountingConnection(redis.Connection):
    """Counts writes to the socket: one per Redis round-trip (a pipeline is one write)."""

    sends = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sends += 1
        return super().send_packed_command(command, check_health)


def redis_now(client: redis.Redis) -> float:
    sec, usec = client.time()
    return sec + usec / 1_000_000


def max_in_window_excess(times: list[float], rps: float) -> float:
    """max over all intervals [t_i, t_j] of admitted - rps * (t_j - t_i): the leaky bucket's peak level."""
    times = sorted(times)
    return max(
        (j - i + 1) - rps * (times[j] - times[i]) for i in range(len(times)) for j in range(i, len(times))
    )


# ---------------------------------------------------------------- RateLimiter


def test_burst_is_admitted_at_once_then_the_rate(redis_client):
    sleep = FakeSleep()
    limiter = RateLimiter(redis_client, 2, 5, sleep=sleep)
    waits = [limiter.acquire("m1") for _ in range(8)]
    # burst 5 minus the one-request safety margin go at once; then one slot every 1/rps.
    assert waits[:4] == [0.0] * 4
    for k, expected in enumerate([0.5, 1.0, 1.5, 2.0], start=4):
        assert expected - TOL < waits[k] <= expected
    assert sleep.calls == waits[4:]


def test_blocking_path_really_sleeps(redis_client):
    limiter = RateLimiter(redis_client, 10, 3)
    start = time.monotonic()
    waits = [limiter.acquire("m1") for _ in range(6)]
    elapsed = time.monotonic() - start
    assert waits[:2] == [0.0, 0.0]
    assert all(w > 0 for w in waits[2:])
    # 4 requests beyond the admitted burst of 2, 0.1 s apart; each waiter sleeps, then goes without re-checking.
    assert 0.4 - TOL < elapsed < 0.4 + 0.25


def test_waiters_get_distinct_ordered_slots(redis_client):
    sleep = FakeSleep()
    limiter = RateLimiter(redis_client, 4, 2, sleep=sleep)
    results: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        w = limiter.acquire("m1")
        with lock:
            results.append(w)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.sort()
    assert results[0] == 0.0  # capacity 1: one admitted now, the rest wait; no herd
    assert results[1] > 0
    steps = [b - a for a, b in itertools.pairwise(results)]
    assert all(0.25 - TOL < s < 0.25 + TOL for s in steps), steps


def test_a_portal_saying_its_bucket_is_full_fills_ours(redis_client):
    limiter = RateLimiter(redis_client, 2, 50, sleep=FakeSleep())
    assert limiter.acquire("m1") == 0.0
    limiter.saturate("m1")
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("m1", max_wait=0)
    assert 0.5 - TOL < limiter.acquire("m1") <= 0.5, "the next slot is one interval away"
    before = redis_client.get(keys.rate("m1"))
    limiter.saturate("m1")
    assert redis_client.get(keys.rate("m1")) == before, "a bucket booked further ahead is left as it is"


def test_max_wait_exceeded_raises_and_reserves_nothing(redis_client):
    sleep = FakeSleep()
    limiter = RateLimiter(redis_client, 1, 2, max_wait=1.5, sleep=sleep)
    key = keys.rate("m1")
    assert limiter.acquire("m1") == 0.0
    assert 1.0 - TOL < limiter.acquire("m1") <= 1.0
    before = redis_client.get(key)
    with pytest.raises(RateLimitTimeout) as exc:
        limiter.acquire("m1")
    assert 2.0 - TOL < exc.value.retry_after <= 2.0
    assert exc.value.member_id == "m1"
    assert redis_client.get(key) == before
    # The refused call took no slot: the next caller willing to wait gets the 2.0 s slot, not 3.0 s.
    assert 2.0 - TOL < limiter.acquire("m1", max_wait=5) <= 2.0
    assert len(sleep.calls) == 2


def test_portals_do_not_share_a_bucket(redis_client):
    limiter = RateLimiter(redis_client, 1, 3, max_wait=0)
    assert [limiter.acquire("portal-a") for _ in range(2)] == [0.0, 0.0]
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("portal-a")
    assert [limiter.acquire("portal-b") for _ in range(2)] == [0.0, 0.0]


def test_key_has_hash_tag_and_ttl_covers_reservations(redis_client):
    limiter = RateLimiter(redis_client, 2, 10, sleep=FakeSleep())
    for _ in range(9):
        limiter.acquire("M-1")
    assert list(redis_client.scan_iter()) == [b"b24:rate:{M-1}"]
    # 9 queued at 2 rps drain in 4.5 s; the key outlives that by a small margin and no more.
    assert 4400 < redis_client.pttl("b24:rate:{M-1}") <= 5600


def test_idle_portal_key_expires(redis_client):
    limiter = RateLimiter(redis_client, 50, 3)
    limiter.acquire("m1")
    assert 0 < redis_client.pttl("b24:rate:{m1}") <= 1100
    time.sleep(1.15)
    assert redis_client.exists("b24:rate:{m1}") == 0


def test_cost_counts_several_requests(redis_client):
    sleep = FakeSleep()
    limiter = RateLimiter(redis_client, 2, 6, sleep=sleep)
    assert limiter.acquire("m1", cost=5) == 0.0  # capacity 5 used up at once
    assert 0.5 - TOL < limiter.acquire("m1") <= 0.5
    assert 1.5 - TOL < limiter.acquire("m1", cost=2) <= 1.5
    with pytest.raises(ValueError, match="cost"):
        limiter.acquire("m1", cost=6)
    with pytest.raises(ValueError, match="cost"):
        limiter.acquire("m1", cost=0)


def test_per_portal_rate_override(redis_client):
    limiter = RateLimiter(redis_client, 2, 50, sleep=FakeSleep())
    assert limiter.acquire("enterprise", cost=249, rate=(5, 250)) == 0.0
    assert 0.2 - TOL < limiter.acquire("enterprise", rate=(5, 250)) <= 0.2
    assert limiter.acquire("standard", cost=49) == 0.0
    assert 0.5 - TOL < limiter.acquire("standard") <= 0.5
    with pytest.raises(ValueError, match="cost"):
        limiter.acquire("standard", cost=249)


def test_no_wait_path_is_one_round_trip(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    try:
        limiter = RateLimiter(client, 1000, 1000)
        limiter.acquire("rt")  # connects and loads the script
        CountingConnection.sends = 0
        for _ in range(10):
            limiter.acquire("rt")
        assert CountingConnection.sends == 10
    finally:
        client.delete("b24:rate:{rt}")
        client.close()


def test_a_refused_portal_refuses_the_callers_who_cannot_wait_without_asking_redis(redis_url):
    """A flood past a portal's share of threads: the first refusal says when the next slot is, and until then
    this process refuses those who cannot wait that long without a round-trip; those who can still get it."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    now = [100.0]
    try:
        limiter = RateLimiter(client, 2, 3, sleep=FakeSleep(), clock=lambda: now[0])
        for _ in range(4):
            limiter.acquire("flood")  # capacity 2 at once, then slots 0.5 s and 1.0 s away
        CountingConnection.sends = 0
        with pytest.raises(RateLimitTimeout) as first:
            limiter.acquire("flood", max_wait=0)
        assert CountingConnection.sends == 1
        assert 1.5 - TOL < first.value.retry_after <= 1.5
        for _ in range(50):
            with pytest.raises(RateLimitTimeout) as again:
                limiter.acquire("flood", max_wait=0.5)
            assert 0.5 < again.value.retry_after <= 1.5
        assert CountingConnection.sends == 1, "the refusals after the first cost no round-trip"
        assert 1.5 - TOL < limiter.acquire("flood", max_wait=5) <= 1.5, "a caller who may wait gets the slot"
        assert CountingConnection.sends == 2
        now[0] += 6  # past what the process remembers: Redis decides again
        CountingConnection.sends = 0
        with pytest.raises(RateLimitTimeout):
            limiter.acquire("flood", max_wait=0)
        assert CountingConnection.sends == 1
    finally:
        client.delete("b24:rate:{flood}")
        client.close()


def test_what_a_process_remembers_never_refuses_a_slot_another_process_could_get(redis_client):
    """Two processes: the one that was refused remembers the schedule only as far as it can only move later."""
    first, second = RateLimiter(redis_client, 4, 2, sleep=FakeSleep()), RateLimiter(redis_client, 4, 2)
    first.acquire("shared")
    with pytest.raises(RateLimitTimeout) as refused:
        first.acquire("shared", max_wait=0)
    time.sleep(refused.value.retry_after + TOL)
    assert second.acquire("shared", max_wait=0) == 0.0
    assert first.acquire("shared", max_wait=1) > 0, "the slot the other took is gone: this one waits for the next"


def test_a_saturated_bucket_is_remembered_one_interval_ahead(redis_client):
    limiter = RateLimiter(redis_client, 2, 50, sleep=FakeSleep())
    limiter.saturate("m1")
    with pytest.raises(RateLimitTimeout) as refused:
        limiter.acquire("m1", max_wait=0)
    assert 0.4 < refused.value.retry_after <= 0.5
    assert 0.5 - TOL < limiter.acquire("m1", max_wait=1) <= 0.5


def test_a_portal_that_keeps_refusing_sends_the_refused_away_for_longer(redis_client):
    """Refused again and again by the portal itself: something else fills its bucket, so the refused are told
    to stay away twice as long each time (up to a full bucket's drain), until the portal answers again."""
    now = [0.0]
    limiter = RateLimiter(redis_client, 2, 50, sleep=FakeSleep(), clock=lambda: now[0])

    def refused_for() -> float:
        limiter.saturate("busy")
        with pytest.raises(RateLimitTimeout) as refused:
            limiter.acquire("busy", max_wait=0)
        now[0] += 1
        return refused.value.retry_after

    told = [refused_for() for _ in range(7)]
    assert told[0] < 0.5, "the first refusal: our bucket's own next slot"
    assert told[1:] == [2, 4, 8, 16, 24.5, 24.5]
    limiter.relieved("busy")
    assert refused_for() < 0.5, "after an answer the portal is trusted again"
    assert refused_for() == 2
    now[0] += 30  # longer than a full bucket takes to drain: a new episode
    assert refused_for() < 0.5


@pytest.mark.parametrize(("rps", "burst"), [(0, 50), (-2, 50), (2, 0), (2, 2.5), (float("inf"), 5)])
def test_invalid_rates_are_refused(redis_client, rps, burst):
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(redis_client, rps, burst)
    limiter = RateLimiter(redis_client, 2, 50)
    with pytest.raises(ValueError, match="rate"):
        limiter.acquire("m1", rate=(rps, burst))


def _mp_worker(url: str, member_id: str, threads: int, per_thread: int, barrier, queue) -> None:
    """One process: `threads` threads, each doing `per_thread` acquires; reports (send time, waited)."""
    client = redis.Redis.from_url(url)
    limiter = RateLimiter(client, 2, 10)
    results: list[tuple] = []
    lock = threading.Lock()

    def run() -> None:
        for _ in range(per_thread):
            try:
                waited = limiter.acquire(member_id)
                row: tuple = (time.time(), waited)
            except Exception as e:
                row = ("error", repr(e))
            with lock:
                results.append(row)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    barrier.wait(timeout=60)
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    client.close()
    queue.put(results)


@pytest.mark.slow
def test_many_processes_never_exceed_the_portal_bucket(redis_client, redis_url):
    procs_n, threads, per_thread, rps, burst = 4, 3, 2, 2.0, 10
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs_n)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_mp_worker, args=(redis_url, "shared", threads, per_thread, barrier, queue))
        for _ in range(procs_n)
    ]
    for p in procs:
        p.start()
    rows = [row for _ in procs for row in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    total = procs_n * threads * per_thread
    assert [r for r in rows if r[0] == "error"] == []
    assert len(rows) == total  # every acquire was eventually granted
    times = sorted(r[0] for r in rows)
    # The portal's invariant on the real send times: any interval [t, t+d] holds <= burst + rps*d.
    excess = max_in_window_excess(times, rps)
    assert excess <= burst + 1e-3
    # Stricter: our own schedule keeps one request of headroom; allow 0.1 s of thread wake-up jitter.
    assert excess <= (burst - 1) + rps * 0.1
    # Only burst-1 went without waiting (safety margin), across 12 simultaneous threads in 4 processes.
    assert 1 <= sum(1 for r in rows if r[1] == 0.0) <= burst - 1
    # And no capacity was wasted: the last slot is where a perfect schedule puts it, (24 - 9) / rps.
    span = times[-1] - times[0]
    assert (total - burst) / rps - TOL < span < (total - (burst - 1)) / rps + 0.5


# ---------------------------------------------------------------- OperatingBudget


def test_operating_no_delay_below_threshold(redis_client):
    budget = OperatingBudget(redis_client)
    reset = redis_now(redis_client) + 40
    budget.record("m1", "crm.deal.list", 383.9, reset)
    assert budget.delay("m1", "crm.deal.list") == 0.0
    budget.record("m1", "crm.deal.list", 384.0, reset)  # exactly slow_from * limit
    assert budget.delay("m1", "crm.deal.list") == 0.0
    assert budget.delay("m1", "never.called") == 0.0


@pytest.mark.parametrize(
    ("used", "expected"),
    [(396, 40 * 0.125**2), (408, 40 * 0.25**2), (432, 40 * 0.5**2), (456, 40 * 0.75**2), (480, 40.0), (520, 40.0)],
)
def test_operating_slowdown_follows_the_formula(redis_client, used, expected):
    budget = OperatingBudget(redis_client)
    budget.record("m1", "crm.deal.list", used, redis_now(redis_client) + 40)
    assert budget.delay("m1", "crm.deal.list") == pytest.approx(expected, abs=TOL)


def test_operating_stale_report_gives_no_delay(redis_client):
    budget = OperatingBudget(redis_client)
    budget.record("m1", "crm.deal.list", 470, redis_now(redis_client) - 1)
    assert budget.delay("m1", "crm.deal.list") == 0.0


def test_operating_unknown_reset_assumes_one_bucket(redis_client):
    budget = OperatingBudget(redis_client)
    budget.record("m1", "crm.deal.list", 480, None)
    assert budget.delay("m1", "crm.deal.list") == pytest.approx(60, abs=TOL)


def test_operating_is_per_method_and_per_portal(redis_client):
    budget = OperatingBudget(redis_client)
    budget.record("m1", "crm.deal.list", 470, redis_now(redis_client) + 30)
    budget.blocked("m1", "crm.deal.list")
    assert budget.delay("m1", "crm.deal.list") > 20
    assert budget.delay("m1", "crm.deal.get") == 0.0
    assert budget.delay("m2", "crm.deal.list") == 0.0


def test_blocked_parks_until_last_recorded_reset(redis_client):
    budget = OperatingBudget(redis_client)
    budget.record("m1", "crm.deal.list", 300, redis_now(redis_client) + 45)  # below threshold: no slowdown
    assert budget.delay("m1", "crm.deal.list") == 0.0
    assert budget.blocked("m1", "crm.deal.list") == pytest.approx(45, abs=TOL)
    assert budget.delay("m1", "crm.deal.list") == pytest.approx(45, abs=TOL)


def test_blocked_minimum_cap_and_never_shortened(redis_client):
    budget = OperatingBudget(redis_client)
    now = redis_now(redis_client)
    assert budget.blocked("m1", "a.unknown") == pytest.approx(10, abs=TOL)  # nothing recorded
    assert budget.blocked("m1", "b.past", until=now - 5) == pytest.approx(10, abs=TOL)
    assert budget.blocked("m1", "c.soon", until=now + 3) == pytest.approx(10, abs=TOL)
    assert budget.blocked("m1", "d.far", until=now + 10_000) == pytest.approx(600, abs=TOL)
    assert budget.blocked("m1", "e.kept", until=now + 100) == pytest.approx(100, abs=TOL)
    assert budget.blocked("m1", "e.kept") == pytest.approx(100, abs=TOL)
    assert budget.delay("m1", "e.kept") == pytest.approx(100, abs=TOL)


def test_operating_key_has_hash_tag_and_ttl(redis_client):
    budget = OperatingBudget(redis_client)
    budget.record("M-1", "crm.deal.list", 10, redis_now(redis_client) + 30)
    assert list(redis_client.scan_iter()) == [b"b24:op:{M-1}"]
    assert 590 < redis_client.ttl("b24:op:{M-1}") <= 600
    budget.blocked("M-2", "crm.deal.get")
    assert 590 < redis_client.ttl("b24:op:{M-2}") <= 600


def test_operating_key_expires(redis_client):
    budget = OperatingBudget(redis_client, window=1, min_block=0)
    budget.record("m1", "crm.deal.list", 10, None)
    budget.blocked("m2", "crm.deal.get")
    assert redis_client.exists("b24:op:{m1}", "b24:op:{m2}") == 2
    time.sleep(1.15)
    assert redis_client.exists("b24:op:{m1}", "b24:op:{m2}") == 0


def test_operating_delay_is_one_round_trip(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    try:
        budget = OperatingBudget(client)
        budget.record("rt", "crm.deal.list", 450, redis_now(client) + 30)
        budget.blocked("rt", "crm.deal.get")
        CountingConnection.sends = 0
        assert budget.delay("rt", "crm.deal.list") > 0
        assert budget.delay("rt", "crm.deal.get") > 0
        assert CountingConnection.sends == 2
    finally:
        client.delete("b24:op:{rt}")
        client.close()


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"window": 0}, {"slow_from": 1.0}, {"slow_from": -0.1}, {"min_block": -1}]
)
def test_operating_budget_refuses_bad_settings(redis_client, kwargs):
    with pytest.raises(ValueError, match="slow_from"):
        OperatingBudget(redis_client, **kwargs)


# ---------------------------------------------------------------- both limits in one round-trip


def test_admit_decides_pause_and_slot_in_one_round_trip(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    try:
        limiter = RateLimiter(client, 2, 5, sleep=FakeSleep())
        budget = OperatingBudget(client)
        budget.record("rt", "crm.deal.list", 450, redis_now(client) + 30)
        CountingConnection.sends = 0
        paused = limiter.admit("rt", budget=budget, method="crm.deal.list")
        assert CountingConnection.sends == 1
        assert paused.paused == pytest.approx(30 * 0.6875**2, abs=TOL) and paused.waited == 0.0
        assert paused.tracked
        assert not client.exists("b24:rate:{rt}"), "a paused call reserves no slot"
        CountingConnection.sends = 0
        other = limiter.admit("rt", budget=budget, method="crm.deal.get")
        assert CountingConnection.sends == 1
        assert (other.paused, other.waited, other.tracked) == (0.0, 0.0, False)
        assert client.exists("b24:rate:{rt}")
    finally:
        client.delete("b24:rate:{rt}", "b24:op:{rt}")
        client.close()


def test_tracked_means_a_report_at_or_above_the_record_floor(redis_client):
    limiter = RateLimiter(redis_client, 100, 100)
    budget = OperatingBudget(redis_client)
    assert budget.record_floor == 192.0
    reset = redis_now(redis_client) + 30
    budget.record("m1", "a.small", 191.9, reset)
    budget.record("m1", "b.large", 192.0, reset)
    assert not limiter.admit("m1", budget=budget, method="a.small").tracked
    assert limiter.admit("m1", budget=budget, method="b.large").tracked
    assert budget.check("m1", "b.large").tracked
    assert limiter.admit("m1", method="b.large").tracked is False, "without a budget nothing is tracked"
