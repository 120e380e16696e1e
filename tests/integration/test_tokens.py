"""Token refresh: reactive, single-flight across processes, never a loop."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from b24app.bitrix.oauth import OAuthClient, OAuthError
from b24app.bitrix.tokens import LEASE, REFRESH_WAIT, TokenManager, redis_locks
from b24app.errors import PortalUnavailable
from b24app.storage import keys
from b24app.storage.installations import Installation, PortalState
from tests.conftest import TEST_REDIS_URL
from tests.integration.helpers import oauth_counters, portal_requests
from tests.support import workers


@pytest.fixture
def b24(b24_on_both):
    """Every refresh test runs on the single Redis and on a 3-master cluster."""
    return b24_on_both


def _environ(b24, **extra: str) -> dict[str, str]:
    config = b24.config
    return {"B24_ENV": "development", "B24_CLIENT_ID": config.client_id, "B24_CLIENT_SECRET": config.client_secret,
            "B24_APP_URL": config.app_url, "B24_OAUTH_URL": config.oauth_url, "B24_ALLOW_HTTP": "1",
            "B24_SECRET_KEY": config.secret_key, "B24_TOKEN_KEYS": ",".join(config.token_keys),
            "REDIS_URL": config.redis_url or TEST_REDIS_URL, "B24_RATE": "1000/100000", **extra}


def _refreshes(b24) -> tuple[int, int]:
    counters = oauth_counters(b24.sandbox)
    return counters["refresh_ok"], counters["refresh_failed"]


def test_expired_token_is_refreshed_once_and_the_call_retried(b24) -> None:
    portal = b24.installed_portal()
    client = b24.services.portal_services.clients.portal(portal.member_id)
    old = b24.services.store.get(portal.member_id)
    b24.sandbox.expire_tokens(portal)
    ok_before, _ = _refreshes(b24)
    calls_before = portal_requests(b24.sandbox, portal.member_id)["profile"]
    assert client.call("profile").result["ID"] in (1, "1")
    assert _refreshes(b24)[0] == ok_before + 1
    new = b24.services.store.get(portal.member_id)
    assert new.refresh_token != old.refresh_token
    assert new.token_issued_at > old.token_issued_at
    assert portal_requests(b24.sandbox, portal.member_id)["profile"] == calls_before + 2  # 401, then success


def test_stored_expiry_in_the_past_refreshes_before_calling(b24) -> None:
    portal = b24.installed_portal()
    b24.services.store.update(portal.member_id, expires_at=time.time() - 5)
    before = portal_requests(b24.sandbox, portal.member_id).get("profile", 0)
    ok_before, _ = _refreshes(b24)
    b24.services.portal_services.clients.portal(portal.member_id).call("profile")
    assert _refreshes(b24)[0] == ok_before + 1
    assert portal_requests(b24.sandbox, portal.member_id)["profile"] == before + 1, "no wasted 401"


def test_invalid_grant_marks_the_portal_and_never_loops(b24) -> None:
    portal = b24.installed_portal()
    b24.sandbox.revoke_refresh(portal)
    b24.sandbox.expire_tokens(portal)
    client = b24.services.portal_services.clients.portal(portal.member_id)
    _, failed_before = _refreshes(b24)
    with pytest.raises(PortalUnavailable) as err:
        client.call("profile")
    assert "re-authorize" in str(err.value)
    record = b24.services.store.get(portal.member_id)
    assert record.state == PortalState.NEEDS_REAUTH
    assert record.last_error.startswith("invalid_grant")
    for _ in range(3):
        with pytest.raises(PortalUnavailable):
            client.call("profile")
    assert _refreshes(b24)[1] == failed_before + 1, "one refused refresh, then no more attempts"


def test_refresh_answer_for_another_portal_is_not_saved(b24) -> None:
    portal, other = b24.installed_portal(), b24.installed_portal()
    foreign = b24.sandbox.issue_tokens(other)
    record = b24.services.store.get(portal.member_id)
    b24.services.store.activate(Installation(**{**record.__dict__, "refresh_token": foreign["refresh_token"],
                                            "expires_at": 0.0}))
    with pytest.raises(OAuthError, match="another portal"):
        b24.services.portal_services.clients.portal(portal.member_id).call("profile")
    assert b24.services.store.get(portal.member_id).refresh_token == foreign["refresh_token"]


def test_refresh_is_a_form_post_with_no_secret_in_the_url(b24) -> None:
    portal = b24.installed_portal()
    seen: list[requests.PreparedRequest] = []

    class Recording(HTTPAdapter):
        def send(self, request, *args, **kwargs):
            seen.append(request)
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.mount("http://", Recording())
    store = b24.services.store
    manager = TokenManager(store, OAuthClient(b24.config, session), redis_locks(b24.services.redis))
    record = store.get(portal.member_id)
    manager.refresh(portal.member_id, record.access_token)
    (request,) = seen
    assert request.method == "POST"
    assert request.url == f"{b24.sandbox.oauth_url}/oauth/token/"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    body = request.body if isinstance(request.body, str) else request.body.decode()
    assert "grant_type=refresh_token" in body
    assert "client_secret=" in body
    assert b24.config.client_secret not in request.url
    assert record.refresh_token not in request.url


@pytest.mark.slow
def test_eight_processes_times_eight_threads_cause_one_refresh(b24) -> None:
    portal = b24.installed_portal(rate=None)  # this test is about refresh, not the portal's rate limit
    b24.sandbox.expire_tokens(portal)
    ok_before, failed_before = _refreshes(b24)
    with ProcessPoolExecutor(8, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(workers.call_many, _environ(b24), [portal.member_id], 8, 3) for _ in range(8)]
        results = [f.result(timeout=120) for f in futures]
    assert [r["errors"] for r in results] == [[]] * 8
    assert sum(r["ok"] for r in results) == 8 * 8 * 3
    assert _refreshes(b24) == (ok_before + 1, failed_before)
    assert b24.sandbox.sandbox.counters.portal(portal.member_id)["oauth"]["refresh_ok"] == 1


@pytest.mark.slow
def test_a_thousand_expired_portals_refresh_exactly_once_each(b24) -> None:
    store = b24.services.store
    portals = []
    for _ in range(1000):
        portal = b24.sandbox.create_portal(rate=None, deals=0)
        with b24.sandbox.sandbox.lock:
            b24.sandbox.sandbox.lifecycle.begin_install(portal, b24.card, 1)
            portal.installations[b24.card.client_id].installed = True
        chain = b24.sandbox.issue_tokens(portal)
        store.activate(Installation(member_id=portal.member_id, domain=portal.domain,
                                    client_endpoint=chain["client_endpoint"], owner_user_id=1,
                                    access_token=chain["access_token"], refresh_token=chain["refresh_token"],
                                    expires_at=float(chain["expires"])))
        portals.append(portal.member_id)
    try:
        b24.sandbox.sandbox.clock.advance(3601)
        ok_before, failed_before = _refreshes(b24)
        with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
            # every portal is hit by callers in two different processes at about the same time
            futures = [pool.submit(workers.call_many, _environ(b24), portals[i % 2::2], 8, 63) for i in range(4)]
            results = [f.result(timeout=300) for f in futures]
        errors = [e for r in results for e in r["errors"]]
        assert errors == []
        assert _refreshes(b24) == (ok_before + 1000, failed_before)
        snapshot = b24.sandbox.sandbox.counters.snapshot()["portals"]
        assert sorted({snapshot[m]["oauth"]["refresh_ok"] for m in portals}) == [1], "exactly one refresh each"
        assert all(store.get(m).state == "active" for m in portals)
    finally:
        for member_id in portals:
            b24.sandbox.remove_portal(member_id)


@pytest.mark.slow
def test_a_process_killed_holding_the_lock_delays_but_does_not_lose_the_portal(b24, tmp_path: Path) -> None:
    portal = b24.installed_portal()
    b24.sandbox.expire_tokens(portal)
    ready = tmp_path / "ready"
    context = multiprocessing.get_context("spawn")
    holder = context.Process(target=workers.hold_refresh_lock_forever,
                             args=(_environ(b24), portal.member_id, str(ready)))
    holder.start()
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline and holder.is_alive(), "the holder never took the lock"
        time.sleep(0.05)
    assert b24.services.redis.exists(keys.refresh_lock(portal.member_id))
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    ok_before, _ = _refreshes(b24)
    started = time.monotonic()
    assert b24.services.portal_services.clients.portal(portal.member_id).call("profile").result["ADMIN"] is True
    waited = time.monotonic() - started
    assert LEASE - 1 <= waited <= REFRESH_WAIT + 1, "the dead process's lease was honoured until it ran out"
    assert _refreshes(b24)[0] == ok_before + 1
