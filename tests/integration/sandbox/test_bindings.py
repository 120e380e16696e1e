"""event.* and placement.* (docs/bitrix24-protocol.md §5.7; the EN/RU event-bind pages it cites)."""
from __future__ import annotations

from b24app.sandbox import Sandbox

from .conftest import Installed, call


def test_event_bind_get_unbind(http, installed: Installed, stub) -> None:
    """§1.4/§5.7: event.bind -> true; event.get lists {event, handler, auth_type, offline}; unbind -> {count}."""
    token = installed.admin["access_token"]
    handler = stub.url + "/events"
    assert call(http, installed.portal, "event.bind", token, event="onAppUpdate", handler=handler).json()["result"]
    listed = call(http, installed.portal, "event.get", token).json()["result"]
    assert listed == [{"event": "ONAPPUPDATE", "handler": handler, "auth_type": "0", "offline": 0}]
    unbound = call(http, installed.portal, "event.unbind", token, event="ONAPPUPDATE", handler=handler).json()
    assert unbound["result"] == {"count": 1}
    assert call(http, installed.portal, "event.get", token).json()["result"] == []


def test_duplicate_event_bind_is_error_core(http, installed: Installed, stub) -> None:
    """event-bind.md: binding the same handler twice -> 400 ERROR_CORE
    "Unable to set event handler: Handler already binded"."""
    token = installed.admin["access_token"]
    params = {"event": "ONAPPUNINSTALL", "handler": stub.url + "/events"}
    assert call(http, installed.portal, "event.bind", token, **params).status_code == 200
    dup = call(http, installed.portal, "event.bind", token, **params)
    assert dup.status_code == 400
    assert dup.json() == {"error": "ERROR_CORE",
                          "error_description": "Unable to set event handler: Handler already binded"}


def test_event_handler_url_rules(http, installed: Installed) -> None:
    """event-bind.md: http(s) only (ERROR_UNSUPPORTED_PROTOCOL); a host without a dot such as localhost is
    ERROR_WRONG_HANDLER_URL; http://127.0.0.1:PORT is fine (the sandbox runs on 127.0.0.1)."""
    token = installed.admin["access_token"]
    ftp = call(http, installed.portal, "event.bind", token, event="ONAPPUPDATE", handler="ftp://a.b/x")
    assert ftp.json()["error"] == "ERROR_UNSUPPORTED_PROTOCOL"
    local = call(http, installed.portal, "event.bind", token, event="ONAPPUPDATE", handler="http://localhost/x")
    assert local.json()["error"] == "ERROR_WRONG_HANDLER_URL"
    ok = call(http, installed.portal, "event.bind", token, event="ONAPPUPDATE", handler="http://127.0.0.1:9/x")
    assert ok.status_code == 200


def test_event_bind_errors(http, installed: Installed) -> None:
    """event-bind.md/§3.3: unknown event ERROR_EVENT_NOT_FOUND; missing event ERROR_ARGUMENT (+argument);
    non-admin 403 ACCESS_DENIED."""
    token = installed.admin["access_token"]
    unknown = call(http, installed.portal, "event.bind", token, event="ONNOTHING", handler="https://a.b/x")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "ERROR_EVENT_NOT_FOUND")
    missing = call(http, installed.portal, "event.bind", token, handler="https://a.b/x")
    assert missing.json() == {"error": "ERROR_ARGUMENT", "error_description": "Argument 'EVENT' is null or empty",
                              "argument": "EVENT"}
    denied = call(http, installed.portal, "event.bind", installed.user["access_token"], event="ONAPPUPDATE",
                  handler="https://a.b/x")
    assert (denied.status_code, denied.json()["error"]) == (403, "ACCESS_DENIED")


def test_placement_bind_get_unbind(http, installed: Installed, stub) -> None:
    """§5.7: placement.bind -> true; placement.get -> [{placement, userId, handler, options, title, description,
    langAll}]; placement.unbind -> {"count": N}."""
    token = installed.admin["access_token"]
    lang_all = {"de": {"TITLE": "Badges", "DESCRIPTION": "", "GROUP_NAME": ""}}
    bound = call(http, installed.portal, "placement.bind", token, PLACEMENT="CRM_DEAL_DETAIL_TAB",
                 HANDLER=stub.url + "/app", TITLE="Badges", LANG_ALL=lang_all)
    assert bound.json()["result"] is True
    listed = call(http, installed.portal, "placement.get", token).json()["result"]
    assert listed == [{"placement": "CRM_DEAL_DETAIL_TAB", "userId": 0, "handler": stub.url + "/app",
                       "options": [], "title": "Badges", "description": "", "langAll": lang_all}]
    unbound = call(http, installed.portal, "placement.unbind", token, PLACEMENT="CRM_DEAL_DETAIL_TAB").json()
    assert unbound["result"] == {"count": 1}


def test_duplicate_placement_bind_is_error_core(http, installed: Installed, stub) -> None:
    """§5.7 (placement-bind/userfieldtype pages): 400 ERROR_CORE "Unable to set placement handler: Handler
    already binded"."""
    token = installed.admin["access_token"]
    params = {"PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": stub.url + "/app"}
    call(http, installed.portal, "placement.bind", token, **params)
    dup = call(http, installed.portal, "placement.bind", token, **params)
    assert dup.status_code == 400
    assert dup.json() == {"error": "ERROR_CORE",
                          "error_description": "Unable to set placement handler: Handler already binded"}


def test_placement_bind_errors(http, installed: Installed) -> None:
    """§5.7: missing PLACEMENT -> ERROR_ARGUMENT with `argument`; non-admin -> 403 ACCESS_DENIED;
    USER_ID outside PAGE_BACKGROUND_WORKER -> ERROR_PLACEMENT_USER_MODE; REST_APP_URI only once."""
    token = installed.admin["access_token"]
    missing = call(http, installed.portal, "placement.bind", token, HANDLER="https://a.b/x")
    assert missing.json()["argument"] == "PLACEMENT"
    assert missing.json()["error"] == "ERROR_ARGUMENT"
    denied = call(http, installed.portal, "placement.bind", installed.user["access_token"],
                  PLACEMENT="CRM_DEAL_DETAIL_TAB", HANDLER="https://a.b/x")
    assert (denied.status_code, denied.json()["error"]) == (403, "ACCESS_DENIED")
    user_mode = call(http, installed.portal, "placement.bind", token, PLACEMENT="CRM_DEAL_DETAIL_TAB",
                     HANDLER="https://a.b/y", USER_ID=1)
    assert user_mode.json()["error"] == "ERROR_PLACEMENT_USER_MODE"
    call(http, installed.portal, "placement.bind", token, PLACEMENT="REST_APP_URI", HANDLER="https://a.b/1")
    again = call(http, installed.portal, "placement.bind", token, PLACEMENT="REST_APP_URI", HANDLER="https://a.b/2")
    assert again.json()["error"] == "ERROR_PLACEMENT_MAX_COUNT"


def test_bindings_need_app_context(http, installed: Installed, sb: Sandbox) -> None:
    """§5.7/§3.3: via a webhook, placement.* and event.* -> 403 WRONG_AUTH_TYPE."""
    hook = sb.create_webhook(installed.portal, 1)
    for method in ("placement.get", "event.get", "event.bind"):
        resp = http.post(hook["url"] + method, json={"event": "ONAPPUPDATE", "handler": "https://a.b/x"}, timeout=10)
        assert (resp.status_code, resp.json()["error"]) == (403, "WRONG_AUTH_TYPE"), method
