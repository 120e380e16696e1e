"""The app page: badges listed the way Bitrix24 shows them, in the user's language; frame integration."""
from __future__ import annotations

from .conftest import screenshot
from .helpers import add_badge, commands, open_app, wait_list


def test_app_page_lists_badges_like_bitrix24(b24, tab) -> None:
    portal = b24.installed_portal(language="de")
    add_badge(b24, portal, code="late", title={"en": "Payment", "de": "Zahlung", "ru": "Оплата"},
              value={"en": "Overdue", "de": "Überfällig"}, type="failure")
    add_badge(b24, portal, code="vip", title={"ru": "Клиент", "fr": "Client"}, value="Vip", type="success")
    add_badge(b24, portal, code="wait", title="Waiting for documents", value="Docs", type="warning")
    add_badge(b24, portal, code="call", title="Call back", value="call", type="primary")
    add_badge(b24, portal, code="misc", title="Other", value="misc", type="secondary")

    app = open_app(tab, b24, portal)
    wait_list(app)
    rows = app.locator("#badge-list tbody tr")
    assert rows.count() == 5
    late = app.locator("tr[data-code='late']")
    assert late.locator(".badge").text_content() == "ÜBERFÄLLIG"  # LANG de, value in upper case
    assert "Zahlung" in late.locator(".title-cell").text_content()
    vip = app.locator("tr[data-code='vip']")
    assert "Клиент" in vip.locator(".title-cell").text_content()  # no de, no en → the first entry
    colours = {code: app.locator(f"tr[data-code='{code}'] .badge").evaluate(
        "el => getComputedStyle(el).backgroundColor") for code in ("late", "vip", "wait", "call", "misc")}
    assert colours == {"late": "rgb(209, 32, 30)", "vip": "rgb(123, 213, 0)", "wait": "rgb(255, 195, 77)",
                       "call": "rgb(32, 103, 176)", "misc": "rgb(168, 173, 180)"}
    # German UI text (LANG=de), and the page title set in the portal through b24jssdk.
    assert app.locator("#create-title").text_content() == "Badge erstellen"
    assert app.locator("html").get_attribute("lang") == "de"
    tab.page.wait_for_function("document.getElementById('pagetitle').textContent === 'Aktivitäts-Badges'")
    tab.page.wait_for_function("parseInt(document.getElementById('b24-app-frame').style.height) > 600")
    seen = commands(b24, portal)
    assert "resizeWindow" in seen and "setTitle" in seen
    assert not tab.csp_violations(), tab.console
    screenshot(tab.page, "app-page.png", publish="screenshot-app.png")


def test_error_state_offers_a_retry_and_then_the_empty_state(b24, tab) -> None:
    portal = b24.installed_portal()
    tab.page.route("**/api/v1/badges", lambda route: route.abort("connectionrefused"))
    app = open_app(tab, b24, portal)
    wait_list(app)
    problem = app.locator("#badge-list [role='alert']")
    assert "The badges could not be loaded." in problem.text_content()
    assert "could not be reached" in problem.text_content()
    tab.page.unroute("**/api/v1/badges")
    app.locator("#badges-retry").click()
    app.locator("#badges-empty").wait_for()
    assert "Create the first one below" in app.locator("#badges-empty").text_content()
