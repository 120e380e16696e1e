"""The portal page over plain HTTP (no browser): the iframe POST it renders, users, install button, deal card
(docs/bitrix24-protocol.md §1.1, §1.2, §5.6, §5.7, §7.2). The b24jssdk round trip itself is in test_browser.py."""
from __future__ import annotations

import json
import re
from html import unescape

import requests

from b24app.sandbox import AppCard, Portal, Sandbox

from .conftest import Installed, call


def _frame(html: str) -> tuple[dict, str, str, dict[str, str]]:
    config = json.loads(unescape(re.search(r'data-frame="([^"]+)"', html).group(1)))
    action = unescape(re.search(r'<form id="b24-frame-form" method="post" action="([^"]+)"', html).group(1))
    target = unescape(re.search(r'target="([^"]+)"', html).group(1))
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                                             html)}
    return config, action, target, fields


def test_pages_are_csp_friendly(http, portal: Portal) -> None:
    """§1.2/§7.2: the portal page's JS is a static file: no inline script, a strict CSP."""
    resp = http.get(portal.base_url + "/", timeout=10)
    assert resp.status_code == 200
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>", resp.text)
    assert scripts and all("src=" in attrs for attrs in scripts)
    assert http.get(portal.base_url + "/_portal/static/portal.js", timeout=10).status_code == 200


def test_install_button_only_for_admins(http, portal: Portal, card: AppCard) -> None:
    """§1.1: only an administrator can install; the page offers the button to admins only."""
    admin = http.get(portal.base_url + "/", timeout=10).text
    assert f'/_portal/apps/{card.client_id}/install' in admin
    bob = http.get(portal.base_url + "/", params={"sandbox_user": 2}, timeout=10)
    assert f'/_portal/apps/{card.client_id}/install' not in bob.text
    assert bob.cookies.get("sandbox_user") == "2"


def test_installer_frame_is_the_iframe_post(http, portal: Portal, card: AppCard, sb: Sandbox) -> None:
    """§1.2/§7.2: the installer iframe is loaded by a form POST to the install URL (query DOMAIN, PROTOCOL, LANG,
    APP_SID), targeting the iframe named `DOMAIN|PROTOCOL|APP_SID`; getInitData carries INSTALL=true."""
    started = http.post(portal.base_url + f"/_portal/apps/{card.client_id}/install", allow_redirects=False,
                        timeout=10)
    assert started.status_code == 303
    html = http.get(portal.base_url + started.headers["Location"], timeout=10).text
    config, action, target, fields = _frame(html)
    sid = config["appSid"]
    assert action == f"{card.install_url}?DOMAIN={portal.domain.replace(':', '%3A')}&PROTOCOL=0&LANG=en&APP_SID={sid}"
    assert target == f"{portal.domain}|0|{sid}"
    assert re.search(rf'<iframe id="b24-app-frame" name="{re.escape(target)}"', html)
    assert {"AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "SERVER_ENDPOINT", "member_id", "status", "PLACEMENT",
            "PLACEMENT_OPTIONS"} <= set(fields)
    init = config["init"]
    assert init["INSTALL"] is True and init["FIRST_RUN"] is False
    assert init["AUTH_ID"] == fields["AUTH_ID"]
    assert set(init) == {"AUTH_ID", "REFRESH_ID", "AUTH_EXPIRES", "DOMAIN", "PROTOCOL", "PATH", "LANG", "MEMBER_ID",
                         "IS_ADMIN", "APP_OPTIONS", "USER_OPTIONS", "PLACEMENT", "PLACEMENT_OPTIONS", "INSTALL",
                         "FIRST_RUN"}
    assert config["frameOrigin"] == card.app_url


def test_frame_endpoints_refresh_and_finish(http, portal: Portal, card: AppCard, sb: Sandbox) -> None:
    """§7.1/§7.2/§1.3: refreshAuth hands out fresh tokens; setInstallFinish marks the app installed."""
    started = http.post(portal.base_url + f"/_portal/apps/{card.client_id}/install", timeout=10)
    config, *_ = _frame(started.text)
    fresh = http.post(portal.base_url + config["endpoints"]["refreshAuth"], json={}, timeout=10).json()
    assert fresh["AUTH_ID"] != config["init"]["AUTH_ID"]
    assert call(http, portal, "profile", fresh["AUTH_ID"]).status_code == 200
    finished = http.post(portal.base_url + config["endpoints"]["installFinish"], json={}, timeout=10)
    assert finished.json()["installed"] is True
    assert portal.installations[card.client_id].installed is True
    cross = http.post(portal.base_url + config["endpoints"]["refreshAuth"], headers={"Origin": "http://evil.test"},
                      json={}, timeout=10)
    assert cross.status_code == 403


def test_non_admin_sees_not_fully_installed(http, portal: Portal, card: AppCard, sb: Sandbox) -> None:
    """§1.1: until installFinish, ordinary users see "not fully installed" and no frame."""
    sb.install(portal)
    resp = http.get(portal.base_url + f"/marketplace/app/{card.client_id}/", params={"sandbox_user": 2}, timeout=10)
    assert "not fully installed" in resp.text
    assert "b24-app-frame" not in resp.text


def test_deal_card_tabs_and_badge(http, installed: Installed, card: AppCard, sb: Sandbox, stub) -> None:
    """§5.7/§5.6: CRM_DEAL_DETAIL_TAB placements are tabs whose frame gets PLACEMENT_OPTIONS {"ID": "<deal>"};
    the kanban preview shows the badge value upper-cased with its type's colour class."""
    token = installed.admin["access_token"]
    call(http, installed.portal, "placement.bind", token, PLACEMENT="CRM_DEAL_DETAIL_TAB", HANDLER=stub.url + "/app",
         TITLE="Badges", LANG_ALL={"en": {"TITLE": "Badges EN"}})
    call(http, installed.portal, "crm.activity.badge.add", token, code="warm", title="Lead", value="Warm",
         type="warning")
    call(http, installed.portal, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=2,
         fields={"badgeCode": "warm"}, layout={"icon": {"code": "info"}, "header": {"title": "x"},
                                               "body": {"logo": {"code": "call"}, "blocks": {"a": {"type": "text"}}}})
    card_html = http.get(installed.portal.base_url + "/crm/deal/details/2/", timeout=10).text
    assert re.search(r'class="badge badge-warning"[^>]*>Warm</span>', card_html) is None
    assert re.search(r'class="badge badge-warning"[^>]*>WARM</span>', card_html)
    tab = re.search(r'href="\?tab=(\d+)" class="tab"\s+data-placement="CRM_DEAL_DETAIL_TAB">Badges EN</a>', card_html)
    assert tab
    tab_html = http.get(installed.portal.base_url + f"/crm/deal/details/2/?tab={tab.group(1)}", timeout=10).text
    config, action, _, fields = _frame(tab_html)
    assert action.startswith(stub.url + "/app?")
    assert fields["PLACEMENT"] == "CRM_DEAL_DETAIL_TAB"
    assert fields["PLACEMENT_OPTIONS"] == '{"ID":"2"}'
    assert config["init"]["PLACEMENT_OPTIONS"] == {"ID": "2"}
    kanban = http.get(installed.portal.base_url + "/crm/deal/", timeout=10).text
    assert 'data-badge-code="warm"' in kanban


def test_sandbox_home_lists_portals(server, portal: Portal) -> None:
    """docs/DESIGN.md §8 (developers click through it): the OAuth port's home page links every portal."""
    html = requests.get(server.oauth_url + "/", timeout=10).text
    assert portal.base_url in html
