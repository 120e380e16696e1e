"""The portal page with the real @bitrix24/b24jssdk bundle in headless Chromium (docs/bitrix24-protocol.md §7.2,
§1.1–§1.3, §5.6, §5.7).

A tiny app (a few routes below, served by a real werkzeug server on 127.0.0.1) loads the SDK from
static/vendor/b24jssdk.min.js and calls initializeB24Frame(), installFinish(), auth.refreshAuth(),
parent.fitWindow(), parent.setTitle(); the test asserts the sandbox's portal page saw each of them.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from b24app.config import REPO_ROOT
from b24app.sandbox import Sandbox
from tests.support.chromium import CHROMIUM

BUNDLE = REPO_ROOT / "static" / "vendor" / "b24jssdk.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed at /usr/bin/chromium"),
    pytest.mark.skipif(not BUNDLE.exists(), reason="static/vendor/b24jssdk.min.js is missing (run `make setup`)"),
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>test app</title>
<script src="/static/b24jssdk.min.js" defer></script><script src="/static/app.js" defer></script></head>
<body data-status="loading"><h1>Test app</h1><p id="placement"></p><div style="height: 700px"></div></body></html>"""

APP_JS = """
(async () => {
  const body = document.body;
  const status = (s) => body.setAttribute("data-status", s);
  try {
    const $b24 = await B24Js.initializeB24Frame();
    body.setAttribute("data-placement", $b24.placement.placement);
    body.setAttribute("data-options", JSON.stringify($b24.placement.options));
    if ($b24.isInstallMode) {
      status("installing");
      await $b24.installFinish();
      status("install-finished");
      return;
    }
    const before = $b24.auth.getAuthData().access_token;
    const auth = await $b24.auth.refreshAuth();
    body.setAttribute("data-refreshed", String(auth.access_token !== before && auth.access_token.length > 60));
    await $b24.parent.fitWindow();
    await $b24.parent.setTitle("Badges ready");
    const profile = await $b24.actions.v2.call.make({ method: "profile", params: {} });
    body.setAttribute("data-profile", JSON.stringify(profile.getData().result));
    status("done");
  } catch (error) {
    status("error: " + (error && (error.message || error.code) || error));
  }
})();
"""


class BrowserApp:
    """The tiny app: installer binds ONAPPINSTALL + a deal tab server-side, pages run APP_JS."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.frames: list[dict[str, str]] = []
        app = Flask("browser-test-app")

        @app.post("/install")
        def install() -> Response:
            domain, token = request.args["DOMAIN"], request.form["AUTH_ID"]
            self.frames.append({**request.form, "path": "/install"})
            requests.post(f"http://{domain}/rest/event.bind", timeout=10,
                          json={"auth": token, "event": "ONAPPINSTALL", "handler": self.url + "/events"})
            requests.post(f"http://{domain}/rest/placement.bind", timeout=10,
                          json={"auth": token, "PLACEMENT": "CRM_DEAL_DETAIL_TAB", "HANDLER": self.url + "/app",
                                "TITLE": "Badges"})
            return Response(PAGE, content_type="text/html")

        @app.post("/app")
        def page() -> Response:
            self.frames.append({**request.form, "path": "/app"})
            return Response(PAGE, content_type="text/html")

        @app.post("/events")
        def events() -> Response:
            self.events.append(dict(request.form))
            return Response("ok")

        @app.get("/static/b24jssdk.min.js")
        def bundle() -> Response:
            return Response(BUNDLE.read_bytes(), content_type="text/javascript")

        @app.get("/static/app.js")
        def app_js() -> Response:
            return Response(APP_JS, content_type="text/javascript")

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def browser_app() -> Iterator[BrowserApp]:
    app = BrowserApp()
    yield app
    app.stop()


def _commands(sb: Sandbox, member_id: str) -> list[str]:
    return [entry["command"] for entry in sb.frame_log.items(member_id)]


@pytest.mark.timeout(120)
def test_install_and_frame_protocol_with_the_real_sdk(browser, browser_app: BrowserApp, sb: Sandbox) -> None:
    """§7.2/§1.1–§1.3: window.name `DOMAIN|PROTOCOL|APP_SID`, getInitData, installFinish (setInstallFinish ->
    INSTALLED, ONAPPINSTALL, reload in normal mode), FIRST_RUN setInstall, refreshAuth, resizeWindow, setTitle."""
    card = sb.register_app(app_url=browser_app.url, name="Browser Test App")
    portal = sb.create_portal()
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    try:
        page.goto(portal.base_url + "/")
        page.click(f".app-tile[data-client-id='{card.client_id}'] button")
        page.wait_for_url(f"**/marketplace/app/{card.client_id}/")
        frame = page.frame_locator("#b24-app-frame")
        frame.locator("body[data-status='done']").wait_for(timeout=30000)

        assert portal.installations[card.client_id].installed is True
        assert [e["event"] for e in browser_app.events] == ["ONAPPINSTALL"]
        assert browser_app.events[0]["auth[application_token]"] == sb.application_token(portal, card.client_id)
        assert [f["path"] for f in browser_app.frames] == ["/install", "/app"]

        name = page.locator("#b24-app-frame").get_attribute("name")
        domain, protocol, app_sid = name.split("|")
        assert (domain, protocol, len(app_sid)) == (portal.domain, "0", 32)
        commands = _commands(sb, portal.member_id)
        for command in ("getInitData", "setInstallFinish", "setInstall", "refreshAuth", "resizeWindow", "setTitle"):
            assert command in commands, (command, commands)
        assert commands.index("setInstallFinish") < commands.index("refreshAuth")
        assert page.locator("#pagetitle").text_content() == "Badges ready"
        assert page.locator("#b24-app-frame").evaluate("el => el.style.height").endswith("px")
        body = frame.locator("body")
        assert body.get_attribute("data-refreshed") == "true"
        assert json.loads(body.get_attribute("data-profile"))["ID"] == "1"
        assert body.get_attribute("data-placement") == "DEFAULT"
        assert not [line for line in console if "Content Security Policy" in line]
    finally:
        page.close()


@pytest.mark.timeout(120)
def test_parent_ignores_foreign_messages(browser, browser_app: BrowserApp, sb: Sandbox) -> None:
    """§7.2: the parent answers only its frame's origin and APP_SID; other origins or SIDs are ignored."""
    card = sb.register_app(app_url=browser_app.url, name="Browser Test App 2")
    portal = sb.create_portal()
    sb.install(portal, client_id=card.client_id)
    sb.install_finish(portal, client_id=card.client_id)
    page = browser.new_page()
    try:
        page.goto(f"{portal.base_url}/marketplace/app/{card.client_id}/")
        frame = page.frame_locator("#b24-app-frame")
        frame.locator("body[data-status='done']").wait_for(timeout=30000)
        sid = page.locator("#b24-app-frame").get_attribute("name").split("|")[2]
        seen = len(sb.frame_log.items(portal.member_id))
        # Same command from the portal's own window (wrong origin and source), then from the frame with a wrong SID.
        page.evaluate(f"window.postMessage('setTitle:{{\"title\":\"own-window\"}}:k1:{sid}', '*')")
        page.frame(url=lambda url: url.startswith(browser_app.url)).evaluate(
            "parent.postMessage('setTitle:{\"title\":\"wrong-sid\"}:k2:' + 'f'.repeat(32), '*')")
        page.wait_for_timeout(500)
        assert page.locator("#pagetitle").text_content() == "Badges ready"
        # The app itself may still log a late command (a resize after its last render); the forged ones never.
        later = sb.frame_log.items(portal.member_id)[seen:]
        assert not [entry for entry in later if {"own-window", "wrong-sid"} & set(json.dumps(entry).split('"'))], later
    finally:
        page.close()


