"""Rate limits and the renamed-portal redirect (docs/bitrix24-protocol.md §4, §3.1)."""
from __future__ import annotations

from b24app.sandbox import Sandbox

from .conftest import Installed, call


def test_leaky_bucket_burst_then_503(http, installed: Installed, sb: Sandbox) -> None:
    """§4.1: 2 req/s with a burst of 50 by default; beyond the burst 503 QUERY_LIMIT_EXCEEDED "Too many requests"."""
    assert installed.portal.rate == (2.0, 50.0)
    sb.set_rate(installed.portal, (0.0001, 50))  # same burst; no draining while the loop runs, so exact counts
    token = installed.admin["access_token"]
    statuses = [call(http, installed.portal, "user.admin", token).status_code for _ in range(52)]
    assert statuses == [200] * 50 + [503] * 2
    refused = call(http, installed.portal, "user.admin", token)
    assert refused.status_code == 503
    assert refused.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}


def test_bucket_drains_with_the_clock(http, installed: Installed, sb: Sandbox) -> None:
    """§4.1: the level drains by Y per second: after 1 s, two more requests pass."""
    token = installed.admin["access_token"]
    sb.set_rate(installed.portal, (2, 5))
    for _ in range(5):
        assert call(http, installed.portal, "user.admin", token).status_code == 200
    assert call(http, installed.portal, "user.admin", token).status_code == 503
    sb.clock.advance(1.01)
    assert [call(http, installed.portal, "user.admin", token).status_code for _ in range(3)] == [200, 200, 503]


def test_rate_is_configurable_and_can_be_disabled(http, installed: Installed, sb: Sandbox) -> None:
    """§4.1: the plan decides X and Y (Enterprise 5/250); the sandbox may also switch the limit off."""
    token = installed.admin["access_token"]
    sb.set_rate(installed.portal, None)
    assert all(call(http, installed.portal, "user.admin", token).status_code == 200 for _ in range(60))
    enterprise = sb.create_portal(rate=(5, 250))
    assert enterprise.rate == (5.0, 250.0)
    assert enterprise.license_family == "ent"


def test_limit_is_per_portal(http, installed: Installed, sb: Sandbox) -> None:
    """§4.1: the counter is per portal: exhausting one portal leaves another untouched."""
    sb.set_rate(installed.portal, (0.001, 2))
    token = installed.admin["access_token"]
    for _ in range(2):
        call(http, installed.portal, "user.admin", token)
    assert call(http, installed.portal, "user.admin", token).status_code == 503
    other = sb.create_portal()
    sb.install(other, rest_only=True)
    assert call(http, other, "user.admin", sb.issue_tokens(other, 1)["access_token"]).status_code == 200


def test_operating_time_limit_429(http, installed: Installed, sb: Sandbox) -> None:
    """§4.2: time per (app, method) in 10 one-minute buckets; past the limit the NEXT call gets 429
    OPERATION_TIME_LIMIT; other methods are unaffected; `operating`/`operating_reset_at` are reported."""
    token = installed.admin["access_token"]
    sb.set_method_cost("crm.activity.badge.list", 100.0, installed.portal)
    seen = []
    for _ in range(5):
        resp = call(http, installed.portal, "crm.activity.badge.list", token)
        assert resp.status_code == 200
        seen.append(resp.json()["time"])
    assert seen[-1]["operating"] >= 500
    assert seen[-1]["operating_reset_at"] >= int(seen[0]["start"])
    blocked = call(http, installed.portal, "crm.activity.badge.list", token)
    assert blocked.status_code == 429
    assert blocked.json() == {"error": "OPERATION_TIME_LIMIT",
                              "error_description": "Method is blocked due to operation time limit."}
    assert call(http, installed.portal, "crm.activity.badge.get", token, code="x").status_code == 400
    sb.clock.advance(601)
    assert call(http, installed.portal, "crm.activity.badge.list", token).status_code == 200
    assert sb.counters.portal(installed.portal.member_id)["operation_limited"] == 1


def test_operating_reset_at_is_when_the_oldest_bucket_leaves(http, installed: Installed, sb: Sandbox) -> None:
    """§3.2/§4.2: operating_reset_at = the time the oldest one-minute bucket drops out of the 10-minute window."""
    sb.set_method_cost("user.admin", 1.0, installed.portal)
    time_block = call(http, installed.portal, "user.admin", installed.admin["access_token"]).json()["time"]
    minute = int(time_block["start"] // 60)
    assert time_block["operating_reset_at"] == (minute + 10) * 60


def test_short_calls_are_not_recorded(http, installed: Installed, sb: Sandbox) -> None:
    """§4.2: only call time above 0.1 s is recorded (minimalFixTime)."""
    sb.set_method_cost("profile", 0.05, installed.portal)
    for _ in range(3):
        body = call(http, installed.portal, "profile", installed.admin["access_token"]).json()
    assert body["time"]["operating"] == 0


def test_operating_limit_is_configurable(http, installed: Installed, sb: Sandbox) -> None:
    """§4.2: the limit is configuration (480 s in the docs, 420 s self-hosted)."""
    sb.set_operating_limit(2.0)
    try:
        sb.set_method_cost("server.time", 1.5, installed.portal)
        token = installed.admin["access_token"]
        assert call(http, installed.portal, "server.time", token).status_code == 200
        assert call(http, installed.portal, "server.time", token).status_code == 200
        assert call(http, installed.portal, "server.time", token).status_code == 429
    finally:
        sb.set_operating_limit(480.0)


def test_renamed_portal_answers_302(http, installed: Installed, sb: Sandbox) -> None:
    """§3.1: after a domain change the old address answers 302 with Location = same path and query on the
    new address; member_id stays; re-POSTing there works."""
    old_endpoint = installed.portal.client_endpoint
    member_id = installed.portal.member_id
    sb.rename_portal(installed.portal)
    assert installed.portal.client_endpoint != old_endpoint
    resp = http.post(old_endpoint + "profile?x=1", json={"auth": installed.admin["access_token"]},
                     allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["Location"] == installed.portal.client_endpoint + "profile?x=1"
    again = http.post(resp.headers["Location"], json={"auth": installed.admin["access_token"]}, timeout=10)
    assert again.status_code == 200
    assert installed.portal.member_id == member_id
    info = call(http, installed.portal, "app.info", installed.admin["access_token"])  # tokens survive a rename
    assert info.status_code == 200
