"""The portal answering 500s and timeouts: bounded retries, no duplicate, clear errors.

The app runs under gunicorn (2 workers) against the sandbox over HTTP and real Redis. Each case counts
what reached the portal, so "bounded" and "no duplicate" are facts, not hopes. Single-fault cases of the
REST client are in tests/integration/test_rest_client.py and test_api_badges.py; these are the
persistent ones, seen from the HTTP API.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import requests

from b24app.storage import keys
from tests.conftest import TEST_REDIS_URL
from tests.faults.stack import Deployed, gunicorn_stack

BADGE = {"code": "faulty", "title": "Faulty", "value": "v", "type": "warning"}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    with gunicorn_stack(TEST_REDIS_URL, tmp_path_factory.mktemp("faults")) as stack:
        yield stack


def _requests(deployed: Deployed, portal, method: str) -> int:
    return deployed.sandbox.counters.portal(portal.member_id)["requests"].get(method, 0)


def _clear_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= {"error", "error_description"} and body["error_description"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.mark.slow
def test_persistent_500_on_add_is_two_attempts_and_a_clear_503(deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    deployed.sandbox.faults.add(portal, "crm.activity.badge.add", "500", count=10)
    started = time.monotonic()
    response = api.post(f"{deployed.url}/api/v1/badges", json=BADGE, timeout=60)
    assert time.monotonic() - started < 10
    _clear_error(response, 503, "INTERNAL_SERVER_ERROR")
    assert response.headers["Retry-After"]
    # add → 500 → get (not there) → add once more → 500 → get (still not there) → give up
    assert _requests(deployed, portal, "crm.activity.badge.add") == 2
    assert _requests(deployed, portal, "crm.activity.badge.get") == 2
    assert portal.badges == {}
    deployed.sandbox.faults.clear(portal.member_id)
    assert api.post(f"{deployed.url}/api/v1/badges", json=BADGE, timeout=60).status_code == 201


@pytest.mark.slow
def test_add_applied_then_500_answers_the_badge_once_and_a_retry_is_a_409(deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    deployed.sandbox.faults.add(portal, "crm.activity.badge.add", "apply_then_500", count=3)
    assert api.post(f"{deployed.url}/api/v1/badges", json=BADGE, timeout=60).status_code == 201
    retried = api.post(f"{deployed.url}/api/v1/badges", json=BADGE, timeout=60)  # the UI retrying blindly
    assert retried.status_code in (201, 409), retried.text
    assert list(portal.badges) == ["faulty"], "no duplicate"
    keyed = {"Idempotency-Key": "retry-1"}
    other = {**BADGE, "code": "faultyTwo"}
    assert api.post(f"{deployed.url}/api/v1/badges", json=other, headers=keyed, timeout=60).status_code == 201
    replay = api.post(f"{deployed.url}/api/v1/badges", json=other, headers=keyed, timeout=60)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert sorted(portal.badges) == ["faulty", "faultyTwo"]


@pytest.mark.slow
def test_timeouts_on_add_are_resolved_and_bounded(deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    deployed.sandbox.faults.add(portal, "crm.activity.badge.add", "timeout", count=1, seconds=1.0)
    assert api.post(f"{deployed.url}/api/v1/badges", json=BADGE, timeout=60).status_code == 201
    assert list(portal.badges) == ["faulty"]
    deployed.sandbox.faults.add(portal, "crm.activity.badge.add", "timeout", count=5, seconds=1.0)
    before = _requests(deployed, portal, "crm.activity.badge.add")
    started = time.monotonic()
    response = api.post(f"{deployed.url}/api/v1/badges", json={**BADGE, "code": "slow"}, timeout=60)
    assert time.monotonic() - started < 15
    _clear_error(response, 503)
    assert _requests(deployed, portal, "crm.activity.badge.add") - before == 2
    assert list(portal.badges) == ["faulty"]
    deployed.sandbox.faults.clear(portal.member_id)


@pytest.mark.slow
def test_reads_retry_a_bounded_number_of_times_then_say_so(deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    redis.Redis.from_url(TEST_REDIS_URL).delete(keys.badge_cache(portal.member_id))  # the robot's registration read it
    before = _requests(deployed, portal, "crm.activity.badge.list")
    deployed.sandbox.faults.add(portal, "crm.activity.badge.list", "500", count=10)
    started = time.monotonic()
    response = api.get(f"{deployed.url}/api/v1/badges", timeout=60)
    elapsed = time.monotonic() - started
    _clear_error(response, 503, "INTERNAL_SERVER_ERROR")
    assert _requests(deployed, portal, "crm.activity.badge.list") - before == 4, "max_attempts"
    assert elapsed < 20, "within the retry budget"
    deployed.sandbox.faults.clear(portal.member_id)
    deployed.sandbox.faults.add(portal, "crm.activity.badge.get", "timeout", count=1, seconds=1.0)
    missing = api.get(f"{deployed.url}/api/v1/badges/nothingHere", timeout=60)
    _clear_error(missing, 404, "NOT_FOUND")
    assert _requests(deployed, portal, "crm.activity.badge.get") == 2, "one timeout, one retry"


@pytest.mark.slow
def test_an_import_whose_batch_answer_is_lost_creates_each_badge_once(deployed: Deployed) -> None:
    portal = deployed.installed_portal(rate=None)
    api = deployed.session(portal)
    items = [{"code": f"imp{i}", "title": f"Item {i}", "value": str(i), "type": "primary"} for i in range(120)]
    deployed.sandbox.faults.add(portal, "batch", "apply_then_500", count=1)
    response = api.post(f"{deployed.url}/api/v1/badges/import", json={"badges": items}, timeout=120)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["code"] for r in results] == [i["code"] for i in items]
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    assert sorted(portal.badges) == sorted(i["code"] for i in items), "every badge exactly once"
    deployed.sandbox.faults.add(portal, "batch", "500", count=10)
    failed = api.post(f"{deployed.url}/api/v1/badges/import", timeout=120,
                      json={"badges": [{**items[0], "code": "late"}]})
    _clear_error(failed, 503)
    assert "late" not in portal.badges
    deployed.sandbox.faults.clear(portal.member_id)

