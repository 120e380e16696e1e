"""The badge manager with many badges: search, sort, pages of 25, bulk delete with a per-badge report and
links to the deals that still show a badge; Duplicate and Replace (Bitrix24 has no badge update)."""
from __future__ import annotations

from typing import Any

import requests

from .conftest import screenshot
from .helpers import add_badge, api_for, open_app, wait_list

WORDS = ["Payment", "Call", "Meeting", "Docs", "Lead"]
TYPES = ["success", "failure", "warning", "primary", "secondary"]
VALUES = ["Paid", "Missed", "Soon", "Sent", "Hot", "New"]


def _seed(b24: Any, portal: Any, count: int) -> list[dict[str, Any]]:
    """`count` badges b01, b02, … through the API's import; titles sort differently from codes."""
    items: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        items.append({"code": f"b{i:02d}", "title": f"{WORDS[i % len(WORDS)]} {i:02d}",
                      "value": VALUES[i % len(VALUES)], "type": TYPES[(i * 3) % len(TYPES)]})
    items[6]["title"] = {"en": "Invoice", "de": "Rechnung"}  # b07: found by its German title
    items[7]["value"] = {"en": "Late", "ru": "Просрочено"}  # b08: found by its Russian value
    response = api_for(b24, portal).post("/badges/import", json={"badges": items})
    assert response.status_code == 200, response.text
    assert all(result["ok"] for result in response.json()["results"]), response.text
    return items


def _codes(app: Any) -> list[str]:
    rows = app.locator("#badge-list tbody tr")
    return [rows.nth(i).get_attribute("data-code") for i in range(rows.count())]


def _display_title(item: dict[str, Any]) -> str:
    return item["title"]["en"] if isinstance(item["title"], dict) else item["title"]


def test_search_sort_and_pages_over_many_badges(b24, tab) -> None:
    portal = b24.installed_portal()
    items = _seed(b24, portal, 60)
    app = open_app(tab, b24, portal)
    wait_list(app)

    assert app.locator("#badge-count").text_content() == "(60)"
    assert _codes(app) == [f"b{i:02d}" for i in range(1, 26)], "25 per page, by code"
    assert app.locator("#badge-range").text_content() == "1–25 of 60"
    assert app.locator("#badge-page").text_content() == "Page 1 of 3"
    assert app.locator("#page-prev").is_disabled() and app.locator("#page-first").is_disabled()
    assert app.locator("#badge-search").is_visible() and app.locator("#page-next").is_visible()
    tab.page.wait_for_function("parseInt(document.getElementById('b24-app-frame').style.height) > 1200")
    screenshot(tab.page, "manager.png", publish="screenshot-manager.png")

    app.locator("#page-next").click()
    assert app.locator("#badge-range").text_content() == "26–50 of 60"
    assert _codes(app)[0] == "b26" and len(_codes(app)) == 25
    app.locator("#page-last").click()
    assert app.locator("#badge-range").text_content() == "51–60 of 60"
    assert _codes(app) == [f"b{i:02d}" for i in range(51, 61)]
    assert app.locator("#page-next").is_disabled() and app.locator("#page-last").is_disabled()
    app.locator("#live-status", has_text="51–60 of 60").wait_for(state="attached")

    # Search: code, title and value, in any language; a new search starts at page 1.
    search = app.locator("#badge-search")
    search.fill("rechnung")
    assert _codes(app) == ["b07"]
    assert app.locator("#badge-range").text_content() == "1–1 of 1 found (60 in all)"
    assert app.locator("#page-next").is_hidden(), "one page: no page buttons"
    search.fill("ПРОСРОЧ")
    assert _codes(app) == ["b08"]
    search.fill("b1")
    assert _codes(app) == [f"b{i}" for i in range(10, 20)]
    search.fill("meeting 1")  # every word must match: "Meeting 12", "Meeting 17"
    assert _codes(app) == ["b12", "b17"]
    search.fill("nothing like this")
    assert app.locator("#badges-nomatch").text_content() == "No badge matches “nothing like this”."
    search.fill("")
    assert app.locator("#badge-range").text_content() == "1–25 of 60"

    # Sort by title (the title shown in the user's language), then the other way round, then by type.
    by_title = sorted(items, key=lambda item: (_display_title(item).lower(), item["code"]))
    app.locator("#sort-title").click()
    assert app.locator("th:has(#sort-title)").get_attribute("aria-sort") == "ascending"
    assert _codes(app) == [item["code"] for item in by_title[:25]]
    assert app.locator("#sort-title").evaluate("el => el === document.activeElement"), "focus stays on the header"
    app.locator("#sort-title").click()
    assert app.locator("th:has(#sort-title)").get_attribute("aria-sort") == "descending"
    assert _codes(app) == [item["code"] for item in reversed(by_title)][:25]
    app.locator("#sort-type").click()
    by_type = sorted(items, key=lambda item: (TYPES.index(item["type"]), item["code"]))
    assert _codes(app) == [item["code"] for item in by_type[:25]]
    assert app.locator("th[aria-sort]").count() == 1
    assert app.locator("tr[data-code] .badge").first.get_attribute("data-badge-type") == "success"
    assert not tab.csp_violations(), tab.console


