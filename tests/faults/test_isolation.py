"""One portal, a slow OAuth server or a frozen Redis must not take the others down (docs/DESIGN.md §9, §10).

The production configuration (gunicorn, 2 workers × 8 threads) against the sandbox over 127.0.0.1. The
bounds asserted here are generous (the machine is shared): what they catch is a thread pool held hostage,
which used to cost other portals 13 to 44 seconds. The figures themselves are measured by
`bench/isolation.py` (docs/PERFORMANCE.md, "Isolation and faults").
"""
from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from b24app.storage import keys
from b24app.storage.installations import PortalState
from tests.conftest import TEST_REDIS_URL
from tests.faults.stack import Deployed, gunicorn_stack
from tests.support.load import Call, Sample, bystander, flooding, spend_budget, timed
from tests.support.redis_servers import PrivateRedis

pytestmark = pytest.mark.slow

BADGE = {"code": "paid", "title": "Payment", "value": "Paid", "type": "success"}


@pytest.fixture
def deployed(tmp_path: Path, redis_client: redis.Redis) -> Iterator[Deployed]:
    with gunicorn_stack(TEST_REDIS_URL, tmp_path, workers=2, threads=8, B24_RATE="2/50") as running:
        yield running


def _flood(deployed: Deployed, calls: list[Call]) -> tuple[list[Sample], list[Sample]]:
    """Run `calls` all at once while a bystander portal keeps calling; (flood results, bystander results)."""
    portal_b = deployed.installed_portal(rate=None)
    api_b = deployed.session(portal_b)
    seen: list[Sample] = []
    with flooding(calls, repeat=False) as flood:
        deadline = time.monotonic() + 60
        while len(flood) < len(calls) and time.monotonic() < deadline:
            seen += bystander(lambda: api_b.get(f"{deployed.url}/api/v1/deals/1/badge", timeout=60), 0.5)
            seen.append(timed(lambda: requests.get(f"{deployed.url}/healthz", timeout=60)))
    return flood, seen


def _assert_unharmed(seen: list[Sample]) -> None:
    assert len(seen) >= 4
    assert all(0 < status < 500 for status, _ in seen), Counter(s for s, _ in seen)
    slowest = max(seconds for _, seconds in seen)
    assert slowest < 3.0, f"another portal waited {slowest:.1f} s"


