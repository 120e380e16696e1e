"""Bulkheads, the refresh lease and a sick OAuth server, without Redis or sockets (docs/DESIGN.md §10).

tests/faults/test_isolation.py shows the same under gunicorn; these pin the mechanisms down.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from b24app.bitrix.bulkhead import Bulkhead, default_share
from b24app.bitrix.errors import QueryLimitExceeded
from b24app.bitrix.oauth import OAuthClient, OAuthUnavailable, TokenRejected
from b24app.errors import RateLimitTimeout, RefreshBusy
from b24app.web.errors import describe
from tests.conftest import make_config
from tests.unit.fakes import MEMBER_ID, FakeOAuth, Portal, Script, ThreadLocks, error, ok, token_set

LIST = "crm.activity.badge.list"


def test_a_portal_gets_its_share_of_waiting_threads_and_no_more() -> None:
    bulkhead = Bulkhead(share=2)
    with bulkhead.wait_slot("a", "rate") as first, bulkhead.wait_slot("a", "rate") as second:
        with bulkhead.wait_slot("a", "rate") as third, bulkhead.wait_slot("b", "rate") as other:
            assert (first, second, third, other) == (True, True, False, True)
        assert bulkhead.waiting("a") == 2
    assert bulkhead.waiting("a") == 0
    with bulkhead.wait_slot("a", "rate") as again:
        assert again


@pytest.mark.parametrize(("threads", "share"), [(8, 2), (16, 4), (1, 2), (32, 8)])
def test_the_share_is_a_quarter_of_the_threads(threads: int, share: int) -> None:
    assert default_share(threads) == share


def test_a_retry_needs_a_waiting_slot_or_the_error_is_answered_at_once() -> None:
    bulkhead = Bulkhead(share=1)
    limited = error("QUERY_LIMIT_EXCEEDED", 503)
    portal = Portal.build(Script({LIST: [limited, limited, ok({"badges": []})]}), bulkhead=bulkhead)
    with bulkhead.wait_slot(MEMBER_ID, "rate"), pytest.raises(QueryLimitExceeded):
        portal.client.call(LIST)
    assert portal.sleep.delays == [], "no sleep while another thread holds the portal's share"
    assert len(portal.sent(LIST)) == 1
    assert portal.client.call(LIST).result == {"badges": []}
    assert len(portal.sleep.delays) == 1, "with a free slot the same call waits and retries"
    assert len(portal.sent(LIST)) == 3


def test_waiting_for_another_refresh_needs_a_slot_too() -> None:
    bulkhead = Bulkhead(share=1)
    locks = ThreadLocks()
    portal = Portal.build(Script({LIST: ok([])}), bulkhead=bulkhead, locks=locks)
    lock = locks(MEMBER_ID)
    assert lock.acquire(blocking=False), "another refresh of this portal is in flight"
    try:
        with bulkhead.wait_slot(MEMBER_ID, "rate"), pytest.raises(RefreshBusy):
            portal.client._tokens.refresh(MEMBER_ID, "a1")
    finally:
        lock.release()
    assert portal.oauth.refresh_calls == []


def test_the_refresh_lease_is_renewed_while_the_oauth_server_is_slow() -> None:
    class SlowOAuth(FakeOAuth):
        def refresh(self, refresh_token: str) -> Any:
            time.sleep(0.15)
            return super().refresh(refresh_token)

    locks = ThreadLocks()
    portal = Portal.build(Script({LIST: [error("expired_token", 401), ok([])]}),
                          oauth=SlowOAuth(refreshes=[token_set("a2", "r2")]), locks=locks)
    assert portal.client.call(LIST).result == []
    assert locks(MEMBER_ID).renewals >= 3
    assert portal.record.refresh_token == "r2"


class _OAuthServer(BaseAdapter):
    """app.info answers without a socket: rejects every token, optionally after `gate` opens."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.calls = 0
        self.gate = gate

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        response = requests.Response()
        response.status_code = 401
        response._content = b'{"error": "invalid_token", "error_description": "The access token provided is invalid"}'
        response.request = request
        return response

    def close(self) -> None:
        pass


def _oauth_client(adapter: BaseAdapter, concurrency: int = 4) -> OAuthClient:
    session = requests.Session()
    session.mount("http://", adapter)
    return OAuthClient(make_config(B24_OAUTH_URL="http://oauth.example.test"), session,
                       app_info_concurrency=concurrency)


def test_a_rejected_token_is_remembered_so_garbage_costs_one_call() -> None:
    server = _OAuthServer()
    oauth = _oauth_client(server)
    for _ in range(5):
        with pytest.raises(TokenRejected):
            oauth.app_info("garbage")
    assert server.calls == 1
    with pytest.raises(TokenRejected):
        oauth.app_info("other garbage")
    assert server.calls == 2


def test_token_checks_beyond_the_cap_are_refused_at_once() -> None:
    gate = threading.Event()
    server = _OAuthServer(gate)
    oauth = _oauth_client(server, concurrency=2)
    outcomes: list[str] = []
    hung = [threading.Thread(target=lambda i=i: _check(oauth, f"t{i}", outcomes)) for i in range(2)]
    for thread in hung:
        thread.start()
    while server.calls < 2:
        time.sleep(0.005)
    started = time.monotonic()
    with pytest.raises(OAuthUnavailable, match="busy"):
        oauth.app_info("t3")
    assert time.monotonic() - started < 0.5
    gate.set()
    for thread in hung:
        thread.join(5)
    assert outcomes == ["rejected", "rejected"]
    with pytest.raises(TokenRejected):
        oauth.app_info("t4")  # the slots came back


def _check(oauth: OAuthClient, token: str, outcomes: list[str]) -> None:
    try:
        oauth.app_info(token)
    except TokenRejected:
        outcomes.append("rejected")


@pytest.mark.parametrize(("refusal", "least"), [(RateLimitTimeout(3.2, MEMBER_ID), 4), (RefreshBusy("busy"), 2),
                                                (QueryLimitExceeded("QUERY_LIMIT_EXCEEDED", "full"), 5)])
def test_callers_refused_together_are_told_to_come_back_at_different_times(refusal, least: int) -> None:
    """Retry-After is the known wait plus up to half of it at random: a flood refused at once is spread out."""
    told = [int(describe(refusal)[4]["Retry-After"]) for _ in range(200)]
    assert min(told) == least and max(told) == least + max(1, least // 2)
    assert len(set(told)) > 1
