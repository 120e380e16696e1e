"""batch (docs/bitrix24-protocol.md §3.4)."""
from __future__ import annotations

from b24app.sandbox import Sandbox

from .conftest import Installed, call


def batch(http, inst: Installed, cmd, halt: int = 0, token: str | None = None):
    return call(http, inst.portal, "batch", token or inst.admin["access_token"], halt=halt, cmd=cmd)


def test_batch_result_shape(http, installed: Installed) -> None:
    """§3.4: {"result":{"result":{..}, "result_error":{..}, "result_total", "result_next", "result_time"}} (200)."""
    resp = batch(http, installed, {"me": "profile", "admin": "user.admin"})
    assert resp.status_code == 200
    inner = resp.json()["result"]
    assert set(inner) == {"result", "result_error", "result_total", "result_next", "result_time"}
    assert inner["result"]["me"]["ID"] == "1"
    assert inner["result"]["admin"] is True
    assert set(inner["result_time"]) == {"me", "admin"}
    assert "time" in resp.json()


def test_empty_collections_are_json_lists(http, installed: Installed) -> None:
    """§3.4: empty collections come back as [] not {}."""
    inner = batch(http, installed, {"me": "profile"}).json()["result"]
    assert inner["result_error"] == []
    assert inner["result_total"] == []
    assert inner["result_next"] == []


def test_result_references(http, installed: Installed) -> None:
    """§3.4: later commands reference earlier results with $result[key][field]."""
    cmd = {"add": "crm.activity.badge.add?code=ref1&title=T&value=V&type=success",
           "get": "crm.activity.badge.get?code=$result[add][badge][code]"}
    inner = batch(http, installed, cmd).json()["result"]
    assert inner["result"]["get"]["badge"]["code"] == "ref1"


def test_bracket_params_in_commands(http, installed: Installed) -> None:
    """§3.4: commands are query strings with PHP bracket params."""
    cmd = {"add": "crm.activity.badge.add?code=br1&title[en]=Hello&title[de]=Hallo&value=V&type=warning"}
    inner = batch(http, installed, cmd).json()["result"]
    assert inner["result"]["add"]["badge"]["title"] == {"en": "Hello", "de": "Hallo"}


def test_per_command_errors_and_halt(http, installed: Installed) -> None:
    """§3.4: per-command result_error; halt=1 stops at the first error."""
    cmd = {"bad": "crm.activity.badge.get?code=missing", "good": "profile"}
    inner = batch(http, installed, cmd).json()["result"]
    assert inner["result_error"]["bad"] == {"error": "NOT_FOUND",
                                            "error_description": "Not found."}
    assert "good" in inner["result"]
    halted = batch(http, installed, cmd, halt=1).json()["result"]
    assert "bad" in halted["result_error"]
    assert halted["result"] == []


def test_nested_batch_is_not_allowed(http, installed: Installed) -> None:
    """§3.4/§3.3: nested batch -> ERROR_BATCH_METHOD_NOT_ALLOWED for that command."""
    inner = batch(http, installed, {"inner": "batch?cmd[a]=profile"}).json()["result"]
    assert inner["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


def test_more_than_50_commands(http, installed: Installed) -> None:
    """§3.4: at most 50 commands; only the excess fail with ERROR_BATCH_LENGTH_EXCEEDED."""
    cmd = {f"c{i}": "user.admin" for i in range(53)}
    inner = batch(http, installed, cmd).json()["result"]
    assert len(inner["result"]) == 50
    assert set(inner["result_error"]) == {"c50", "c51", "c52"}
    assert inner["result_error"]["c50"] == {"error": "ERROR_BATCH_LENGTH_EXCEEDED",
                                            "error_description": "Max batch length exceeded"}


def test_list_commands_give_lists_and_list_totals(http, installed: Installed) -> None:
    """§3.4: a JSON-list `cmd` comes back keyed 0..n-1, i.e. as a JSON list; list methods fill result_total."""
    inner = batch(http, installed, ["user.admin", "crm.activity.badge.list"]).json()["result"]
    assert isinstance(inner["result"], list)
    assert inner["result"][0] is True
    assert inner["result_total"] == {"1": 0}


def test_batch_is_one_request_for_the_rate_limiter(http, installed: Installed, sb: Sandbox) -> None:
    """§3.4/§4.1: a batch of 50 counts as ONE request for the leaky bucket."""
    sb.set_rate(installed.portal, (0.001, 3))
    cmd = {f"c{i}": "user.admin" for i in range(50)}
    for _ in range(3):
        assert batch(http, installed, cmd).status_code == 200
    assert batch(http, installed, cmd).status_code == 503
    counters = sb.counters.portal(installed.portal.member_id)
    assert counters["requests"]["batch"] == 4
    assert counters["calls"]["user.admin"] == 150


def test_sub_calls_count_for_their_own_method(http, installed: Installed, sb: Sandbox) -> None:
    """§3.4/§4.2: each sub-call adds to its own method's operating time; batch itself is exempt."""
    sb.set_method_cost("user.admin", 1.0, installed.portal)
    inner = batch(http, installed, {"a": "user.admin", "b": "user.admin"}).json()
    assert inner["result"]["result_time"]["b"]["operating"] >= 2.0
    assert inner["time"]["operating"] == 0
    single = call(http, installed.portal, "user.admin", installed.admin["access_token"]).json()
    assert single["time"]["operating"] >= 3.0


def test_operating_limit_inside_batch(http, installed: Installed, sb: Sandbox) -> None:
    """§4.2/§3.4: a sub-call of a method past its operating limit fails alone with OPERATION_TIME_LIMIT."""
    sb.set_method_cost("crm.activity.badge.list", 200.0, installed.portal)
    cmd = {f"l{i}": "crm.activity.badge.list" for i in range(4)} | {"me": "profile"}
    inner = batch(http, installed, cmd).json()["result"]
    assert set(inner["result"]) == {"l0", "l1", "l2", "me"}
    assert inner["result_error"]["l3"]["error"] == "OPERATION_TIME_LIMIT"
