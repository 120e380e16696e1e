"""Answer shapes the official clients model: user.current, app.info via a webhook, dates in the portal's time zone
(docs/bitrix24-protocol.md §3.2, §6.1, §6.3)."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from b24app.sandbox import Portal, Sandbox, SandboxError

from .conftest import Installed, call

USER_FIELDS = ("ID", "XML_ID", "ACTIVE", "NAME", "LAST_NAME", "EMAIL", "LAST_LOGIN", "DATE_REGISTER", "TIME_ZONE",
               "IS_ONLINE", "TIMESTAMP_X", "LAST_ACTIVITY_DATE", "PERSONAL_GENDER", "PERSONAL_BIRTHDAY",
               "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT")


def test_user_current_has_the_fields_the_sdk_checks(http, installed: Installed, sb: Sandbox) -> None:
    """§6.3: user.current carries LAST_LOGIN, DATE_REGISTER (ISO, portal offset), TIMESTAMP_X (`dd.mm.yyyy
    hh:mm:ss`), LAST_ACTIVITY_DATE (`yyyy-mm-dd hh:mm:ss`), PERSONAL_BIRTHDAY and UF_EMPLOYMENT_DATE (empty), each a
    bool, string or list, as the official SDK's live test asserts."""
    hook = sb.create_webhook(installed.portal, 1, scope="user")
    user = http.post(hook["url"] + "user.current", json={}, timeout=10).json()["result"]
    for field in USER_FIELDS:
        assert isinstance(user[field], bool | str | list), field
    assert user["LAST_LOGIN"].endswith("+03:00") and datetime.fromisoformat(user["LAST_LOGIN"])
    assert user["DATE_REGISTER"].endswith("T00:00:00+03:00")
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}", user["TIMESTAMP_X"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", user["LAST_ACTIVITY_DATE"])
    assert (user["PERSONAL_BIRTHDAY"], user["UF_EMPLOYMENT_DATE"]) == ("", "")


def test_user_brief_hides_the_email(http, installed: Installed) -> None:
    """§6.3: the app's `user_brief` scope gets no EMAIL from user.current."""
    user = call(http, installed.portal, "user.current", installed.admin["access_token"]).json()["result"]
    assert "EMAIL" not in user
    assert user["LAST_LOGIN"]


def test_app_info_through_a_webhook_is_scope_and_license(http, installed: Installed, sb: Sandbox) -> None:
    """§6.1: a webhook's app.info is `{SCOPE: [...], LICENSE}` (the official SDK's AppInfoWebhook)."""
    hook = sb.create_webhook(installed.portal, 1, scope="crm,user")
    resp = http.post(hook["url"] + "app.info", json={}, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["result"] == {"SCOPE": ["crm", "user"], "LICENSE": "en_basic"}


def test_dates_follow_the_portal_time_zone(http, installed: Installed, sb: Sandbox) -> None:
    """§3.2: `time.date_*`, server.time and crm.activity.list dates carry the portal's offset (+03:00 by default,
    as most docs examples); the `time_zone` setting moves them, the instant stays the same."""
    token = installed.admin["access_token"]
    body = call(http, installed.portal, "server.time", token).json()
    assert body["result"].endswith("+03:00") and body["time"]["date_start"].endswith("+03:00")
    moscow = datetime.fromisoformat(body["result"])
    sb.configure_portal(installed.portal, time_zone="-05:30")
    later = call(http, installed.portal, "server.time", token).json()
    assert later["result"].endswith("-05:30") and later["time"]["date_finish"].endswith("-05:30")
    assert abs((datetime.fromisoformat(later["result"]) - moscow).total_seconds()) < 60
    call(http, installed.portal, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=1, fields={},
         layout={"icon": {"code": "info"}, "header": {"title": "t"}, "body": {"logo": {"code": "call"},
                 "blocks": {"b": {"type": "text", "properties": {"value": "x"}}}}})
    row = call(http, installed.portal, "crm.activity.list", token).json()["result"][0]
    assert row["CREATED"].endswith("-05:30")


def test_time_zone_is_chosen_at_creation_and_checked(sb: Sandbox, card) -> None:
    """§3.2: `create_portal(settings=...)` takes the zone; a malformed one is misuse."""
    portal: Portal = sb.create_portal(settings={"time_zone": "+00:00"})
    assert portal.settings.time_zone == "+00:00"
    with pytest.raises(SandboxError):
        sb.configure_portal(portal, time_zone="Europe/Moscow")
    with pytest.raises(SandboxError):
        sb.configure_portal(portal, colour="blue")
