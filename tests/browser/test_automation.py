"""A portal user moves a deal in the sandbox portal's deal card and the "Set activity badge" robot on that
stage puts the badge on its kanban card; no one opens the app (docs/bitrix24-protocol.md §11)."""
from __future__ import annotations

from .conftest import screenshot
from .helpers import add_badge


def test_moving_a_deal_to_a_stage_with_the_robot_shows_the_badge(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="overdue", title="Payment", value="Overdue", type="failure")
    b24.services.jobs.wait()  # the robot's badge list is registered again after the catalogue changed
    b24.sandbox.add_automation(portal, "FINAL_INVOICE", "activity_badge", {"badge": "overdue", "action": "set"})
    deal = b24.sandbox.add_deal(portal, "Boxes for Acme")

    page = tab.page
    page.goto(f"{portal.base_url}/crm/deal/details/{deal.id}/")
    assert page.locator(".kanban-card .badge").count() == 0
    page.select_option("#move-stage-select", "FINAL_INVOICE")
    page.click(".move-stage button[type='submit']")
    page.locator(".deal-stage[data-stage='FINAL_INVOICE']").wait_for()

    for _ in range(50):  # the app answers the robot at once and does the work in the background
        if page.locator(".timeline-robot[data-status='answered']").count():
            break
        page.wait_for_timeout(200)
        page.reload()
    answered = page.locator(".timeline-robot[data-status='answered']")
    assert "badge overdue shown" in answered.locator(".run-log-message").text_content()
    assert page.locator(".kanban-card .badge").text_content().strip() == "OVERDUE"
    screenshot(page, "automation.png", publish="screenshot-automation.png")
    assert not tab.csp_violations(), tab.console
