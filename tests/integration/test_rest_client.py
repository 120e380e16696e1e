"""The portal REST client: every error code's behaviour, limits, batch.

Each Bitrix24 error code of docs/bitrix24-protocol.md §3.3 / §2.4 and of the seed page is injected by the sandbox
(fault mode `error`, with the status the docs give) and the client's reaction is checked: refresh and
retry once, wait and retry, retry reads only, or fail fast — and never a refresh for codes that a
refresh cannot fix.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from b24app.bitrix.client import PortalClient, RetryPolicy, build_query
from b24app.bitrix.errors import (
    RULES,
    AccessDenied,
    AppNotInstalled,
    B24Error,
    InvalidArgument,
    OperationTimeLimit,
    OwnerCannotAct,
    Policy,
    QueryLimitExceeded,
    TokenError,
)
from b24app.bitrix.limiter import OperatingBudget, RateLimiter, RateLimitTimeout
from b24app.errors import PortalUninstalled
from b24app.storage import keys
from b24app.storage.crypto import TokenCipher
from b24app.web.errors import status_of
from tests.integration.helpers import oauth_counters, portal_requests, redis_commands
from tests.integration.test_tokens import _environ
from tests.support import workers

# Codes Bitrix24 sends in lower case (OAuth-layer errors); the rest are upper case or numeric.
LOWER_CASE_CODES = {"expired_token", "invalid_token", "insufficient_scope", "user_access_error",
                    "authorization_error"}
# code → HTTP status the portal uses for it (docs/bitrix24-protocol.md §3.3; others are 400 controller errors)
STATUSES = {"expired_token": 401, "invalid_token": 401, "no_auth_found": 401, "authorization_error": 401,
            "application_not_found": 401, "error_oauth": 401, "not_installed": 401, "portal_deleted": 403,
            "connection_error": 401, "access_denied": 403, "insufficient_scope": 401, "invalid_credentials": 401,
            "user_access_error": 401, "wrong_auth_type": 403, "allowed_only_intranet_user": 403,
            "access_error": 403, "method_confirm_waiting": 401, "method_confirm_denied": 403,
            "payment_required": 401, "query_limit_exceeded": 503, "operation_time_limit": 429,
            "overload_limit": 401, "internal_server_error": 500, "error_unexpected_answer": 500,
            "error_method_not_found": 404, "invalid_request": 401, "error_batch_method_not_allowed": 405}


def _client(b24, portal, sleeps: list[float], **kwargs) -> PortalClient:
    clients = b24.services.portal_services.clients
    return PortalClient(portal.member_id, store=clients.store, tokens=clients.tokens,
                        oauth=clients.oauth, http=b24.services.transport, allow_http=True,
                        retry=RetryPolicy(max_attempts=3, max_wait=1000), sleep=sleeps.append, **kwargs)


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_error_code_has_its_decided_behaviour(b24, code: str) -> None:
    portal = b24.installed_portal(rate=None)
    sleeps: list[float] = []
    client = _client(b24, portal, sleeps)
    wire_code = code if code in LOWER_CASE_CODES else code.upper()
    status = STATUSES.get(code, 400)
    refresh_before = oauth_counters(b24.sandbox)["refresh_ok"]
    b24.sandbox.faults.add(portal, "profile", "error", count=1, error=wire_code, status=status,
                           description=f"injected {wire_code}")
    rule = RULES[code]
    policy = rule.error_class.policy
    if policy is not Policy.FAIL:
        # one failure, then the retry (after refresh or a wait) succeeds: `profile` is a read
        assert client.call("profile").result["ADMIN"] is True
        calls = portal_requests(b24.sandbox, portal.member_id)["profile"]
        assert calls == 3  # the installer's admin check, the failure, the retry
        refreshed = oauth_counters(b24.sandbox)["refresh_ok"] - refresh_before
        assert refreshed == (1 if policy is Policy.REFRESH else 0)
        assert (len(sleeps) > 0) == (policy is not Policy.REFRESH)
    else:
        with pytest.raises(B24Error) as err:
            client.call("profile")
        assert isinstance(err.value, rule.error_class)
        assert err.value.code == wire_code
        assert status_of(err.value) != 500
        assert 400 <= status_of(err.value) < 500 or status_of(err.value) == 503
        assert oauth_counters(b24.sandbox)["refresh_ok"] == refresh_before, "no refresh for this code"
        assert portal_requests(b24.sandbox, portal.member_id)["profile"] == 2, "no retry"
        assert sleeps == []


@pytest.mark.parametrize("code", ["insufficient_scope", "PAYMENT_REQUIRED", "ACCESS_DENIED"])
@pytest.mark.parametrize("status", [401, 403])
def test_scope_payment_and_access_errors_never_refresh(b24, code: str, status: int) -> None:
    portal = b24.installed_portal(rate=None)
    client = _client(b24, portal, [])
    before = oauth_counters(b24.sandbox)["refresh_ok"]
    b24.sandbox.faults.add(portal, "crm.activity.badge.list", "error", error=code, status=status)
    with pytest.raises((AccessDenied, B24Error)) as err:
        client.call("crm.activity.badge.list")
    assert err.value.policy is Policy.FAIL
    assert oauth_counters(b24.sandbox)["refresh_ok"] == before


def test_writes_are_not_retried_on_a_server_error(b24) -> None:
    portal = b24.installed_portal(rate=None)
    sleeps: list[float] = []
    client = _client(b24, portal, sleeps)
    b24.sandbox.faults.add(portal, "crm.activity.badge.add", "500")
    with pytest.raises(B24Error) as err:
        client.call("crm.activity.badge.add", {"code": "x1", "title": "t", "value": "v", "type": "success"})
    assert status_of(err.value) == 503
    assert portal_requests(b24.sandbox, portal.member_id)["crm.activity.badge.add"] == 1
    assert sleeps == []


def test_timeouts_are_retried_for_reads(b24) -> None:
    portal = b24.installed_portal(rate=None)
    sleeps: list[float] = []
    client = _client(b24, portal, sleeps, timeout=(1.0, 0.5))
    b24.sandbox.faults.add(portal, "crm.activity.badge.list", "timeout", seconds=2)
    assert client.call("crm.activity.badge.list").result == {"badges": []}
    assert len(sleeps) == 1


def test_a_token_refused_after_a_refresh_is_not_refreshed_again(b24) -> None:
    portal = b24.installed_portal(rate=None)
    client = _client(b24, portal, [])
    b24.sandbox.faults.add(portal, "profile", "error", count=2, error="invalid_token", status=401)
    before = oauth_counters(b24.sandbox)["refresh_ok"]
    with pytest.raises(TokenError):
        client.call("profile")
    assert oauth_counters(b24.sandbox)["refresh_ok"] == before + 1


def test_owner_errors_and_uninstalled_apps_fail_fast_with_clear_messages(b24) -> None:
    portal = b24.installed_portal(rate=None)
    client = _client(b24, portal, [])
    b24.sandbox.faults.add(portal, "profile", "error", error="APPLICATION_NOT_FOUND", status=401,
                           description="Application not found")
    with pytest.raises(AppNotInstalled) as err:
        client.call("profile")
    assert "no longer installed" in err.value.message
    b24.sandbox.faults.add(portal, "profile", "error", error="authorization_error", status=401)
    with pytest.raises(OwnerCannotAct) as owner:
        client.call("profile")
    assert "administrator must open the app" in owner.value.message


def test_query_limit_waits_are_bounded(b24) -> None:
    portal = b24.installed_portal(rate=None)
    sleeps: list[float] = []
    client = _client(b24, portal, sleeps)
    b24.sandbox.faults.add(portal, "profile", "error", count=10, error="QUERY_LIMIT_EXCEEDED", status=503)
    with pytest.raises(QueryLimitExceeded) as err:
        client.call("profile")
    assert status_of(err.value) == 503
    assert len(sleeps) == 2, "max_attempts bounds the retries"
    # 1 s for the bucket plus exponential backoff (0.5 s × 1.5^n) with ±20% jitter
    assert 1.4 <= sleeps[0] <= 1.6
    assert 1.6 <= sleeps[1] <= 1.9


def test_an_answer_from_the_portal_ends_its_run_of_refusals(b24) -> None:
    portal = b24.installed_portal(rate=None)
    limiter = RateLimiter(b24.services.redis, 100, 1000)
    client = _client(b24, portal, [], limiter=limiter)
    b24.services.redis.delete(keys.rate(portal.member_id))  # what the install's calls booked, at another rate
    for _ in range(3):
        limiter.saturate(portal.member_id)
    with pytest.raises(RateLimitTimeout) as refused:
        limiter.acquire(portal.member_id, max_wait=0)
    assert refused.value.retry_after == 4, "three refusals in a row: stay away 4 s"
    b24.services.redis.delete(keys.rate(portal.member_id))
    assert client.call("profile").result
    limiter.saturate(portal.member_id)
    with pytest.raises(RateLimitTimeout) as refused:
        limiter.acquire(portal.member_id, max_wait=0)
    assert refused.value.retry_after < 0.05, "the portal answered: the bucket's own wait (10 ms) again"


def test_a_flood_past_its_share_is_refused_before_the_portal_is_read(b24, monkeypatch) -> None:
    """Once this process knows a portal's bucket is full, a caller past the portal's share of waiting threads
    is refused (503 with when to come back) without a single Redis command; within the share, or once the
    bucket has a slot again, the portal is read as always. An uninstall meanwhile is heard after the wait."""
    portal = b24.installed_portal(rate=None)
    b24.services.portal_services.binder.wait()
    clients = b24.services.portal_services.clients
    member = portal.member_id
    clients.limiter.saturate(member)
    sent = redis_commands(b24.services.redis, monkeypatch)
    with contextlib.ExitStack() as held:
        for _ in range(clients.bulkhead.share):
            held.enter_context(clients.bulkhead.wait_slot(member, "rate"))
        for _ in range(20):
            with pytest.raises(QueryLimitExceeded) as refused:
                clients.portal(member)
            assert status_of(refused.value) == 503
            assert 0 < refused.value.extra["retry_after"] <= 0.5
        assert sent == [], "no refusal read anything"
        assert clients.for_user(member, "user-token").member_id == member, \
            "a robot run's client is still made: its call is refused and retried by its job, not dropped"
    sent.clear()
    assert clients.portal(member).call("profile").result["ID"] in (1, "1"), "within the share: read and usable"
    assert sent

    b24.sandbox.uninstall(portal, clean=True)
    clients.limiter.saturate(member)
    with contextlib.ExitStack() as held:
        for _ in range(clients.bulkhead.share):
            held.enter_context(clients.bulkhead.wait_slot(member, "rate"))
        with pytest.raises(QueryLimitExceeded) as refused:
            clients.portal(member)
        time.sleep(refused.value.extra["retry_after"])
        with pytest.raises(PortalUninstalled):
            clients.portal(member).call("profile")


def test_a_call_reads_the_portal_in_the_round_trip_that_admits_it(b24, monkeypatch) -> None:
    """The portal's record is read in the script that admits the call, not in a round-trip of its own, and
    only when the call is made: a chain another process renewed meanwhile is the one used."""
    portal = b24.installed_portal(rate=None)
    b24.services.portal_services.binder.wait()
    clients = b24.services.portal_services.clients
    member = portal.member_id
    sent = redis_commands(b24.services.redis, monkeypatch)
    client = clients.portal(member)
    assert sent == [], "making the client reads nothing"
    assert client.call("profile").result["ID"] in (1, "1")
    assert [(name, *named[1:]) for name, *named in sent] == [
        ("EVALSHA", keys.rate(member), keys.operating(member), keys.portal(member))], sent

    client = clients.portal(member)
    stale = clients.store.get(member).access_token
    b24.sandbox.revoke_tokens(portal)
    clients.tokens.refresh(member, stale)  # as another process would, between the client's making and its call
    refreshes, calls = oauth_counters(b24.sandbox)["refresh_ok"], portal_requests(b24.sandbox, member)["profile"]
    assert client.call("profile").result["ID"] in (1, "1")
    assert portal_requests(b24.sandbox, member)["profile"] == calls + 1, "no call with the revoked token"
    assert oauth_counters(b24.sandbox)["refresh_ok"] == refreshes


def test_an_uninstall_between_a_clients_making_and_its_call_sends_nothing(b24) -> None:
    portal = b24.installed_portal(rate=None)
    b24.services.portal_services.binder.wait()
    client = b24.services.portal_services.clients.portal(portal.member_id)
    calls = portal_requests(b24.sandbox, portal.member_id).get("profile", 0)
    b24.sandbox.uninstall(portal, clean=True)
    with pytest.raises(PortalUninstalled):
        client.call("profile")
    assert portal_requests(b24.sandbox, portal.member_id).get("profile", 0) == calls


def test_a_record_of_the_earlier_layout_is_read_its_own_way_before_the_call(b24) -> None:
    """A record still in the hash layout of an earlier version cannot be read along with the admission: the
    store reads it (and stores it anew), and the call goes through."""
    portal = b24.installed_portal(rate=None)
    b24.services.portal_services.binder.wait()
    clients = b24.services.portal_services.clients
    member, redis_client = portal.member_id, b24.services.redis
    record = clients.store.get(member)
    cipher = TokenCipher(b24.config.token_keys)
    redis_client.delete(keys.portal(member))
    redis_client.hset(keys.portal(member), mapping={
        "domain": record.domain, "client_endpoint": record.client_endpoint, "state": "active",
        "expires_at": repr(record.expires_at), "owner_user_id": str(record.owner_user_id),
        "tokens": cipher.encrypt(json.dumps({"a": record.access_token, "r": record.refresh_token}))})
    assert clients.portal(member).call("profile").result["ID"] in (1, "1")
    assert redis_client.type(keys.portal(member)) == b"string"


def _operating_client(b24, portal, sleeps: list[float], limit: float) -> PortalClient:
    clients = b24.services.portal_services.clients
    return PortalClient(portal.member_id, store=clients.store, tokens=clients.tokens,
                        oauth=clients.oauth, http=b24.services.transport, allow_http=True,
                        budget=OperatingBudget(b24.services.redis, limit=limit),
                        retry=RetryPolicy(max_attempts=3, max_wait=5), sleep=sleeps.append)


def _calls(b24, portal, client: PortalClient, method: str, times: int) -> list[str]:
    outcomes = []
    for _ in range(times):
        try:
            client.call(method)
            outcomes.append("ok")
        except OperationTimeLimit:
            outcomes.append("paused")
    return outcomes


@pytest.fixture
def costly_list(b24):
    """`server.time` (which the app itself never calls) costs 4 s of operating time per call on this sandbox."""
    b24.sandbox.sandbox.set_method_cost("server.time", 4.0)
    yield "server.time"
    b24.sandbox.sandbox.set_operating_limit(480)
    b24.sandbox.sandbox.set_method_cost("server.time", 0.0)


def test_operating_budget_pauses_a_method_before_the_portal_blocks_it(b24, costly_list: str) -> None:
    portal = b24.installed_portal(rate=None)
    b24.sandbox.sandbox.set_operating_limit(20)
    client = _operating_client(b24, portal, [], limit=20)
    assert _calls(b24, portal, client, costly_list, 7) == ["ok"] * 5 + ["paused"] * 2
    counters = b24.sandbox.sandbox.counters.snapshot()["portals"][portal.member_id]
    assert counters["operation_limited"] == 0, "the portal never had to block the method"
    assert counters["requests"][costly_list] == 5, "paused calls never left the app"


def test_small_operating_reports_are_stored_only_to_replace_a_large_one(b24, costly_list: str) -> None:
    """Reports below the record floor change no decision: no Redis write, unless one replaces a large report."""
    portal = b24.installed_portal(rate=None)
    budget = OperatingBudget(b24.services.redis)
    field = f"{costly_list}:op"
    client = _operating_client(b24, portal, [], limit=480)
    client.call(costly_list)
    assert b24.services.redis.hget(keys.operating(portal.member_id), field) is None
    budget.record(portal.member_id, costly_list, 300.0, time.time() + 60)
    client.call(costly_list)
    assert float(b24.services.redis.hget(keys.operating(portal.member_id), field)) == pytest.approx(8.0, abs=0.01)
    client.call(costly_list)
    assert float(b24.services.redis.hget(keys.operating(portal.member_id), field)) == pytest.approx(8.0, abs=0.01), \
        "once the large report is replaced, small ones are not written again"


def test_a_429_parks_the_method_until_its_reset(b24, costly_list: str) -> None:
    portal = b24.installed_portal(rate=None)
    b24.sandbox.sandbox.set_operating_limit(6)  # stricter than the budget the app knows of
    client = _operating_client(b24, portal, [], limit=480)
    assert _calls(b24, portal, client, costly_list, 5) == ["ok"] * 2 + ["paused"] * 3
    counters = b24.sandbox.sandbox.counters.snapshot()["portals"][portal.member_id]
    assert counters["operation_limited"] == 1
    assert counters["requests"][costly_list] == 3, "after the 429 the method is parked, not retried"
    assert client.call("profile").result["ADMIN"] is True, "other methods are unaffected"


def test_batch_chunks_results_and_errors(b24) -> None:
    portal = b24.installed_portal(rate=None)
    client = b24.services.portal_services.clients.portal(portal.member_id)
    commands = {f"c{i}": ("crm.activity.badge.add", {"code": f"b{i}", "title": {"en": f"T{i}"}, "value": "v",
                                                      "type": "success"}) for i in range(120)}
    commands["c5"] = ("crm.activity.badge.add", {"code": "b5", "title": "t", "value": "v", "type": "lavender"})
    before = portal_requests(b24.sandbox, portal.member_id).get("batch", 0)
    result = client.batch(commands)
    assert portal_requests(b24.sandbox, portal.member_id)["batch"] - before == 3
    assert len(result.result) == 119
    assert set(result.errors) == {"c5"}
    assert isinstance(result.errors["c5"], InvalidArgument)
    assert result.errors["c5"].code == "WRONG_TYPE_VALUE"
    assert result.result["c0"]["badge"]["title"] == {"en": "T0"}
    assert len(portal.badges) == 119


def test_batch_halt_and_references(b24) -> None:
    portal = b24.installed_portal(rate=None)
    client = b24.services.portal_services.clients.portal(portal.member_id)
    result = client.batch({
        "add": ("crm.activity.badge.add", {"code": "ref1", "title": "t", "value": "v", "type": "success"}),
        "get": ("crm.activity.badge.get", {"code": "$result[add][badge][code]"}),
    })
    assert result.result["get"]["badge"]["code"] == "ref1"
    halted = client.batch({
        "bad": ("crm.activity.badge.add", {"code": "ref2", "title": "t", "value": "v", "type": "nope"}),
        "never": ("crm.activity.badge.add", {"code": "ref3", "title": "t", "value": "v", "type": "success"}),
    }, halt=True)
    assert set(halted.errors) == {"bad"}
    assert "never" not in halted.result
    assert "ref3" not in portal.badges


def test_build_query_matches_php_http_build_query() -> None:
    assert build_query({"a": 1, "b": {"c": "x y", "d": [1, 2]}, "e": True, "f": None}) == \
        "a=1&b[c]=x%20y&b[d][0]=1&b[d][1]=2&e=1"


@pytest.mark.slow
def test_four_processes_importing_share_one_rate_limit(b24) -> None:
    portal = b24.installed_portal(rate=(2, 20))  # the install's own bindings use about a dozen calls
    environ = _environ(b24, B24_RATE="2/20")
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(workers.import_badges, environ, portal.member_id, f"p{n}x", 60, 6) for n in range(4)]
        results = [f.result(timeout=180) for f in futures]
    assert [r["errors"] for r in results] == [[]] * 4
    assert sum(r["created"] for r in results) == 4 * 66
    assert len(portal.badges) == 4 * 66
    counters = b24.sandbox.sandbox.counters.snapshot()["portals"][portal.member_id]
    assert counters["rate_limited"] <= 1, f"the portal answered {counters['rate_limited']} × 503"