def _show_through_rest(portal: Any, token: str, deal_id: int, code: str) -> None:
    """A badge put on a deal behind the app's back (another app, a robot): the app cannot name that deal."""
    layout = {"icon": {"code": "info"}, "header": {"title": "Elsewhere"},
              "body": {"logo": {"code": "call"}, "blocks": {"t": {"type": "text", "properties": {"value": "x"}}}}}
    response = requests.post(portal.client_endpoint + "crm.activity.configurable.add", timeout=10,
                             json={"auth": token, "ownerTypeId": 2, "ownerId": deal_id,
                                   "fields": {"badgeCode": code, "completed": False}, "layout": layout})
    assert response.status_code == 200, response.text


def test_bulk_delete_reports_each_badge_and_links_the_deals_that_show_it(b24, tab) -> None:
    portal = b24.installed_portal()
    _seed(b24, portal, 30)
    api = api_for(b24, portal)
    assert api.post("/deals/4/badge", json={"code": "b02"}).status_code == 201
    assert api.post("/deals/7/badge", json={"code": "b03"}).status_code == 201
    assert api.post("/deals/9/badge", json={"code": "b03"}).status_code == 201
    _show_through_rest(portal, b24.sandbox.issue_tokens(portal, user_id=1)["access_token"], 11, "b04")
    busy = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests."}
    tab.page.route("**/api/v1/badges/b05", lambda route: route.fulfill(status=503, json=busy,
                                                                      headers={"Retry-After": "1"}))
    deletes: list[str] = []
    tab.page.on("request", lambda r: deletes.append(r.url.rsplit("/", 1)[1]) if r.method == "DELETE" else None)
    app = open_app(tab, b24, portal)
    wait_list(app)
    assert app.locator("#bulk-bar").is_hidden()

    # "Select all on this page", minus one; then one more on page 2: the selection survives paging.
    app.locator("#select-page").check()
    assert app.locator("#bulk-count").text_content() == "Selected: 25"
    app.locator("tr[data-code='b01'] .row-select").uncheck()
    assert app.locator("#bulk-count").text_content() == "Selected: 24"
    assert app.locator("#select-page").evaluate("el => [el.checked, el.indeterminate]") == [False, True]
    app.locator("#page-next").click()
    app.locator("tr[data-code='b26'] .row-select").check()
    assert app.locator("#bulk-count").text_content() == "Selected: 25"
    app.locator("#page-first").click()
    assert app.locator("tr[data-code='b02'] .row-select").is_checked()

    app.locator("#bulk-delete").click()
    dialog = app.locator("dialog[open]")
    assert dialog.locator("h2").text_content() == "Delete the selected badges (25)?"
    assert "b02, b03, b04, b05, b06, b07, b08, b09 and 17 more" in dialog.text_content()
    app.locator("#confirm-ok").click()
    summary = app.locator("#bulk-summary")
    summary.wait_for(timeout=90_000)  # busy answers (the portal's 2 requests/s) are waited out and retried
    assert summary.text_content() == "Deleted: 21. Still shown on deals: 3. Failed: 1."
    expected = [f"b{i:02d}" for i in range(2, 26)] + ["b26"]
    assert [code for i, code in enumerate(deletes) if i == 0 or code != deletes[i - 1]] == expected, (
        "one badge after the other")
    assert deletes.count("b05") == 5, "a busy answer is waited out and tried again, five times in all"

    outcome = {li.get_attribute("data-code"): li.get_attribute("data-outcome")
               for li in app.locator("#bulk-results li[data-code]").all()}
    assert outcome == {code: ("in-use" if code in ("b02", "b03", "b04") else "failed" if code == "b05" else "deleted")
                       for code in expected}
    b02 = app.locator("#bulk-results li[data-code='b02']")
    assert "not deleted: deals still show it." in b02.text_content()
    b03_links = app.locator("li[data-code='b03'] .deal-links a").all()
    assert [a.get_attribute("data-deal-id") for a in b03_links] == ["7", "9"]
    assert "cannot tell which deals" in app.locator("li[data-code='b04']").text_content()
    assert app.locator("li[data-code='b04'] a").count() == 0
    assert "Bitrix24 is busy right now. Please try again in 1 s." in app.locator("li[data-code='b05']").text_content()
    screenshot(tab.page, "bulk-delete.png")
    assert {code for code in portal.badges} == {"b01", "b02", "b03", "b04", "b05", *(f"b{i}" for i in range(27, 31))}

    # What could not go stays selected; the list is reloaded.
    assert app.locator("#bulk-count").text_content() == "Selected: 4"
    app.locator("#badge-count", has_text="(9)").wait_for()
    assert app.locator("#badge-list tbody tr").count() == 9
    assert app.locator("#live-status", has_text="Deleted: 21.").count() == 1

    # The deal link opens the deal in the portal (the whole portal page goes there).
    link = b02.locator("a[data-deal-id='4']")
    assert link.text_content() == "Deal #4"
    assert link.get_attribute("href") == f"{portal.base_url}/crm/deal/details/4/"
    assert link.get_attribute("target") == "_top"
    link.click()
    tab.page.wait_for_url(f"{portal.base_url}/crm/deal/details/4/")
    assert tab.page.locator(".kanban-card .badge").text_content().strip() == "SOON"
    assert not tab.csp_violations(), tab.console


