"""Shared steps of the browser tests: open the app or the deal tab on a sandbox portal page."""
from __future__ import annotations

from typing import Any

from tests.integration.api import Api, session_for

from .conftest import Tab


def open_app(tab: Tab, b24: Any, portal: Any, *, user: int = 1) -> Any:
    """The app page (DEFAULT placement) as `user`; returns the frame locator once the view rendered."""
    tab.page.goto(f"{portal.base_url}/marketplace/app/{b24.card.client_id}/?sandbox_user={user}")
    app = tab.page.frame_locator("#b24-app-frame")
    app.locator("#app").wait_for()
    app.locator("#view:not([aria-busy])").wait_for()
    return app


def wait_list(app: Any) -> None:
    app.locator("#badge-list[aria-busy='false']").wait_for()


def open_deal_tab(tab: Tab, b24: Any, portal: Any, deal_id: int, *, user: int = 1) -> Any:
    tab.page.goto(f"{portal.base_url}/crm/deal/details/{deal_id}/?sandbox_user={user}")
    tab.page.click(".tab[data-placement='CRM_DEAL_DETAIL_TAB']")
    app = tab.page.frame_locator("#b24-app-frame")
    app.locator("#deal-current[aria-busy='false']").wait_for()
    return app


def pick(app: Any, code: str, query: str | None = None) -> None:
    """Choose a badge in the deal tab's searchable picker by typing (the code by default) and clicking it."""
    app.locator("#deal-badge").fill(query if query is not None else code)
    app.locator(f"#deal-badge-list [role='option'][data-code='{code}']").click()
    app.locator("#deal-badge[aria-expanded='false']").wait_for()


def api_for(b24: Any, portal: Any, user: int = 1) -> Api:
    return session_for(b24, portal, user_id=user)


def add_badge(b24: Any, portal: Any, **badge: Any) -> dict[str, Any]:
    response = api_for(b24, portal).post("/badges", json=badge)
    assert response.status_code == 201, response.text
    return response.json()["badge"]


def commands(b24: Any, portal: Any) -> list[str]:
    return [entry["command"] for entry in b24.sandbox.frame_log.items(portal.member_id)]
