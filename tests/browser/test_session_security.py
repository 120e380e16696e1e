"""Session renewal through b24jssdk refreshAuth, XSS rendered literally, keyboard-only use, re-authorization."""
from __future__ import annotations

from .conftest import Tab
from .helpers import add_badge, commands, open_app, open_deal_tab, pick, wait_list

META = "document.querySelector('meta[name=\"b24-session\"]')"


def test_session_renewal_via_refresh_auth_keeps_the_form_input(b24, tab) -> None:
    portal = b24.installed_portal()
    app = open_app(tab, b24, portal)
    wait_list(app)
    frame = tab.app_frame(b24.url)
    first = frame.evaluate(f"{META}.content")
    seen: list[tuple[str, str, int]] = []
    tab.page.on("response", lambda r: seen.append((r.request.method, r.url, r.status)) if "/api/v1/" in r.url else None)

    # The user is typing when the session token stops being valid (here: replaced with garbage).
    app.locator("#badge-code").fill("renewed")
    app.locator("#badge-title").fill("Renewed title")
    app.locator("#badge-value").fill("New")
    frame.evaluate(f"{META}.content = 'garbage.token.value'")
    app.locator("#badges-refresh").click()
    app.locator("#badge-list[aria-busy='false']").wait_for()
    statuses = [(m, url.split("/api/v1")[1], s) for m, url, s in seen]
    assert statuses == [("GET", "/badges", 401), ("POST", "/session", 200), ("GET", "/badges", 200)], statuses
    assert commands(b24, portal).count("refreshAuth") == 1, "fresh portal auth came through b24jssdk"
    renewed = frame.evaluate(f"{META}.content")
    assert renewed not in (first, "garbage.token.value")
    assert [app.locator(s).input_value() for s in ("#badge-code", "#badge-title", "#badge-value")] == [
        "renewed", "Renewed title", "New"], "renewal does not touch what the user typed"

    # Shortly before expiry the UI renews first, so the write itself never sees a 401.
    seen.clear()
    frame.evaluate(f"{META}.dataset.expiresAt = String(Date.now() + 1000)")
    app.locator("#badge-create").click()
    app.locator("tr[data-code='renewed']").wait_for()
    statuses = [(m, url.split("/api/v1")[1], s) for m, url, s in seen]
    assert statuses[:2] == [("POST", "/session", 200), ("POST", "/badges", 201)], statuses
    assert commands(b24, portal).count("refreshAuth") == 2
    assert portal.badges["renewed"].title == "Renewed title"

    # The token never leaves the meta tag and the Authorization header.
    token = frame.evaluate(f"{META}.content")
    assert frame.evaluate("localStorage.length + sessionStorage.length") == 0
    assert token not in frame.evaluate("document.cookie")  # (the sandbox's own user cookie shares the host)
    assert not [url for _m, url, _s in seen if token in url or renewed in url]


def test_badge_texts_are_rendered_literally(b24, tab) -> None:
    attack = "<img src=x onerror=alert(1)>"
    portal = b24.installed_portal()
    add_badge(b24, portal, code="xss", title=attack, value="<b>bold</b>", type="failure")
    requests: list[str] = []
    tab.page.on("request", lambda r: requests.append(r.url))
    app = open_app(tab, b24, portal)
    wait_list(app)
    row = app.locator("tr[data-code='xss']")
    assert row.locator(".title-cell").text_content() == attack
    assert row.locator(".badge").text_content() == "<B>BOLD</B>"
    assert app.locator("#badge-list img, #badge-list b").count() == 0

    app.locator("#badge-title").fill(attack)  # the live preview too
    assert app.locator("#badge-preview .badge-title").text_content() == attack
    assert app.locator("#badge-preview img").count() == 0

    app.locator("tr[data-code='xss'] button[data-action='delete']").click()  # and the confirmation dialog
    assert attack in app.locator("#confirm-message").text_content()
    app.locator("#confirm-cancel").click()

    app = open_deal_tab(tab, b24, portal, 1)
    pick(app, "xss")
    app.locator("#deal-apply").click()
    app.locator("#deal-current .badge").wait_for()
    assert attack in app.locator("#deal-current").text_content()
    assert app.locator("img").count() == 0
    assert tab.dialogs == [], "no script ran"
    assert not [url for url in requests if url.rstrip("/").endswith("/x")], "no image was requested"


