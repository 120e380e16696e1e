"""The portal REST client's decided behaviour (docs/DESIGN.md §7, docs/bitrix24-protocol.md §2.3, §3.1–§3.4).

Refresh once on a token error, fail fast on rights/scope/plan errors, retry reads but never writes on
an unknown outcome, wait out rate limits within a bounded budget, follow a rename only when the OAuth
server confirms it, mark a portal whose chain is dead, report one observation per logical call, and
split/merge `batch`. Unit tests: `MockTransport` answers instead of portals, the in-memory store and a
fake OAuth server stand in for Redis and oauth.bitrix.info, and sleeping is only recorded.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest

from b24app.bitrix.client import DEFAULT_TIMEOUT, RetryPolicy
from b24app.bitrix.errors import (
    AccessDenied,
    B24Error,
    NotFound,
    OwnerCannotAct,
    PaymentRequired,
    PortalServerError,
    QueryLimitExceeded,
    TokenError,
    TransportError,
)
from b24app.bitrix.oauth import InvalidGrant, OAuthError, OAuthUnavailable, TokenRejected
from b24app.bitrix.transport import Reply, Request, TransportFailure, reply
from b24app.errors import PortalNeedsReauth
from b24app.storage.installations import PortalState
from tests.unit.fakes import (
    DOMAIN,
    ENDPOINT,
    FakeOAuth,
    Portal,
    Script,
    app_info,
    error,
    ok,
    token_set,
)

LIST = "crm.activity.badge.list"
GET = "crm.activity.badge.get"
ADD = "crm.activity.badge.add"
BADGE = {"code": "missed", "title": "Call", "value": "Missed", "type": "failure"}
NEW_ENDPOINT = "https://new.example.com/rest/"
NEW_DOMAIN = "new.example.com"


# -- success and auth ---------------------------------------------------------------------------

def test_success_returns_the_result_of_a_json_post_to_the_stored_endpoint() -> None:
    portal = Portal.build(Script({LIST: ok({"badges": [BADGE]}, total=1)}))

    result = portal.client.call(LIST, {"filter": {"code": "missed"}})

    assert result.result == {"badges": [BADGE]}
    assert result.total == 1
    assert result.time["duration"] == 0.024
    [request] = portal.requests
    assert request.url == "https://portal.example.com/rest/crm.activity.badge.list"
    assert request.payload == {"filter": {"code": "missed"}, "auth": "a1"}
    assert request.headers["Accept"] == "application/json"
    assert request.timeout == DEFAULT_TIMEOUT


@pytest.mark.parametrize("code", ["expired_token", "invalid_token", "NO_AUTH_FOUND"])
def test_a_refused_token_is_refreshed_once_and_the_call_retried_with_the_new_one(code: str) -> None:
    oauth = FakeOAuth(refreshes=[token_set("a2", "r2")])
    portal = Portal.build(lambda r: ok(BADGE) if r.payload["auth"] == "a2" else error(code, 401), oauth=oauth)

    assert portal.client.call(ADD, BADGE).result == BADGE

    assert [r.payload["auth"] for r in portal.requests] == ["a1", "a2"]
    assert portal.requests[1].payload == {**BADGE, "auth": "a2"}
    assert oauth.refresh_calls == ["r1"]
    assert (portal.record.access_token, portal.record.refresh_token) == ("a2", "r2")
    assert portal.sleep.delays == []


def test_a_token_refused_again_after_the_refresh_raises_without_a_second_refresh() -> None:
    oauth = FakeOAuth(refreshes=[token_set("a2", "r2"), token_set("a3", "r3")])
    portal = Portal.build(Script({LIST: error("expired_token", 401, "The access token provided has expired")}),
                          oauth=oauth)

    with pytest.raises(TokenError) as caught:
        portal.client.call(LIST)

    assert caught.value.code == "expired_token"
    assert [r.payload["auth"] for r in portal.requests] == ["a1", "a2"]
    assert oauth.refresh_calls == ["r1"]


def test_a_stored_token_past_its_expiry_is_refreshed_before_the_first_request() -> None:
    oauth = FakeOAuth(refreshes=[token_set("a2", "r2")])
    portal = Portal.build(Script({LIST: ok([])}), oauth=oauth)
    portal.store.update("m1", expires_at=time.time() - 1)

    portal.client.call(LIST)

    assert [r.payload["auth"] for r in portal.requests] == ["a2"]
    assert oauth.refresh_calls == ["r1"]


@pytest.mark.parametrize("status", [400, 401, 402, 403])
@pytest.mark.parametrize(("code", "error_class"), [("insufficient_scope", AccessDenied),
                                                   ("ACCESS_DENIED", AccessDenied),
                                                   ("PAYMENT_REQUIRED", PaymentRequired)])
def test_rights_scope_and_plan_errors_fail_fast_without_a_refresh(code: str, error_class: type[B24Error],
                                                                  status: int) -> None:
    oauth = FakeOAuth(refreshes=[token_set("a2", "r2")])
    portal = Portal.build(Script({LIST: error(code, status)}), oauth=oauth)

    with pytest.raises(error_class) as caught:
        portal.client.call(LIST)

    assert caught.value.code == code
    assert len(portal.requests) == 1
    assert oauth.refresh_calls == []
    assert portal.sleep.delays == []


# -- unknown outcomes: reads are retried, writes are not ----------------------------------------

def test_a_read_answered_500_is_retried_after_a_backoff() -> None:
    portal = Portal.build(Script({LIST: [error("INTERNAL_SERVER_ERROR", 500), ok({"badges": []})]}))

    assert portal.client.call(LIST).result == {"badges": []}

    assert len(portal.requests) == 2
    [delay] = portal.sleep.delays
    assert 0.4 <= delay <= 0.6


def test_a_read_failing_every_time_backs_off_longer_each_time_and_raises_after_max_attempts() -> None:
    portal = Portal.build(Script({LIST: error("INTERNAL_SERVER_ERROR", 500)}))

    with pytest.raises(PortalServerError):
        portal.client.call(LIST)

    assert len(portal.requests) == 4
    first, second, third = portal.sleep.delays
    assert 0.4 <= first <= 0.6
    assert 0.6 <= second <= 0.9
    assert 0.9 <= third <= 1.35


def test_a_write_answered_500_is_not_repeated() -> None:
    portal = Portal.build(Script({ADD: [error("INTERNAL_SERVER_ERROR", 500), ok({"badge": BADGE})]}))

    with pytest.raises(PortalServerError):
        portal.client.call(ADD, BADGE)

    assert len(portal.requests) == 1
    assert portal.sleep.delays == []


def test_a_transport_failure_on_a_read_is_retried() -> None:
    portal = Portal.build(Script({GET: [TransportFailure("ReadTimeout"), ok({"badge": BADGE})]}))

    assert portal.client.call(GET, {"code": "missed"}).result == {"badge": BADGE}

    assert len(portal.requests) == 2
    assert len(portal.sleep.delays) == 1


@pytest.mark.parametrize("kind", ["ReadTimeout", "ConnectionError"])
def test_a_transport_failure_on_a_write_raises_after_one_request(kind: str) -> None:
    portal = Portal.build(Script({ADD: [TransportFailure(kind), ok({"badge": BADGE})]}))

    with pytest.raises(TransportError) as caught:
        portal.client.call(ADD, BADGE)

    assert caught.value.code == kind
    assert len(portal.requests) == 1
    assert portal.sleep.delays == []


def test_a_write_declared_idempotent_is_retried_like_a_read() -> None:
    portal = Portal.build(Script({ADD: [TransportFailure("ReadTimeout"), ok({"badge": BADGE})]}))

    portal.client.call(ADD, BADGE, idempotent=True)

    assert len(portal.requests) == 2


# -- rate limits ----------------------------------------------------------------------------------

def test_query_limit_exceeded_is_waited_out_and_the_write_retried() -> None:
    limited = error("QUERY_LIMIT_EXCEEDED", 503, "Too many requests")
    portal = Portal.build(Script({ADD: [limited, limited, ok({"badge": BADGE})]}))

    assert portal.client.call(ADD, BADGE).result == {"badge": BADGE}

    assert len(portal.requests) == 3
    assert len(portal.sleep.delays) == 2
    assert all(delay >= 1.0 for delay in portal.sleep.delays)


def test_query_limit_exceeded_is_raised_after_max_attempts() -> None:
    portal = Portal.build(Script({ADD: error("QUERY_LIMIT_EXCEEDED", 503)}))

    with pytest.raises(QueryLimitExceeded):
        portal.client.call(ADD, BADGE)

    assert len(portal.requests) == 4
    assert len(portal.sleep.delays) == 3
    assert sum(portal.sleep.delays) <= 20.0


@pytest.mark.parametrize("max_wait", [0.5, 1.7, 2.5, 4.0, 6.0])
def test_waits_for_the_query_limit_never_add_up_to_more_than_max_wait(max_wait: float) -> None:
    retry = RetryPolicy(max_attempts=50, max_wait=max_wait, backoff_base=0.5, backoff_cap=8.0)
    portal = Portal.build(Script({LIST: error("QUERY_LIMIT_EXCEEDED", 503)}), retry=retry)

    with pytest.raises(QueryLimitExceeded):
        portal.client.call(LIST)

    assert sum(portal.sleep.delays) <= max_wait
    assert len(portal.requests) == len(portal.sleep.delays) + 1


# -- a renamed portal -----------------------------------------------------------------------------

def renamed(location_base: str = NEW_ENDPOINT) -> Callable[[Request], Reply]:
    """The old address answers 302 to `location_base + method`; any other address answers success."""
    def handler(request: Request) -> Reply:
        if request.url.startswith(ENDPOINT):
            return reply(302, location=location_base + request.method)
        return ok({"badges": []})
    return handler


def test_a_rename_confirmed_by_the_oauth_server_is_followed_and_stored() -> None:
    oauth = FakeOAuth(infos={"a1": app_info(client_endpoint=NEW_ENDPOINT, domain=NEW_DOMAIN)})
    portal = Portal.build(renamed(), oauth=oauth)

    assert portal.client.call(LIST).result == {"badges": []}

    assert [r.url for r in portal.requests] == [ENDPOINT + LIST, NEW_ENDPOINT + LIST]
    assert portal.requests[1].payload["auth"] == "a1"
    assert oauth.app_info_calls == ["a1"]
    assert (portal.record.client_endpoint, portal.record.domain) == (NEW_ENDPOINT, NEW_DOMAIN)

    portal.client.call(LIST)

    assert portal.requests[-1].url == NEW_ENDPOINT + LIST
    assert len(portal.requests) == 3


def test_a_rename_with_an_expired_token_is_confirmed_by_the_refresh_answer() -> None:
    oauth = FakeOAuth(infos={"a1": TokenRejected("expired_token")},
                      refreshes=[token_set("a2", "r2", client_endpoint=NEW_ENDPOINT)])
    portal = Portal.build(renamed(), oauth=oauth)

    portal.client.call(LIST)

    assert [(r.url, r.payload["auth"]) for r in portal.requests] == [(ENDPOINT + LIST, "a1"),
                                                                      (NEW_ENDPOINT + LIST, "a2")]
    assert oauth.refresh_calls == ["r1"]
    assert (portal.record.client_endpoint, portal.record.domain) == (NEW_ENDPOINT, NEW_DOMAIN)


@pytest.mark.parametrize("answer", [
    app_info(client_endpoint="https://elsewhere.example.com/rest/", domain="elsewhere.example.com"),
    app_info(client_endpoint=NEW_ENDPOINT, domain=NEW_DOMAIN, member_id="m2"),
    OAuthUnavailable("unavailable", "ReadTimeout"),
], ids=["another-endpoint", "another-portal", "oauth-unavailable"])
def test_a_rename_the_oauth_server_does_not_confirm_is_not_followed(answer: Any) -> None:
    portal = Portal.build(renamed(), oauth=FakeOAuth(infos={"a1": answer}))

    with pytest.raises(TransportError) as caught:
        portal.client.call(LIST)

    assert caught.value.code == "BAD_REDIRECT"
    assert [r.url for r in portal.requests] == [ENDPOINT + LIST]
    assert (portal.record.client_endpoint, portal.record.domain) == (ENDPOINT, DOMAIN)


@pytest.mark.parametrize("location_base", ["http://new.example.com/rest/", "https://new.example.com/other/",
                                           "ftp://new.example.com/rest/"])
def test_a_redirect_to_an_unusable_address_is_refused_without_asking_the_oauth_server(location_base: str) -> None:
    oauth = FakeOAuth(infos={"a1": app_info(client_endpoint=location_base, domain=NEW_DOMAIN)})
    portal = Portal.build(renamed(location_base), oauth=oauth)

    with pytest.raises(TransportError) as caught:
        portal.client.call(LIST)

    assert caught.value.code == "BAD_REDIRECT"
    assert len(portal.requests) == 1
    assert oauth.app_info_calls == []
    assert portal.record.client_endpoint == ENDPOINT


def test_a_redirect_to_http_is_followed_when_http_is_allowed() -> None:
    http_endpoint = "http://new.example.com/rest/"
    oauth = FakeOAuth(infos={"a1": app_info(client_endpoint=http_endpoint, domain=NEW_DOMAIN)})
    portal = Portal.build(renamed(http_endpoint), oauth=oauth, allow_http=True)

    portal.client.call(LIST)

    assert portal.requests[-1].url == http_endpoint + LIST
    assert portal.record.client_endpoint == http_endpoint


def test_a_second_redirect_after_following_one_is_not_followed() -> None:
    oauth = FakeOAuth(infos={"a1": app_info(client_endpoint=NEW_ENDPOINT, domain=NEW_DOMAIN)})
    moved = reply(302, b"<html>Moved</html>", location=NEW_ENDPOINT + ADD)
    portal = Portal.build(Script({ADD: [moved, moved, ok({"badge": BADGE})]}), oauth=oauth)

    with pytest.raises(TransportError) as caught:
        portal.client.call(ADD, BADGE)

    assert caught.value.code == "HTTP_302"

    assert [r.url for r in portal.requests] == [ENDPOINT + ADD, NEW_ENDPOINT + ADD]
    assert oauth.app_info_calls == ["a1"]


def test_a_second_redirect_with_a_json_body_is_not_taken_for_a_success() -> None:
    oauth = FakeOAuth(infos={"a1": app_info(client_endpoint=NEW_ENDPOINT, domain=NEW_DOMAIN)})
    moved = reply(302, {}, location=NEW_ENDPOINT + ADD)
    portal = Portal.build(Script({ADD: [moved, moved, ok({"badge": BADGE})]}), oauth=oauth)

    with pytest.raises(B24Error):
        portal.client.call(ADD, BADGE)


# -- a chain that cannot act any more -------------------------------------------------------------

def test_authorization_error_marks_the_portal_for_reauthorization_naming_the_owner() -> None:
    oauth = FakeOAuth(refreshes=[token_set("a2", "r2")])
    portal = Portal.build(Script({ADD: error("authorization_error", 401, "Unable to authorize user")}), oauth=oauth)

    with pytest.raises(OwnerCannotAct):
        portal.client.call(ADD, BADGE)

    assert portal.record.state == PortalState.NEEDS_REAUTH
    assert "user 1 " in portal.record.last_error
    assert len(portal.requests) == 1
    assert oauth.refresh_calls == []
    with pytest.raises(PortalNeedsReauth):
        portal.client.call(ADD, BADGE)
    assert len(portal.requests) == 1


def test_invalid_grant_on_refresh_marks_the_portal_for_reauthorization() -> None:
    oauth = FakeOAuth(refreshes=[InvalidGrant("invalid_grant", "The refresh token is invalid")])
    portal = Portal.build(Script({LIST: error("expired_token", 401)}), oauth=oauth)

    with pytest.raises(PortalNeedsReauth):
        portal.client.call(LIST)

    assert portal.record.state == PortalState.NEEDS_REAUTH
    assert portal.record.last_error.startswith("invalid_grant")
    assert len(portal.requests) == 1
    assert oauth.refresh_calls == ["r1"]


def test_a_refresh_answered_for_another_portal_is_refused_and_not_saved() -> None:
    oauth = FakeOAuth(refreshes=[token_set("a2", "r2", member_id="m2")])
    portal = Portal.build(Script({LIST: error("expired_token", 401)}), oauth=oauth)

    with pytest.raises(OAuthError) as caught:
        portal.client.call(LIST)

    assert type(caught.value) is OAuthError
    assert (portal.record.access_token, portal.record.refresh_token) == ("a1", "r1")
    assert portal.record.state == PortalState.ACTIVE
    assert len(portal.requests) == 1


# -- observations ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("answers", "method", "outcome"), [
    ([error("INTERNAL_SERVER_ERROR", 500), ok([])], LIST, "ok"),
    (error("INTERNAL_SERVER_ERROR", 500), ADD, "INTERNAL_SERVER_ERROR"),
    (error("QUERY_LIMIT_EXCEEDED", 503), LIST, "QUERY_LIMIT_EXCEEDED"),
    (TransportFailure("ReadTimeout"), ADD, "ReadTimeout"),
    (error("SOMETHING_NEW_FROM_BITRIX", 400), ADD, "OTHER"),
    (error("SOMETHING_NEW_FROM_BITRIX", 500), LIST, "OTHER"),
], ids=["ok-after-retry", "known-code", "after-waits", "transport", "unknown-4xx", "unknown-5xx"])
def test_the_observer_sees_each_logical_call_once(answers: Any, method: str, outcome: str) -> None:
    portal = Portal.build(Script({method: answers}))

    with contextlib.suppress(B24Error):
        portal.client.call(method)

    [(seen_method, seen_outcome, seconds)] = portal.observed
    assert (seen_method, seen_outcome) == (method, outcome)
    assert seconds >= 0.0


# -- batch ----------------------------------------------------------------------------------------

def batch_portal(failing: set[str]) -> Callable[[Request], Reply]:
    """A batch endpoint: commands named in `failing` answer NOT_FOUND, the rest their parsed params."""
    def handler(request: Request) -> Reply:
        assert request.method == "batch"
        cmd: dict[str, str] = request.payload["cmd"]
        results = {key: {k: v[0] for k, v in parse_qs(query.partition("?")[2]).items()}
                   for key, query in cmd.items() if key not in failing}
        errors = {key: {"error": "NOT_FOUND", "error_description": "Badge not found"} for key in cmd if key in failing}
        return ok({"result": results or [], "result_error": errors or [], "result_total": [], "result_next": [],
                   "result_time": {key: {"operating": 0.01} for key in cmd}})
    return handler


def test_batch_splits_into_requests_of_fifty_and_merges_results_and_typed_errors() -> None:
    portal = Portal.build(batch_portal({"k7", "k77", "k110"}))
    commands = {f"k{i}": (GET, {"code": f"c{i}"}) for i in range(120)}

    answer = portal.client.batch(commands)

    assert [len(r.payload["cmd"]) for r in portal.requests] == [50, 50, 20]
    assert all(r.method == "batch" and r.payload["halt"] == 0 for r in portal.requests)
    assert portal.requests[0].payload["cmd"]["k0"] == "crm.activity.badge.get?code=c0"
    assert len(answer.result) == 117
    assert answer.result["k119"] == {"code": "c119"}
    assert set(answer.errors) == {"k7", "k77", "k110"}
    assert all(isinstance(e, NotFound) and e.method == GET for e in answer.errors.values())
    assert answer.ok("k0")
    assert not answer.ok("k7")


def test_batch_with_halt_stops_after_the_first_chunk_with_an_error() -> None:
    portal = Portal.build(batch_portal({"k7"}))

    answer = portal.client.batch({f"k{i}": (GET, {"code": f"c{i}"}) for i in range(120)}, halt=True)

    assert len(portal.requests) == 1
    assert portal.requests[0].payload["halt"] == 1
    assert set(answer.errors) == {"k7"}
    assert len(answer.result) == 49


def test_batch_commands_are_php_query_strings_keyed_by_position_when_given_as_a_list() -> None:
    portal = Portal.build(batch_portal(set()))

    portal.client.batch([(ADD, {"code": "a b", "title": {"en": "Call", "de": "Anruf"}}), ("server.time", {})])

    assert portal.requests[0].payload["cmd"] == {
        "0": "crm.activity.badge.add?code=a%20b&title[en]=Call&title[de]=Anruf",
        "1": "server.time",
    }


def test_a_batch_of_writes_is_not_repeated_on_an_unknown_outcome() -> None:
    portal = Portal.build(Script({"batch": [TransportFailure("ReadTimeout"), ok({"result": []})]}))

    with pytest.raises(TransportError):
        portal.client.batch({"a": (ADD, BADGE), "b": (GET, {"code": "x"})})

    assert len(portal.requests) == 1
