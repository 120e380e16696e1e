"""The deal tab: nothing preselected on a deal without a badge, no console errors, the searchable picker
(combobox + listbox, keyboard), and sales reps (non-admins) who set and clear a deal's badge with their
own Bitrix24 authorization — also after it expired mid-session — or are told that Bitrix24 refused."""
from __future__ import annotations

from typing import Any

from .conftest import screenshot
from .helpers import add_badge, api_for, commands, open_deal_tab, pick


def _seed(b24: Any, portal: Any) -> None:
    items = [{"code": f"c{i:02d}", "title": f"Task {i:02d}", "value": f"t{i}", "type": "primary"} for i in range(1, 29)]
    items += [
        {"code": "late", "title": {"en": "Payment", "de": "Zahlung"}, "value": "Overdue", "type": "failure"},
        {"code": "latecall", "title": "Call back late", "value": {"en": "Late", "ru": "Опоздание"}, "type": "warning"},
    ]
    response = api_for(b24, portal).post("/badges/import", json={"badges": items})
    assert response.status_code == 200 and all(r["ok"] for r in response.json()["results"]), response.text


def _api_calls(tab: Any) -> list[tuple[str, str, int]]:
    seen: list[tuple[str, str, int]] = []
    tab.page.on("response", lambda r: seen.append((r.request.method, r.url.split("/api/v1")[1], r.status))
                if "/api/v1/" in r.url else None)
    return seen


def test_a_deal_without_a_badge_preselects_nothing_and_logs_no_errors(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="first", title="First badge", value="One", type="success")
    add_badge(b24, portal, code="second", title="Second", value="Two", type="primary")
    seen = _api_calls(tab)
    app = open_deal_tab(tab, b24, portal, 5)
    assert ("GET", "/deals/5/badge", 200) in seen, "no badge is not an error (200, badge null)"
    assert app.locator("#deal-current").text_content() == "No badge is shown on this deal."
    assert app.locator("#deal-badge").input_value() == "", "nothing preselected"
    assert app.locator("#deal-choice").evaluate("el => el.childElementCount") == 0, "no chip of the first badge"
    assert app.locator("#deal-current .badge, #deal-choice .badge").count() == 0
    assert app.locator("#deal-apply").is_disabled() and app.locator("#deal-clear").is_disabled()
    tab.page.wait_for_timeout(300)  # let late errors arrive
    # The sandbox portal page itself has no favicon: its 404 is the portal's, not the app's.
    errors = [(text, url) for text, url in tab.console_errors if not url.endswith("/favicon.ico")]
    assert errors == [], tab.console
    assert not [url for _text, url in tab.console_errors if url.startswith(b24.url)]


def test_the_picker_filters_500_badges_and_works_with_the_keyboard(b24, tab) -> None:
    portal = b24.installed_portal()
    _seed(b24, portal)
    app = open_deal_tab(tab, b24, portal, 3)
    frame = tab.app_frame(b24.url)
    box = app.locator("#deal-badge")
    listbox = app.locator("#deal-badge-list")
    assert box.get_attribute("role") == "combobox"
    assert box.get_attribute("aria-controls") == "deal-badge-list"
    assert box.get_attribute("aria-expanded") == "false"
    assert listbox.get_attribute("role") == "listbox" and listbox.is_hidden()
    assert app.locator("select").count() == 0, "no plain <select> of every badge"

    box.focus()
    tab.page.keyboard.press("ArrowDown")  # opens the list on the first badge
    assert box.get_attribute("aria-expanded") == "true"
    options = listbox.locator("[role='option']")
    assert options.count() == 30
    assert box.get_attribute("aria-activedescendant") == options.nth(0).get_attribute("id")
    tab.page.keyboard.press("Escape")
    assert box.get_attribute("aria-expanded") == "false" and listbox.is_hidden()

    # Typing filters by code, title or value in any language; arrows move, Enter picks.
    tab.page.keyboard.type("late")
    assert [o.get_attribute("data-code") for o in options.all()] == ["late", "latecall"]
    assert app.locator("#deal-badge-status").text_content() == "Matching badges: 2."
    tab.page.keyboard.press("ArrowDown")
    active = box.get_attribute("aria-activedescendant")
    assert app.locator(f"#{active}").get_attribute("data-code") == "latecall"
    assert app.locator(f"#{active}").get_attribute("aria-selected") == "true"
    assert options.nth(0).get_attribute("aria-selected") == "false"
    tab.page.keyboard.press("ArrowUp")
    assert app.locator(f"#{box.get_attribute('aria-activedescendant')}").get_attribute("data-code") == "late"
    tab.page.keyboard.press("ArrowDown")
    tab.page.keyboard.press("Enter")
    assert box.get_attribute("aria-expanded") == "false"
    assert box.input_value() == "LATE — Call back late (latecall)"
    assert app.locator("#deal-choice .badge").text_content() == "LATE"
    assert frame.evaluate("document.activeElement.id") == "deal-badge", "focus stays in the input"

    # Escape twice: closes, then clears the text and the pick.
    box.fill("опозд")
    assert [o.get_attribute("data-code") for o in options.all()] == ["latecall"]
    assert app.locator("#deal-choice .badge").count() == 0 and app.locator("#deal-apply").is_disabled()
    tab.page.keyboard.press("Escape")
    assert listbox.is_hidden() and box.input_value() == "опозд"
    tab.page.keyboard.press("Escape")
    assert box.input_value() == ""
    box.fill("zahlung")
    tab.page.keyboard.press("Enter")  # the first match is active while typing
    assert app.locator("#deal-choice .badge").text_content() == "OVERDUE"
    box.fill("no such badge")
    assert listbox.locator(".combo-empty").text_content() == "No badge matches."

    # Keyboard only, to the end: pick, Tab to "Show on this deal", Enter.
    box.fill("task 07")
    tab.page.keyboard.press("Enter")
    tab.page.keyboard.press("Tab")
    assert frame.evaluate("document.activeElement.id") == "deal-apply"
    tab.page.keyboard.press("Enter")
    app.locator("#deal-current .badge:has-text('T7')").wait_for()
    assert b24.sandbox.deal_badge(portal, 3).code == "c07"
    assert not tab.csp_violations(), tab.console


