"""The CRM deal tab (apply/clear a badge on the kanban card); the catalogue is read-only for non-admins."""
from __future__ import annotations

from .conftest import screenshot
from .helpers import add_badge, open_app, open_deal_tab, pick, wait_list


def test_deal_tab_shows_a_badge_on_the_kanban_card_then_clears_it(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="late", title={"en": "Payment", "de": "Zahlung"}, value="Overdue", type="failure")
    add_badge(b24, portal, code="vip", title="Key account", value="VIP", type="success")
    app = open_deal_tab(tab, b24, portal, 5)
    assert app.locator("#deal-title").text_content() == "Badge of deal #5"
    assert app.locator("#deal-current").text_content() == "No badge is shown on this deal."
    assert app.locator("#deal-clear").is_disabled()

    pick(app, "late")
    assert app.locator("#deal-choice .badge").text_content() == "OVERDUE"
    app.locator("#deal-apply").click()
    app.locator("#deal-current .badge").wait_for()
    shown = b24.sandbox.deal_badge(portal, 5)
    assert shown is not None and shown.code == "late"
    assert "Payment" in app.locator("#deal-current").text_content()
    app.locator("#live-status", has_text="Badge late is now shown on this deal.").wait_for(state="attached")
    screenshot(tab.page, "deal-tab.png")

    # Switching keeps exactly one badge-showing activity on the deal.
    pick(app, "vip")
    app.locator("#deal-apply").click()
    app.locator("#deal-current .badge:has-text('VIP')").wait_for()
    assert b24.sandbox.deal_badge(portal, 5).code == "vip"

    # The portal's deal card (General tab) shows it on the kanban card preview.
    tab.page.goto(f"{portal.base_url}/crm/deal/details/5/")
    assert tab.page.locator(".kanban-card .badge").text_content().strip() == "VIP"
    app = open_deal_tab(tab, b24, portal, 5)
    assert app.locator("#deal-current .badge").text_content() == "VIP", "the tab reads the current badge"
    app.locator("#deal-clear").click()
    app.locator("#deal-current:has-text('No badge is shown')").wait_for()
    assert b24.sandbox.deal_badge(portal, 5) is None
    assert not tab.csp_violations(), tab.console


def test_non_admins_see_the_catalogue_read_only(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="late", title="Payment", value="Overdue", type="failure")
    app = open_app(tab, b24, portal, user=2)
    wait_list(app)
    assert app.locator("tr[data-code='late'] .badge").text_content() == "OVERDUE"
    assert "Only a portal administrator" in app.locator(".notice").first.text_content()
    for absent in ("#create-form", "#import-file", "tr[data-code='late'] button", "#badge-create", ".row-select",
                   "#bulk-bar"):
        assert app.locator(absent).count() == 0, absent
    # Reading still has search and sorting.
    app.locator("#badge-search").fill("overdue")
    assert app.locator("#badge-list tbody tr").count() == 1
    assert app.locator("#badge-range").text_content() == "1–1 of 1 found (1 in all)"
