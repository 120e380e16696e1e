"""Install, installFinish, events, update, uninstall, opening the app (docs/bitrix24-protocol.md §1, §1.2–§1.5)."""
from __future__ import annotations

import json

import pytest
import requests

from b24app.sandbox import AppCard, Portal, Sandbox, SandboxError, SandboxServer

from .conftest import call

INSTALL_KEYS = ["event", "event_handler_id", "data[VERSION]", "data[ACTIVE]", "data[INSTALLED]",
                "data[LANGUAGE_ID]", "ts", "auth[access_token]", "auth[expires]", "auth[expires_in]", "auth[scope]",
                "auth[domain]", "auth[server_endpoint]", "auth[status]", "auth[client_endpoint]",
                "auth[member_id]", "auth[user_id]", "auth[refresh_token]", "auth[application_token]"]
UNINSTALL_KEYS = ["event", "event_handler_id", "data[LANGUAGE_ID]", "data[CLEAN]", "ts", "auth[domain]",
                  "auth[server_endpoint]", "auth[client_endpoint]", "auth[member_id]", "auth[application_token]"]


@pytest.fixture
def binding_stub(stub, sb: Sandbox):
    """The stub's installer binds ONAPPINSTALL/ONAPPUPDATE/ONAPPUNINSTALL and a deal tab, like a real installer."""
    def installer(item):
        domain, token = item.query["DOMAIN"], item.form["AUTH_ID"]
        for event in ("ONAPPINSTALL", "ONAPPUPDATE", "ONAPPUNINSTALL"):
            requests.post(f"http://{domain}/rest/event.bind", json={"event": event, "handler": stub.url + "/events",
                                                                    "auth": token}, timeout=10)
        requests.post(f"http://{domain}/rest/placement.bind", json={"PLACEMENT": "CRM_DEAL_DETAIL_TAB",
                                                                    "HANDLER": stub.url + "/app", "TITLE": "Badges",
                                                                    "auth": token}, timeout=10)
    stub.hooks["/install"] = installer
    stub.clear()
    yield stub
    stub.hooks.pop("/install", None)


def test_installer_post_is_the_iframe_post(binding_stub, sb: Sandbox, portal: Portal, card: AppCard,
                                           server: SandboxServer) -> None:
    """§1.1/§1.2: the installer gets a form POST; query DOMAIN, PROTOCOL, LANG, APP_SID; body AUTH_ID,
    AUTH_EXPIRES (seconds), REFRESH_ID, SERVER_ENDPOINT, member_id, status, PLACEMENT=DEFAULT, PLACEMENT_OPTIONS,
    APPLICATION_TOKEN."""
    result = sb.install(portal)
    assert result.status == 200
    [got] = binding_stub.at("/install")
    assert got.method == "POST"
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert set(got.query) == {"DOMAIN", "PROTOCOL", "LANG", "APP_SID"}
    assert (got.query["DOMAIN"], got.query["PROTOCOL"], got.query["LANG"]) == (portal.domain, "0", "en")
    assert {"AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "SERVER_ENDPOINT", "member_id", "status", "PLACEMENT",
            "PLACEMENT_OPTIONS", "APPLICATION_TOKEN"} <= set(got.form)
    assert got.form["AUTH_EXPIRES"] == "3600"
    assert got.form["SERVER_ENDPOINT"] == server.server_endpoint
    assert got.form["member_id"] == portal.member_id
    assert got.form["PLACEMENT"] == "DEFAULT"
    assert json.loads(got.form["PLACEMENT_OPTIONS"]) == {}


def test_application_token_in_the_installer_post_is_optional(binding_stub, sb: Sandbox, portal: Portal) -> None:
    """§1.2: APPLICATION_TOKEN is documented only since 2026-08; older portals omit it."""
    sb.install(portal, send_application_token=False)
    [got] = binding_stub.at("/install")
    assert "APPLICATION_TOKEN" not in got.form