def _tab_to(tab, frame, selector: str, limit: int = 80) -> None:
    for _ in range(limit):
        tab.page.keyboard.press("Tab")
        if frame.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_create_and_delete(b24, tab) -> None:
    portal = b24.installed_portal()
    app = open_app(tab, b24, portal)
    wait_list(app)
    frame = tab.app_frame(b24.url)

    _tab_to(tab, frame, "#badge-code")  # from the portal page into the frame
    outline = frame.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + "
                             "getComputedStyle(document.activeElement).outlineWidth")
    assert outline == "solid 3px", "visible focus"
    tab.page.keyboard.type("kbd_badge")
    _tab_to(tab, frame, "#badge-type", 1)
    tab.page.keyboard.press("ArrowDown")  # success → failure
    _tab_to(tab, frame, "#badge-title", 1)
    tab.page.keyboard.type("Keyboard")
    _tab_to(tab, frame, "#badge-title-translate", 1)
    tab.page.keyboard.press("Enter")  # per-language rows; focus lands in the new row
    assert frame.evaluate("document.activeElement.dataset.lang") == "de"
    tab.page.keyboard.type("Tastatur")
    _tab_to(tab, frame, "#badge-value", 6)
    tab.page.keyboard.type("Keys")
    tab.page.keyboard.press("Enter")  # submits the form
    app.locator("tr[data-code='kbd_badge']").wait_for()
    badge = portal.badges["kbd_badge"]
    assert (badge.title, badge.value, badge.type) == ({"en": "Keyboard", "de": "Tastatur"}, "Keys", "failure")

    _tab_to(tab, frame, "tr[data-code='kbd_badge'] button[data-action='delete']")
    tab.page.keyboard.press("Enter")
    app.locator("dialog[open]").wait_for()
    tab.page.keyboard.press("Tab")  # Cancel has the focus first; Delete is next
    assert frame.evaluate("document.activeElement.id") == "confirm-ok"
    tab.page.keyboard.press("Enter")
    app.locator("#badges-empty").wait_for()
    assert portal.badges == {}


def test_portal_needing_reauthorization(b24, tab, browser) -> None:
    portal = b24.installed_portal()
    app = open_app(tab, b24, portal, user=3)  # Carol, an admin who did not install the app
    wait_list(app)
    b24.sandbox.fire_user(portal, 1)  # the user who authorized the app leaves
    app.locator("#badge-code").fill("after_fire")
    app.locator("#badge-title").fill("After")
    app.locator("#badge-value").fill("x")
    app.locator("#badge-create").click()
    button = app.locator("#reauthorize")
    button.wait_for()
    assert "lost its authorization" in app.locator(".state").text_content()
    assert button.get_attribute("type") == "button", "a link comes from the API, one-time, admins only"
    assert b24.services.store.get(portal.member_id).state == "needs-reauth"

    # Bob (not an admin, in his own browser) gets the message and no button.
    context = browser.new_context()
    try:
        bob = Tab(context.new_page())
        bob_app = open_app(bob, b24, portal, user=2)
        assert "Ask a portal administrator" in bob_app.locator("#view").text_content()
        assert bob_app.locator("#reauthorize").count() == 0
    finally:
        context.close()

    # Carol starts the OAuth flow in a new top-level window; afterwards the app works again.
    with tab.page.expect_popup() as popup_info:
        button.click()
    popup = popup_info.value
    popup.locator("h1").wait_for()
    assert popup.locator("h1").text_content() == "Authorization renewed"
    assert popup.evaluate("window.top === window"), "a top-level window, not the frame"
    record = b24.services.store.get(portal.member_id)
    assert (record.state, record.owner_user_id) == ("active", 3)
    app.locator("#state-reload").click()  # reloadWindow through b24jssdk
    app.locator("#badge-create").wait_for()
