"""The portal page's language switch: the LANG a portal passes to the app's frames is the user's UI language
(docs/bitrix24-protocol.md §1.2, §7.2), chosen per browser without making a new portal."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from b24app.sandbox import AppCard, Sandbox, SandboxError

from .conftest import Installed, call
from .test_page import _frame


def _lang_of(html: str) -> tuple[str, str]:
    """(LANG in the frame form's query, LANG in the b24jssdk init data) of a rendered page."""
    config, action, _, _ = _frame(html)
    return parse_qs(urlsplit(action).query)["LANG"][0], config["init"]["LANG"]


def test_the_switch_changes_the_frame_lang(http, installed: Installed, card: AppCard) -> None:
    """The top bar's switch sets the `sandbox_lang` cookie; the app frame's POST query and getInitData then
    carry that LANG; refreshAuth too; the portal's own language is untouched."""
    portal = installed.portal
    page = f"/marketplace/app/{card.client_id}/"
    assert _lang_of(http.get(portal.base_url + page, timeout=10).text) == ("en", "en")
    switched = http.get(portal.base_url + "/_portal/lang", params={"lang": "de", "next": page},
                        allow_redirects=False, timeout=10)
    assert switched.status_code == 303 and switched.headers["Location"] == page
    assert switched.cookies.get("sandbox_lang") == "de"
    html = http.get(portal.base_url + page, timeout=10).text
    assert _lang_of(html) == ("de", "de")
    assert '<html lang="de">' in html
    assert re.search(r'<option value="de" selected>de · Deutsch</option>', html)
    config, *_ = _frame(html)
    fresh = http.post(portal.base_url + config["endpoints"]["refreshAuth"], json={}, timeout=10).json()
    assert fresh["LANG"] == "de"
    assert portal.language == "en"
    assert call(http, portal, "app.info", installed.admin["access_token"]).json()["result"]["LANGUAGE_ID"] == "en"
    back = http.get(portal.base_url + "/_portal/lang", params={"lang": "", "next": page}, allow_redirects=False,
                    timeout=10)
    assert back.status_code == 303
    assert _lang_of(http.get(portal.base_url + page, timeout=10).text) == ("en", "en")


def test_the_query_parameter_and_unknown_languages(http, installed: Installed, card: AppCard, stub) -> None:
    """`?sandbox_lang=ru` works on any page (and sticks); a language the portal does not know is ignored."""
    portal = installed.portal
    page = portal.base_url + f"/marketplace/app/{card.client_id}/"
    ru = http.get(page, params={"sandbox_lang": "ru"}, timeout=10)
    assert _lang_of(ru.text) == ("ru", "ru") and ru.cookies.get("sandbox_lang") == "ru"
    assert _lang_of(http.get(page, timeout=10).text) == ("ru", "ru")
    http.cookies.clear()
    klingon = http.get(page, params={"sandbox_lang": "tlh"}, timeout=10)
    assert _lang_of(klingon.text) == ("en", "en") and "sandbox_lang" not in klingon.cookies
    refused = http.get(portal.base_url + "/_portal/lang", params={"lang": "tlh", "next": "//evil.test/"},
                       allow_redirects=False, timeout=10)
    assert refused.headers["Location"] == "/" and "sandbox_lang" not in refused.cookies


def test_deal_tabs_and_badges_follow_the_language(http, installed: Installed, stub) -> None:
    """A CRM_DEAL_DETAIL_TAB frame gets the chosen LANG; tab titles and badge texts use it too."""
    portal, token = installed.portal, installed.admin["access_token"]
    call(http, portal, "placement.bind", token, PLACEMENT="CRM_DEAL_DETAIL_TAB", HANDLER=stub.url + "/app",
         TITLE="Badges", LANG_ALL={"en": {"TITLE": "Badges"}, "de": {"TITLE": "Abzeichen"}})
    call(http, portal, "crm.activity.badge.add", token, code="late", title={"en": "Payment", "de": "Zahlung"},
         value={"en": "Late", "de": "Verspätet"}, type="warning")
    call(http, portal, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=2, fields={"badgeCode": "late"},
         layout={"icon": {"code": "info"}, "header": {"title": "x"},
                 "body": {"logo": {"code": "call"}, "blocks": {"a": {"type": "text"}}}})
    card = http.get(portal.base_url + "/crm/deal/details/2/", params={"sandbox_lang": "de"}, timeout=10).text
    assert ">VERSPÄTET</span>" in card and "Zahlung" in card
    tab = re.search(r'href="\?tab=(\d+)" class="tab"\s+data-placement="CRM_DEAL_DETAIL_TAB">Abzeichen</a>', card)
    assert tab
    html = http.get(portal.base_url + f"/crm/deal/details/2/?tab={tab.group(1)}", timeout=10).text
    assert _lang_of(html) == ("de", "de")


def test_python_and_control_api_take_lang(sb: Sandbox, installed: Installed, stub, server) -> None:
    """`open_app(..., lang=)`, `install(..., lang=)`, `frame_auth(..., lang=)` and the control API's `lang`."""
    stub.clear()
    sb.open_app(installed.portal, 2, lang="de")
    [got] = [r for r in stub.at("/app") if r.form.get("member_id") == installed.portal.member_id]
    assert got.query["LANG"] == "de"
    assert sb.frame_auth(installed.portal, 1, lang="ru")["LANG"] == "ru"
    with pytest.raises(SandboxError, match="unknown language"):
        sb.open_app(installed.portal, 1, lang="xx")
    opened = requests.post(f"{server.control_url}/portals/{installed.portal.member_id}/open-app",
                           json={"lang": "pl"}, timeout=10).json()
    assert opened["status"] == 200 and "LANG=pl" in opened["url"]
    portal = sb.create_portal()
    sb.install(portal, lang="it")
    [installer] = [r for r in stub.at("/install") if r.form.get("member_id") == portal.member_id]
    assert installer.query["LANG"] == "it"