def test_not_installed_until_install_finish(binding_stub, http, sb: Sandbox, portal: Portal,
                                            server: SandboxServer) -> None:
    """§1.1/§1.3: app.info says INSTALLED=false (portal) / installed=false (OAuth server) until installFinish;
    no event is delivered before it."""
    sb.install(portal)
    token = binding_stub.at("/install")[0].form["AUTH_ID"]
    assert call(http, portal, "app.info", token).json()["result"]["INSTALLED"] is False
    oauth = http.get(server.oauth_url + "/rest/app.info", params={"auth": token}, timeout=10).json()
    assert oauth["result"]["install"]["installed"] is False
    assert binding_stub.at("/events") == []
    sb.install_finish(portal)
    assert call(http, portal, "app.info", token).json()["result"]["INSTALLED"] is True
    oauth = http.get(server.oauth_url + "/rest/app.info", params={"auth": token}, timeout=10).json()
    assert oauth["result"]["install"]["installed"] is True


def test_onappinstall_goes_to_the_bound_handler(binding_stub, http, sb: Sandbox, portal: Portal,
                                                server: SandboxServer) -> None:
    """§1.4: ONAPPINSTALL is a form POST with flat bracket keys (the documented list) to the event.bind handler;
    its application_token equals the one in the installer POST; its tokens work."""
    sb.install(portal)
    app_token = binding_stub.at("/install")[0].form["APPLICATION_TOKEN"]
    [delivery] = sb.install_finish(portal)
    assert (delivery.event, delivery.status, delivery.url) == ("ONAPPINSTALL", 200, binding_stub.url + "/events")
    [got] = binding_stub.at("/events")
    assert list(got.form) == INSTALL_KEYS
    assert got.form["event"] == "ONAPPINSTALL"
    assert got.form["auth[application_token]"] == app_token
    assert got.form["auth[domain]"] == portal.domain
    assert got.form["auth[client_endpoint]"] == portal.client_endpoint
    assert got.form["auth[server_endpoint]"] == server.server_endpoint
    assert got.form["auth[member_id]"] == portal.member_id
    assert (got.form["auth[user_id]"], got.form["auth[expires_in]"], got.form["data[INSTALLED]"]) == ("1", "3600", "Y")
    assert call(http, portal, "profile", got.form["auth[access_token]"]).status_code == 200


def test_events_go_only_to_event_bind_handlers(stub, sb: Sandbox, portal: Portal) -> None:
    """§1.1/§1.4: with a UI installer nothing is bound -> installFinish sends nothing (not to the install URL)."""
    stub.clear()
    sb.install(portal)
    assert sb.install_finish(portal) == []
    assert [r.path for r in stub.received] == ["/install"]


def test_rest_only_install(stub, http, sb: Sandbox, portal: Portal) -> None:
    """§1.1: REST-only app: ONAPPINSTALL is POSTed server-to-server to the install URL; installed at once."""
    stub.clear()
    result = sb.install(portal, rest_only=True)
    assert result.status == 200
    [got] = stub.at("/install")
    assert got.form["event"] == "ONAPPINSTALL"
    assert call(http, portal, "app.info", got.form["auth[access_token]"]).json()["result"]["INSTALLED"] is True


def test_rest_only_install_carries_an_event_handler_id(stub, sb: Sandbox, portal: Portal) -> None:
    """§1.4: core registers the install URL as an ONAPPINSTALL handler row, so the server-to-server POST carries
    `event_handler_id` (an integer, as the official SDK's OAuthEventData requires), a new one per install;
    the row is not one the app bound, so event.get does not list it."""
    stub.clear()
    sb.install(portal, rest_only=True)
    sb.uninstall(portal)
    sb.install(portal, rest_only=True)
    first, second = (int(got.form["event_handler_id"]) for got in stub.at("/install"))
    assert 0 < first < second
    assert portal.event_handlers == []


def test_only_an_admin_can_install(sb: Sandbox, portal: Portal) -> None:
    """§1.1: only an administrator can install."""
    with pytest.raises(SandboxError):
        sb.install(portal, user_id=2)


def test_update_wipes_bindings_and_sends_onappupdate(binding_stub, http, sb: Sandbox, portal: Portal) -> None:
    """§1.4: ONAPPUPDATE = install shape + data[PREVIOUS_VERSION]; handlers and placements are removed on update;
    the application_token may change."""
    sb.install(portal)
    sb.install_finish(portal)
    old_token = sb.application_token(portal)
    binding_stub.clear()
    [delivery] = sb.update(portal, 2)
    assert delivery.event == "ONAPPUPDATE"
    [got] = binding_stub.at("/events")
    assert got.form["data[PREVIOUS_VERSION]"] == "1"
    assert got.form["data[VERSION]"] == "2"
    assert got.form["auth[application_token]"] == sb.application_token(portal) != old_token
    token = got.form["auth[access_token]"]
    assert call(http, portal, "event.get", token).json()["result"] == []
    assert call(http, portal, "placement.get", token).json()["result"] == []
    assert call(http, portal, "app.info", token).json()["result"]["VERSION"] == 2