def test_duplicate_as_new_badge_and_replace(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="late", title={"en": "Payment", "de": "Zahlung"}, value="Overdue", type="failure")
    add_badge(b24, portal, code="late_copy", title="Taken", value="x", type="primary")
    add_badge(b24, portal, code="busy", title="Busy", value="Busy", type="warning")
    api = api_for(b24, portal)
    assert api.post("/deals/6/badge", json={"code": "busy"}).status_code == 201
    seen: list[tuple[str, str, int]] = []
    tab.page.on("response", lambda r: seen.append((r.request.method, r.url.split("/api/v1")[1], r.status))
                if "/api/v1/badges" in r.url and r.request.method in ("POST", "PUT") else None)
    app = open_app(tab, b24, portal)
    wait_list(app)
    note = ("Bitrix24 cannot edit a badge; Replace deletes it and creates it again, which works only while no "
            "deal shows it.")
    assert app.locator("#form-mode-note").text_content() == ""
    replace_button = app.locator("tr[data-code='late'] button[data-action='replace']")
    assert "Replace deletes it" in replace_button.get_attribute("title")

    # Duplicate: the create form, filled in, with a free code selected for typing over.
    app.locator("tr[data-code='late'] button[data-action='duplicate']").click()
    assert app.locator("#create-title").text_content() == "Duplicate late as a new badge"
    assert note in app.locator("#form-mode-note").text_content()
    code = app.locator("#badge-code")
    assert code.input_value() == "late_copy2", "late_copy is taken"
    assert code.evaluate("el => el === document.activeElement && el.selectionStart === 0 "
                         "&& el.selectionEnd === el.value.length")
    assert app.locator("#badge-type").input_value() == "failure"
    assert app.locator("[data-field='title'] input[data-lang='de']").input_value() == "Zahlung"
    assert app.locator("#badge-value").input_value() == "Overdue"
    assert app.locator("#badge-preview .badge").text_content() == "OVERDUE"
    tab.page.keyboard.type("paid_late")
    app.locator("#badge-create").click()
    app.locator("tr[data-code='paid_late']").wait_for()
    copy = portal.badges["paid_late"]
    assert (copy.title, copy.value, copy.type) == ({"en": "Payment", "de": "Zahlung"}, "Overdue", "failure")
    assert app.locator("#create-title").text_content() == "Create a badge", "back to an empty create form"
    assert app.locator("#form-mode-note").text_content() == ""
    assert seen[-1] == ("POST", "/badges", 201)

    # Replace: code fixed, texts and type editable; PUT /api/v1/badges/<code>.
    app.locator("tr[data-code='paid_late'] button[data-action='replace']").click()
    assert app.locator("#create-title").text_content() == "Replace badge paid_late"
    assert note in app.locator("#form-mode-note").text_content()
    assert code.input_value() == "paid_late" and code.get_attribute("readonly") is not None
    assert app.locator("#badge-create").text_content() == "Replace badge"
    app.locator("#badge-value").fill("Paid")
    app.locator("#badge-type").select_option("success")
    app.locator("#badge-create").click()
    app.locator("#live-status", has_text="Badge paid_late replaced.").wait_for(state="attached")
    assert seen[-1] == ("PUT", "/badges/paid_late", 200)
    replaced = portal.badges["paid_late"]
    assert (replaced.value, replaced.type, replaced.title) == ("Paid", "success", {"en": "Payment", "de": "Zahlung"})
    app.locator("tr[data-code='paid_late'] .badge:has-text('PAID')").wait_for()
    assert app.locator("#create-title").text_content() == "Create a badge"

    # A badge that a deal shows cannot be replaced: nothing changes, and the deal is linked.
    app.locator("tr[data-code='busy'] button[data-action='replace']").click()
    app.locator("#badge-title").fill("Still busy")
    app.locator("#badge-create").click()
    problem = app.locator("#create-problem")
    problem.locator("a[data-deal-id='6']").wait_for()
    assert "Not replaced, nothing changed" in problem.text_content()
    assert problem.locator("a").get_attribute("href") == f"{portal.base_url}/crm/deal/details/6/"
    assert seen[-1] == ("PUT", "/badges/busy", 409)
    app.locator("#create-form").scroll_into_view_if_needed()
    screenshot(tab.page, "replace-in-use.png")
    assert portal.badges["busy"].title == "Busy"

    # Cancel leaves Replace mode.
    app.locator("#badge-form-cancel").click()
    assert app.locator("#create-title").text_content() == "Create a badge"
    assert code.get_attribute("readonly") is None and code.input_value() == ""
    assert app.locator("#create-problem").text_content() == ""
    assert not tab.csp_violations(), tab.console


