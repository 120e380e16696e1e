"""Import from JSON and CSV files with per-row results; delete with a confirmation dialog."""
from __future__ import annotations

import json

from .helpers import add_badge, api_for, open_app, wait_list


def _import(app, name: str, mime: str, content: str) -> None:
    app.locator("#import-file").set_input_files({"name": name, "mimeType": mime, "buffer": content.encode()})
    app.locator("#import-found").wait_for(state="visible")
    app.locator("#import-start").click()
    app.locator("#import-summary").wait_for()


def test_import_json_and_csv_files_with_per_row_results(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="exists", title="Old", value="old", type="secondary")
    app = open_app(tab, b24, portal)
    wait_list(app)

    items = [
        {"code": "imp_one", "title": {"en": "One", "de": "Eins"}, "value": "1", "type": "success"},
        {"code": "imp_bad", "title": "", "value": "x", "type": "purple"},
        {"code": "exists", "title": "Again", "value": "again", "type": "warning"},
        {"code": "imp_two", "title": "Two", "value": "2", "type": "primary"},
    ]
    _import(app, "badges.json", "application/json", json.dumps({"badges": items}))
    assert app.locator("#import-summary").text_content() == "Import finished. Created: 2. Failed: 2."
    rows = app.locator("#import-results tbody tr")
    assert [rows.nth(i).get_attribute("data-ok") for i in range(4)] == ["true", "false", "false", "true"]
    bad = rows.nth(1).text_content()
    assert "title: Must not be empty." in bad and "type: Use one of: success, failure" in bad
    assert "already exists" in rows.nth(2).text_content()
    assert app.locator("#import-progress-bar").evaluate("el => [el.value, el.max]") == [4, 4]
    assert {"imp_one", "imp_two"} <= set(portal.badges)
    assert portal.badges["imp_one"].title == {"en": "One", "de": "Eins"}
    app.locator("tr[data-code='imp_two']").wait_for()  # the list was reloaded

    csv = ("code,title,value,type,title_de,value_de\r\n"
           "csv_late,Payment,Overdue,Failure,Zahlung,Überfällig\r\n"
           '"csv_quote","Say ""hi"", then wait",Hi,success,,\r\n'
           "csv_bad,No type,x,,,\r\n")
    _import(app, "badges.csv", "text/csv", csv)
    assert app.locator("#import-summary").text_content() == "Import finished. Created: 2. Failed: 1."
    rows = app.locator("#import-results tbody tr")
    assert [rows.nth(i).get_attribute("data-row") for i in range(3)] == ["2", "3", "4"], "file line numbers"
    assert "type: Use one of" in rows.nth(2).text_content()
    late = portal.badges["csv_late"]
    assert (late.title, late.value, late.type) == ({"en": "Payment", "de": "Zahlung"},
                                                   {"en": "Overdue", "de": "Überfällig"}, "failure")
    assert portal.badges["csv_quote"].title == 'Say "hi", then wait'

    # A file the UI cannot read is explained before anything is sent.
    app.locator("#import-file").set_input_files({"name": "oops.csv", "mimeType": "text/csv",
                                                 "buffer": b"code;name\r\nx;y\r\n"})
    problem = app.locator("#import-problem")
    problem.wait_for(state="visible")
    assert "unknown columns: name" in problem.text_content()
    assert app.locator("#import-start").is_disabled()
    assert not tab.csp_violations(), tab.console


def test_delete_asks_first_and_explains_a_badge_still_on_deals(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="keep", title="Keep", value="keep", type="primary")
    add_badge(b24, portal, code="busy", title="Busy", value="busy", type="warning")
    api = api_for(b24, portal)
    assert api.post("/deals/4/badge", json={"code": "busy"}).status_code == 201
    app = open_app(tab, b24, portal)
    wait_list(app)

    # Cancel keeps the badge; the dialog is a modal <dialog>, not window.confirm.
    app.locator("tr[data-code='keep'] button[data-action='delete']").click()
    dialog = app.locator("dialog[open]")
    assert dialog.get_attribute("aria-labelledby") == "confirm-title"
    assert "keep" in dialog.locator("#confirm-message").text_content()
    assert app.locator("#confirm-cancel").evaluate("el => el === document.activeElement")
    tab.page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert "keep" in portal.badges
    assert tab.dialogs == []

    # The badge is still on a deal: ENTITY_WITH_BADGE_EXISTS is explained inside the dialog.
    app.locator("tr[data-code='busy'] button[data-action='delete']").click()
    app.locator("#confirm-ok").click()
    problem = app.locator("dialog[open] .dialog-problem")
    problem.wait_for(state="visible")
    assert "Deals still show this badge" in problem.text_content()
    assert "clear the badge" in problem.text_content()
    link = problem.locator(".deal-links a")  # the deals the server named (409 "deals": [4]), linked
    assert [link.text_content(), link.get_attribute("href"), link.get_attribute("target")] == [
        "Deal #4", f"{portal.base_url}/crm/deal/details/4/", "_top"]
    assert "busy" in portal.badges
    app.locator("#confirm-cancel").click()

    # Cleared from the deal, it can go.
    assert api.delete("/deals/4/badge").status_code == 204
    app.locator("tr[data-code='busy'] button[data-action='delete']").click()
    app.locator("#confirm-ok").click()
    app.locator("tr[data-code='busy']").wait_for(state="detached")
    assert "busy" not in portal.badges
    app.locator("#live-status", has_text="Badge busy deleted.").wait_for(state="attached")
    app.locator("tr[data-code='keep'] button[data-action='delete']").click()
    app.locator("#confirm-ok").click()
    app.locator("#badges-empty").wait_for()
    assert portal.badges == {}
