"""Installing from the portal page: the installer shows what it sets up, a failure offers Retry, then
installFinish() through b24jssdk makes the portal open the app."""
from __future__ import annotations

from .conftest import screenshot
from .helpers import commands


def test_install_from_the_portal_page_with_a_failure_and_retry(b24, tab) -> None:
    portal = b24.new_portal(language="ru")
    client_id = b24.card.client_id
    b24.sandbox.faults.add(portal, "placement.bind", "error", error="ERROR_ARGUMENT", status=400,
                           description="Handler is not allowed")
    tab.page.goto(f"{portal.base_url}/?sandbox_user=1")
    tab.page.click(f".app-tile[data-client-id='{client_id}'] button")
    tab.page.wait_for_url(f"**/marketplace/app/{client_id}/")
    installer = tab.page.frame_locator("#b24-app-frame")

    # The setup failed on the server: a message and a Retry button, not a blank frame (Russian UI).
    installer.locator("#install[data-state='error']").wait_for()
    status = installer.locator("#install-status", has_text="Настройка не удалась")
    status.wait_for()
    assert status.get_attribute("role") == "alert"
    assert status.text_content().startswith("Настройка не удалась: ")
    assert "Handler is not allowed" in status.text_content()
    assert [li.get_attribute("data-scope") for li in installer.locator("#install-scopes li").all()] == [
        "crm", "placement", "user_brief", "bizproc"]
    robot = installer.locator("#install-robots li[data-robot='activity_badge']").text_content()
    assert "Установить бейдж активности" in robot
    assert "Бейджи" in installer.locator("#install-placements li[data-placement='CRM_DEAL_DETAIL_TAB']").text_content()
    assert installer.locator("#install-events li").count() == 3
    assert portal.installations[client_id].installed is False
    screenshot(tab.page, "installer-error.png")

    # Retry reloads the portal page (reloadWindow); the installer runs again and finishes.
    b24.sandbox.faults.clear(portal.member_id)
    installer.locator("#retry").click()
    app = tab.page.frame_locator("#b24-app-frame")
    app.locator("#badges-empty").wait_for()
    assert portal.installations[client_id].installed is True
    seen = commands(b24, portal)
    assert "reloadWindow" in seen and "setInstallFinish" in seen
    assert [d.status for d in b24.sandbox.deliveries(portal, "ONAPPINSTALL")] == [200]
    assert b24.services.store.get(portal.member_id).state == "active"
    assert app.locator("#create-title").text_content() == "Новый бейдж"
    assert {p.placement for p in portal.placements} == {"CRM_DEAL_DETAIL_TAB"}
    assert not tab.csp_violations(), tab.console