def test_long_title_preview_csv_example_and_stale_import_errors(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="late", title="Payment", value="Overdue", type="failure")
    app = open_app(tab, b24, portal)
    wait_list(app)

    # A 300-character title: the chip keeps its value whole, the title ends in an ellipsis.
    app.locator("#badge-value").fill("Overdue")
    app.locator("#badge-title").fill(("Payment reminder " * 20)[:300])
    chip = app.locator("#badge-preview .badge")
    title = app.locator("#badge-preview .badge-title")
    assert chip.text_content() == "OVERDUE"
    assert chip.evaluate("el => el.scrollWidth <= el.clientWidth"), "the value is not cut"
    assert chip.evaluate("el => el.getBoundingClientRect().width") > 50
    assert title.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"
    assert title.evaluate("el => el.scrollWidth > el.clientWidth"), "the title is cut"
    assert title.evaluate("el => el.getBoundingClientRect().height < 24"), "on one line"
    assert title.get_attribute("title").startswith("Payment reminder Payment reminder")

    # The CSV example keeps each line whole (two lines) and scrolls sideways instead.
    example = app.locator("#import-example")
    assert example.evaluate("el => getComputedStyle(el).whiteSpace") == "pre"
    lines = example.evaluate("""el => {
        const range = document.createRange();
        range.selectNodeContents(el.querySelector('code'));
        return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
    }""")
    assert lines == 2
    assert example.evaluate("el => el.scrollWidth > el.clientWidth"), "narrow column: the example scrolls"
    import_panel = app.locator("section.import")
    assert import_panel.evaluate("el => el.scrollWidth <= el.clientWidth"), "the panel itself does not overflow"

    bad = {"name": "oops.csv", "mimeType": "text/csv", "buffer": b"code;name\r\nx;y\r\n"}
    problem = app.locator("#import-problem")

    # An unreadable file's message goes once a badge is created …
    app.locator("#import-file").set_input_files(bad)
    problem.wait_for(state="visible")
    app.locator("#badge-code").fill("fresh")
    app.locator("#badge-title").fill("Fresh")
    app.locator("#badge-create").click()
    app.locator("tr[data-code='fresh']").wait_for()
    assert problem.is_hidden() and problem.text_content() == ""
    assert app.locator("#import-file").evaluate("el => el.files.length") == 0

    # … once another view opens (Duplicate) …
    app.locator("#import-file").set_input_files(bad)
    problem.wait_for(state="visible")
    app.locator("tr[data-code='late'] button[data-action='duplicate']").click()
    assert problem.is_hidden()
    app.locator("#badge-form-cancel").click()

    # … and after a later import that works; a failed import's results go when a badge is created.
    app.locator("#import-file").set_input_files(bad)
    problem.wait_for(state="visible")
    works = b"code,title,value,type\r\nimp_ok,Ok,ok,success\r\nlate,Dup,x,success\r\n"
    app.locator("#import-file").set_input_files({"name": "ok.csv", "mimeType": "text/csv", "buffer": works})
    app.locator("#import-start").click()
    app.locator("#import-summary").wait_for()
    assert problem.is_hidden()
    assert app.locator("#import-summary").text_content() == "Import finished. Created: 1. Failed: 1."
    app.locator("#badge-code").fill("after_import")
    app.locator("#badge-title").fill("After")
    app.locator("#badge-value").fill("x")
    app.locator("#badge-create").click()
    app.locator("tr[data-code='after_import']").wait_for()
    assert app.locator("#import-summary").count() == 0
    assert app.locator("#import-results tr.result-failed").count() == 0
    assert not tab.csp_violations(), tab.console