def test_uninstall(binding_stub, http, sb: Sandbox, portal: Portal, card: AppCard, server: SandboxServer) -> None:
    """§1.5: ONAPPUNINSTALL with data[LANGUAGE_ID], data[CLEAN], auth[domain, server_endpoint, client_endpoint,
    member_id, application_token] and no tokens; afterwards every token is dead; badges survive (§1.5 inferred)."""
    sb.install(portal)
    sb.install_finish(portal)
    tokens = sb.issue_tokens(portal, 1)
    call(http, portal, "crm.activity.badge.add", tokens["access_token"], code="keep", title="t", value="v",
         type="success")
    app_token = sb.application_token(portal)
    binding_stub.clear()
    [delivery] = sb.uninstall(portal, clean=False)
    assert delivery.event == "ONAPPUNINSTALL"
    [got] = binding_stub.at("/events")
    assert list(got.form) == UNINSTALL_KEYS
    assert got.form["data[CLEAN]"] == "0"
    assert got.form["auth[application_token]"] == app_token
    dead = call(http, portal, "profile", tokens["access_token"])
    assert (dead.status_code, dead.json()["error"]) == (401, "invalid_token")
    refresh = http.post(server.oauth_url + "/oauth/token/", data={
        "grant_type": "refresh_token", "client_id": card.client_id, "client_secret": card.client_secret,
        "refresh_token": tokens["refresh_token"]}, timeout=10)
    assert refresh.json()["error"] == "invalid_grant"
    assert "keep" in portal.badges


def test_open_placement_posts_placement_options(binding_stub, sb: Sandbox, portal: Portal) -> None:
    """§1.2/§5.7: opening CRM_DEAL_DETAIL_TAB POSTs to the bound handler with PLACEMENT and
    PLACEMENT_OPTIONS as a JSON string {"ID":"7"}; the user's own token is in AUTH_ID."""
    sb.install(portal)
    sb.install_finish(portal)
    binding_stub.clear()
    result = sb.open_app(portal, 2, "CRM_DEAL_DETAIL_TAB", {"ID": "7"})
    assert result.status == 200
    [got] = binding_stub.at("/app")
    assert got.form["PLACEMENT"] == "CRM_DEAL_DETAIL_TAB"
    assert got.form["PLACEMENT_OPTIONS"] == '{"ID":"7"}'
    assert got.query["DOMAIN"] == portal.domain
    assert sb.tokens.access[got.form["AUTH_ID"]].user_id == 2


def test_non_admin_cannot_open_an_unfinished_install(binding_stub, sb: Sandbox, portal: Portal) -> None:
    """§1.1: until installFinish ordinary users see "not fully installed"; admins get the installer again."""
    sb.install(portal)
    with pytest.raises(SandboxError):
        sb.open_app(portal, 2)
    binding_stub.clear()
    sb.open_app(portal, 1)
    assert len(binding_stub.at("/install")) == 1


def test_frame_auth_gives_fresh_working_tokens(http, installed, sb: Sandbox) -> None:
    """§1.2/§7.1: the parent hands the frame a fresh AUTH_ID/REFRESH_ID (refreshAuth, no client_secret)."""
    auth = sb.frame_auth(installed.portal, 2)
    assert auth["AUTH_EXPIRES"] == 3600
    assert call(http, installed.portal, "profile", auth["AUTH_ID"]).json()["result"]["ID"] == "2"


def test_update_can_keep_the_application_token(binding_stub, sb: Sandbox, portal: Portal) -> None:
    """§1.4/§10.11: whether application_token changes on update is undocumented; both cases are available."""
    sb.install(portal)
    sb.install_finish(portal)
    before = sb.application_token(portal)
    sb.update(portal, 2, rotate_application_token=False)
    assert sb.application_token(portal) == before