def test_a_sales_rep_sets_and_clears_a_badge_also_after_the_token_expired(b24, tab) -> None:
    portal = b24.installed_portal()
    _seed(b24, portal)
    seen = _api_calls(tab)
    app = open_deal_tab(tab, b24, portal, 2, user=2)  # Bob, not an administrator
    assert app.locator(".notice").count() == 0, "no read-only notice on the deal tab"
    assert app.locator("#deal-badge").is_enabled()

    pick(app, "late", "zahl")
    app.locator("#deal-apply").click()
    app.locator("#deal-current .badge:has-text('OVERDUE')").wait_for()
    shown = b24.sandbox.deal_badge(portal, 2)
    assert shown is not None and shown.code == "late"
    activity = [a for a in portal.activities.values() if a.owner_id == 2 and a.badge_code == "late"]
    assert [a.responsible_id for a in activity] == [2], "set with Bob's own authorization"

    # The picker open, for the README.
    app.locator("#deal-badge").fill("task 1")
    app.locator("#deal-badge-list [role='option']").first.wait_for()
    screenshot(tab.page, "deal-rep.png", publish="screenshot-deal-rep.png")
    app.locator("#deal-badge").press("Escape")
    app.locator("#deal-badge").press("Escape")

    # Bob's Bitrix24 token expires while the tab is open: the server answers 401 INVALID_SESSION, the UI
    # renews through b24jssdk refreshAuth → POST /session and sends the same request again.
    b24.sandbox.expire_tokens(portal, user_id=2)
    refreshes = commands(b24, portal).count("refreshAuth")
    seen.clear()
    app.locator("#deal-clear").click()
    app.locator("#deal-current:has-text('No badge is shown')").wait_for()
    assert seen == [("DELETE", "/deals/2/badge", 401), ("POST", "/session", 200),
                    ("DELETE", "/deals/2/badge", 204)], seen
    assert commands(b24, portal).count("refreshAuth") == refreshes + 1
    assert b24.sandbox.deal_badge(portal, 2) is None

    # The same for a write that carries an Idempotency-Key (the retry reuses it).
    b24.sandbox.expire_tokens(portal, user_id=2)
    pick(app, "latecall", "late call")
    seen.clear()
    app.locator("#deal-apply").click()
    app.locator("#deal-current .badge:has-text('LATE'), #deal-problem p").first.wait_for()
    assert seen == [("POST", "/deals/2/badge", 401), ("POST", "/session", 200),
                    ("POST", "/deals/2/badge", 201)], seen
    assert b24.sandbox.deal_badge(portal, 2).code == "latecall"
    assert app.locator("#deal-problem").text_content() == ""
    assert not tab.csp_violations(), tab.console


def test_a_sales_rep_who_may_not_edit_the_deal_is_told_so(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="late", title="Payment", value="Overdue", type="failure")
    # The sandbox has no per-deal permissions; the server's answer for a refused user is played here.
    refused = {"error": "ACCESS_DENIED", "error_description": "Access denied."}
    tab.page.route("**/api/v1/deals/8/badge", lambda route: route.fulfill(status=403, json=refused)
                   if route.request.method == "POST" else route.continue_())
    app = open_deal_tab(tab, b24, portal, 8, user=2)
    pick(app, "late")
    app.locator("#deal-apply").click()
    problem = app.locator("#deal-problem")
    problem.locator("p").first.wait_for()
    assert [p.text_content() for p in problem.locator("p").all()] == [
        "Bitrix24 does not let you change this deal.", "Bitrix24 answered: Access denied."]
    assert "administrator" not in problem.text_content()
    assert app.locator("#deal-current").text_content() == "No badge is shown on this deal."
    assert b24.sandbox.deal_badge(portal, 8) is None
    assert app.locator("#deal-apply").is_enabled(), "the user may try again"
