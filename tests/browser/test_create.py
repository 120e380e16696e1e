"""Creating badges: the per-language editor, the live preview, client hints and server field errors."""
from __future__ import annotations

import json

from .conftest import screenshot
from .helpers import add_badge, open_app, wait_list


def test_create_a_multilingual_badge_and_the_sandbox_holds_it(b24, tab) -> None:
    portal = b24.installed_portal()
    app = open_app(tab, b24, portal)
    wait_list(app)
    assert app.locator("#badges-empty").is_visible()

    app.locator("#badge-code").fill("payment_late")
    app.locator("#badge-type").select_option("failure")
    app.locator("#badge-title").fill("Payment")
    app.locator("#badge-title-translate").click()
    title = app.locator("[data-field='title']")
    assert title.locator("input[data-lang='en']").input_value() == "Payment"
    title.locator("input[data-lang='de']").fill("Zahlung")
    app.locator("#badge-title-add-language").click()
    title.locator("input[data-lang='ru']").fill("Оплата")
    app.locator("#badge-value").fill("Overdue")
    app.locator("#badge-value-translate").click()
    app.locator("[data-field='value'] input[data-lang='de']").fill("Überfällig")

    preview = app.locator("#badge-preview")
    assert preview.locator(".badge").text_content() == "OVERDUE"
    assert preview.locator(".badge-title").text_content() == "Payment"
    assert "badge-failure" in preview.locator(".badge").get_attribute("class")
    per_language = app.locator(".preview-languages li")
    assert per_language.count() == 3
    assert "ÜBERFÄLLIG" in per_language.nth(1).text_content()

    app.locator("#badge-create").click()
    app.locator("tr[data-code='payment_late']").wait_for()
    badge = portal.badges["payment_late"]
    assert badge.title == {"en": "Payment", "de": "Zahlung", "ru": "Оплата"}
    assert badge.value == {"en": "Overdue", "de": "Überfällig"}
    assert badge.type == "failure"
    app.locator("#live-status", has_text="Badge payment_late created.").wait_for(state="attached")
    assert app.locator("#badge-code").input_value() == "", "the form is reset for the next badge"
    assert not tab.csp_violations(), tab.console


def test_client_hints_and_server_field_errors_next_to_the_field(b24, tab) -> None:
    portal = b24.installed_portal()
    add_badge(b24, portal, code="taken", title="Taken", value="x", type="primary")
    app = open_app(tab, b24, portal)
    wait_list(app)
    posts: list[str] = []
    tab.page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/api/v1/badges" in r.url else None)

    # Client-side hints, with the server's own messages; nothing is sent.
    app.locator("#badge-code").fill("9lives")
    app.locator("#badge-value").fill("Hot")
    app.locator("#badge-value-translate").click()
    app.locator("#badge-create").click()
    assert app.locator("[data-error-for='code']").text_content() == (
        "Use 1–255 characters: letters, digits and _, starting with a letter.")
    assert app.locator("[data-error-for='title']").text_content() == "Must not be empty."
    assert app.locator("[data-error-for='value.de']").text_content() == "Must not be empty."
    assert app.locator("#badge-code").get_attribute("aria-invalid") == "true"
    assert app.locator("#badge-code").evaluate("el => el === document.activeElement"), "focus goes to the first error"
    assert posts == []

    # Fixing a field clears its hint while typing.
    app.locator("#badge-code").fill("taken")
    assert app.locator("[data-error-for='code']").text_content() == ""

    # The server refuses the code (409 BADGE_EXISTS): shown at the code field.
    app.locator("#badge-title").fill("Hot lead")
    app.locator("[data-field='value'] input[data-lang='de']").fill("Heiß")
    app.locator("#badge-create").click()
    app.locator("[data-error-for='code']:has-text('already exists')").wait_for()
    assert len(posts) == 1

    # A server VALIDATION_ERROR field `title.de` lands next to the German title row. The request is
    # altered on its way (a tab in the German title, which the UI itself would refuse) so that the real
    # server answers with its real `fields`.
    def tamper(route) -> None:
        body = json.loads(route.request.post_data)
        body["title"]["de"] = "Heißer\tLead"
        route.continue_(post_data=json.dumps(body))

    tab.page.route("**/api/v1/badges", tamper)
    app.locator("#badge-code").fill("hot_lead")
    app.locator("#badge-title-translate").click()
    app.locator("[data-field='title'] input[data-lang='de']").fill("Heißer Lead")
    app.locator("#badge-create").click()
    error = app.locator("[data-error-for='title.de']")
    error.wait_for(state="visible")
    assert error.text_content() == "Remove control characters (line breaks, tabs and other invisible characters)."
    row = app.locator("[data-field='title'] .lang-row[data-lang='de']")
    assert row.locator("[data-error-for='title.de']").count() == 1, "the message sits in the German row"
    assert app.locator("[data-field='title'] input[data-lang='de']").get_attribute("aria-invalid") == "true"
    assert "hot_lead" not in portal.badges
    tab.page.unroute("**/api/v1/badges")
    app.locator("#create-form").scroll_into_view_if_needed()
    screenshot(tab.page, "create-form.png")

    # Sent again untouched, it succeeds.
    app.locator("#badge-create").click()
    app.locator("tr[data-code='hot_lead']").wait_for()
    assert portal.badges["hot_lead"].title == {"en": "Hot lead", "de": "Heißer Lead"}