@pytest.mark.timeout(120)
def test_deal_card_tab_and_kanban_badge(browser, browser_app: BrowserApp, sb: Sandbox) -> None:
    """§5.6/§5.7/§1.2: the deal card shows the CRM_DEAL_DETAIL_TAB placement as a tab that POSTs
    PLACEMENT_OPTIONS {"ID": "<deal>"}; the kanban card shows the open activity's badge, value in upper case,
    coloured by type."""
    card = sb.register_app(app_url=browser_app.url, name="Browser Test App 3")
    portal = sb.create_portal()
    sb.install(portal, client_id=card.client_id)
    sb.install_finish(portal, client_id=card.client_id)
    token = sb.issue_tokens(portal, 1, card.client_id)["access_token"]
    api = portal.client_endpoint
    requests.post(api + "crm.activity.badge.add", timeout=10, json={
        "auth": token, "code": "late", "title": {"en": "Payment", "de": "Zahlung"}, "value": "Overdue",
        "type": "failure"})
    requests.post(api + "crm.activity.configurable.add", timeout=10, json={
        "auth": token, "ownerTypeId": 2, "ownerId": 3, "fields": {"badgeCode": "late"},
        "layout": {"icon": {"code": "info"}, "header": {"title": "Late"},
                   "body": {"logo": {"code": "call"}, "blocks": {"b": {"type": "text"}}}}})
    page = browser.new_page()
    try:
        page.goto(f"{portal.base_url}/crm/deal/details/3/")
        chip = page.locator(".kanban-card .badge")
        assert chip.text_content().strip() == "OVERDUE"
        assert "badge-failure" in chip.get_attribute("class")
        color = chip.evaluate("el => getComputedStyle(el).backgroundColor")
        assert color == "rgb(240, 55, 27)"
        page.click(".tab[data-placement='CRM_DEAL_DETAIL_TAB']")
        frame = page.frame_locator("#b24-app-frame")
        frame.locator("body[data-status='done']").wait_for(timeout=30000)
        body = frame.locator("body")
        assert body.get_attribute("data-placement") == "CRM_DEAL_DETAIL_TAB"
        assert json.loads(body.get_attribute("data-options")) == {"ID": "3"}
        assert browser_app.frames[-1]["PLACEMENT_OPTIONS"] == '{"ID":"3"}'
    finally:
        page.close()