def test_a_portal_whose_budget_is_spent_cannot_stall_the_others(deployed: Deployed) -> None:
    portal_a = deployed.installed_portal(rate=None)
    api_a = deployed.session(portal_a)
    spend_budget(redis.Redis.from_url(deployed.redis_url), portal_a.member_id, 15)
    flood, bystander = _flood(deployed, [lambda: api_a.get(f"{deployed.url}/api/v1/badges/x", timeout=60)] * 150)
    _assert_unharmed(bystander)
    statuses = Counter(status for status, _ in flood)
    assert set(statuses) <= {404, 503}, statuses
    shed = sorted(seconds for status, seconds in flood if status == 503)
    assert len(shed) >= 100, "the excess is answered at once, not after waiting for a slot"
    assert shed[len(shed) // 2] < 3.0


def test_a_burst_of_writes_within_the_portals_budget_all_succeed(deployed: Deployed) -> None:
    """Bulkheads cap the threads that wait, not the requests in flight: 30 writes at once from one admin of a
    2 rps / burst 50 portal fit its budget and all succeed, however gunicorn spreads them over its workers."""
    portal = deployed.installed_portal(rate=(2, 50))
    headers = dict(deployed.session(portal).headers)
    writes = [lambda i=i: requests.post(f"{deployed.url}/api/v1/badges", headers=headers, timeout=60,
                                        json={**BADGE, "code": f"burst{i}"}) for i in range(30)]
    with ThreadPoolExecutor(30) as pool:
        statuses = Counter(status for status, _ in pool.map(timed, writes))
    assert statuses == {201: 30}
    assert len(portal.badges) == 30


def test_a_portal_answering_query_limit_exceeded_cannot_stall_the_others(deployed: Deployed) -> None:
    portal_a = deployed.installed_portal(rate=None)
    api_a = deployed.session(portal_a)
    deployed.sandbox.faults.add(portal_a, "crm.activity.badge.add", "error", count=10_000,
                                error="QUERY_LIMIT_EXCEEDED", status=503, description="Too many requests")
    writes = [lambda i=i: api_a.post(f"{deployed.url}/api/v1/badges", json={**BADGE, "code": f"b{i}"}, timeout=60)
              for i in range(150)]
    flood, bystander = _flood(deployed, writes)
    _assert_unharmed(bystander)
    assert {status for status, _ in flood} == {503}
    assert portal_a.badges == {}


def test_a_hanging_oauth_server_stalls_no_one_and_garbage_is_remembered(deployed: Deployed) -> None:
    portal_b = deployed.installed_portal(rate=None)
    api_b = deployed.session(portal_b)
    deployed.sandbox.faults.add(None, "oauth.app.info", "delay", count=100, seconds=20)
    garbage = [secrets.token_hex(35) for _ in range(20)]
    sessions = [lambda token=token: requests.post(f"{deployed.url}/api/v1/session", timeout=60, json={
        "AUTH_ID": token, "member_id": portal_b.member_id, "DOMAIN": portal_b.domain}) for token in garbage]
    health = [lambda: requests.get(f"{deployed.url}/healthz", timeout=60)] * 40
    reads = [lambda: api_b.get(f"{deployed.url}/api/v1/deals/1/badge", timeout=60)] * 20
    with ThreadPoolExecutor(80) as pool:
        answers = list(pool.map(timed, sessions + health + reads))
    refused, healthz, bystander = answers[:20], answers[20:60], answers[60:]
    assert {status for status, _ in refused} <= {401, 503}
    assert max(seconds for _, seconds in refused) < 12.0, "app.info is given up after its short timeout"
    assert all(status == 200 for status, _ in healthz)
    assert max(seconds for _, seconds in healthz) < 2.0
    _assert_unharmed(bystander)

    deployed.sandbox.faults.clear()
    token = garbage[0]
    before = deployed.sandbox.counters.snapshot()["oauth"]["app_info"]
    for _ in range(2):
        answer = requests.post(f"{deployed.url}/api/v1/session", timeout=30, json={
            "AUTH_ID": token, "member_id": portal_b.member_id, "DOMAIN": portal_b.domain})
        assert answer.status_code == 401
    after = deployed.sandbox.counters.snapshot()["oauth"]["app_info"]
    assert after - before <= 2, "one call per worker at most: a rejected token is remembered"


def test_a_slow_refresh_is_done_once_and_saved(deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    deployed.sandbox.expire_tokens(portal)
    deployed.sandbox.faults.add(portal, "oauth.token.refresh_token", "delay", seconds=21)
    results: dict[float, tuple[int, float]] = {}

    def caller(at: float) -> None:
        time.sleep(at)
        results[at] = timed(lambda: api.get(f"{deployed.url}/api/v1/badges/x", timeout=90))

    threads = [threading.Thread(target=caller, args=(at,)) for at in (0.0, 3.0, 12.0, 18.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = {at: status for at, (status, _) in results.items()}
    assert statuses[0.0] == 404, "the first caller waits for its refresh and gets its answer"
    assert all(status in (404, 503) for status in statuses.values()), statuses
    assert max(seconds for at, (_, seconds) in results.items() if at > 0) < 12.0, "others wait a bounded time"
    oauth = deployed.sandbox.counters.portal(portal.member_id)["oauth"]
    assert (oauth["refresh_ok"], oauth["refresh_failed"]) == (1, 0), "exactly one refresh, never a second"
    record = deployed.store().get(portal.member_id)
    assert record.state == PortalState.ACTIVE
    assert api.get(f"{deployed.url}/api/v1/badges/x", timeout=30).status_code == 404, "the chain is intact"
    assert "Traceback" not in deployed.served.output()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def test_killed_workers_holding_the_refresh_delay_the_portal_a_few_seconds_and_lose_nothing(
        deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    deployed.sandbox.expire_tokens(portal)
    # The refresh hangs before the OAuth server did anything (held, then dropped, not applied).
    deployed.sandbox.faults.add(portal, "oauth.token.refresh_token", "timeout", seconds=40)
    stuck = threading.Thread(target=timed, args=(lambda: api.get(f"{deployed.url}/api/v1/badges/x", timeout=90),),
                             daemon=True)
    stuck.start()
    client = redis.Redis.from_url(deployed.redis_url)
    deadline = time.monotonic() + 20
    while not client.exists(keys.refresh_lock(portal.member_id)):
        assert time.monotonic() < deadline, "the refresh never started"
        time.sleep(0.05)
    for worker in _children(deployed.served.process.pid):
        os.kill(worker, signal.SIGKILL)
    status, seconds = timed(lambda: api.get(f"{deployed.url}/api/v1/badges/x", timeout=90))
    while status == 503:  # the dead holder's lease runs out within seconds
        time.sleep(0.5)
        status, more = timed(lambda: api.get(f"{deployed.url}/api/v1/badges/x", timeout=90))
        seconds += more + 0.5
    assert status == 404
    assert seconds < 15.0
    assert deployed.store().get(portal.member_id).state == PortalState.ACTIVE
    assert deployed.sandbox.counters.portal(portal.member_id)["oauth"]["refresh_ok"] == 1


def test_a_frozen_redis_answers_503_quickly_everywhere_and_recovers(tmp_path: Path) -> None:
    store_dir = tmp_path / "redis"
    store_dir.mkdir()
    private = PrivateRedis(store_dir)
    private.start()
    try:
        with gunicorn_stack(private.url, tmp_path, workers=2, threads=8) as running:
            portal = running.installed_portal(rate=None)
            api = running.session(portal)
            frame: dict[str, Any] = {**running.sandbox.frame_auth(portal), "PLACEMENT": "DEFAULT"}
            calls: dict[str, Callable[[], requests.Response]] = {
                "readyz": lambda: requests.get(f"{running.url}/readyz", timeout=30),
                "api": lambda: api.get(f"{running.url}/api/v1/badges", timeout=30),
                "app": lambda: requests.post(f"{running.url}/app", data=frame, timeout=30),
                "events": lambda: requests.post(f"{running.url}/events", timeout=30, data={
                    "event": "ONAPPUNINSTALL", "auth[member_id]": portal.member_id, "auth[application_token]": "x"}),
                "authorize": lambda: requests.get(f"{running.url}/oauth/authorize", params={"link": "x" * 43},
                                                  timeout=30),
            }
            assert calls["api"]().status_code == 200
            private.freeze()
            try:
                answers: dict[str, requests.Response] = {}
                for name, call in calls.items():
                    started = time.monotonic()
                    answers[name] = response = call()
                    elapsed = time.monotonic() - started
                    assert response.status_code == 503, (name, response.status_code, response.text[:200])
                    assert response.headers.get("Retry-After") or name == "readyz", name
                    assert elapsed < (2.0 if name == "readyz" else 3.0), (name, elapsed)
                assert answers["app"].headers["Content-Type"].startswith("text/html")
                assert answers["events"].headers["Content-Type"] == "application/json"
            finally:
                private.thaw()
            deadline = time.monotonic() + 10
            while calls["readyz"]().status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover"
                time.sleep(0.2)
            assert calls["api"]().status_code == 200
            assert "Traceback" not in running.served.output()
    finally:
        private.stop()
