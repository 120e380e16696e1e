"""The operations CLI: `flask --app app b24 …` against real portals."""
from __future__ import annotations

import json
import time

from tests.integration.helpers import oauth_counters


def _run(b24, *args: str, input: str | None = None):
    return b24.app.test_cli_runner().invoke(args=["b24", *args], input=input, catch_exceptions=False)


def test_portals_lists_state_and_token_age(b24) -> None:
    first, second = b24.installed_portal(), b24.installed_portal()
    b24.services.store.needs_reauth(second.member_id, "invalid_grant: chain died")
    result = _run(b24, "portals")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["MEMBER_ID", "DOMAIN", "STATE"]
    row = {line.split()[0]: line for line in lines[2:]}
    assert "active" in row[first.member_id]
    assert "needs-reauth" in row[second.member_id]
    assert "invalid_grant" in row[second.member_id]


def test_portals_when_empty(b24) -> None:
    assert "No portals" in _run(b24, "portals").output


def test_show_never_prints_secrets(b24) -> None:
    portal = b24.installed_portal()
    record = b24.services.store.get(portal.member_id)
    result = _run(b24, "show", portal.member_id)
    assert result.exit_code == 0
    assert portal.domain in result.output
    assert "present" in result.output
    for secret in (record.access_token, record.refresh_token, record.application_token):
        assert secret not in result.output
    assert _run(b24, "show", "nope").exit_code != 0


def test_refresh_rotates_the_chain(b24) -> None:
    portal = b24.installed_portal()
    before = b24.services.store.get(portal.member_id).refresh_token
    ok = oauth_counters(b24.sandbox)["refresh_ok"]
    result = _run(b24, "refresh", portal.member_id)
    assert result.exit_code == 0, result.output
    assert "refreshed" in result.output
    assert b24.services.store.get(portal.member_id).refresh_token != before
    assert oauth_counters(b24.sandbox)["refresh_ok"] == ok + 1


def test_refresh_reports_a_dead_chain_clearly(b24) -> None:
    portal = b24.installed_portal()
    b24.sandbox.revoke_refresh(portal)
    result = _run(b24, "refresh", portal.member_id)
    assert result.exit_code == 1
    assert "re-authorize" in result.output


def test_forget_deletes_everything(b24, redis_client) -> None:
    portal = b24.installed_portal()
    redis_client.set(f"b24:cache:{{{portal.member_id}}}:badges", "[]")
    result = _run(b24, "forget", portal.member_id, input="y\n")
    assert result.exit_code == 0
    assert b24.services.store.get(portal.member_id) is None
    assert not [k for k in redis_client.scan_iter() if portal.member_id.encode() in k]


def test_manifest_prints_the_console_settings(b24) -> None:
    result = _run(b24, "manifest")
    assert result.exit_code == 0
    assert f"{b24.url}/app" in result.output
    assert f"{b24.url}/install" in result.output
    assert f"{b24.url}/oauth/callback" in result.output
    assert "crm, placement, user_brief" in result.output
    assert "CRM_DEAL_DETAIL_TAB" in result.output
    assert "ONAPPUNINSTALL" in result.output


def test_keepalive_refreshes_only_idle_chains(b24) -> None:
    idle, fresh = b24.installed_portal(), b24.installed_portal()
    b24.services.store.update(idle.member_id, token_issued_at=time.time() - 25 * 86400)
    ok = oauth_counters(b24.sandbox)["refresh_ok"]
    result = _run(b24, "keepalive", "--idle-days", "20")
    assert result.exit_code == 0
    assert "1 refreshed, 0 failed" in result.output
    assert oauth_counters(b24.sandbox)["refresh_ok"] == ok + 1
    assert b24.services.store.get(idle.member_id).token_issued_at > time.time() - 60
    assert fresh.member_id


def test_call_runs_a_method_for_a_portal(b24) -> None:
    portal = b24.installed_portal()
    result = _run(b24, "call", portal.member_id, "crm.activity.badge.add", "code=missedCall", "title=Call Status",
                  "value=Missed", "type=failure")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["result"]["badge"] == {"code": "missedCall", "title": "Call Status",
                                                              "value": "Missed", "type": "failure"}
    nested = _run(b24, "call", portal.member_id, "crm.activity.badge.add", "code=multi", "title[en]=Call",
                  "title[de]=Anruf", "value=x", "type=primary")
    assert json.loads(nested.output)["result"]["badge"]["title"] == {"en": "Call", "de": "Anruf"}
    failure = _run(b24, "call", portal.member_id, "crm.activity.badge.add", "code=missedCall", "title=x",
                   "value=y", "type=failure")
    assert failure.exit_code == 1
    assert "BX_INVALID_VALUE" in failure.output
