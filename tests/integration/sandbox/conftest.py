"""Fixtures for the sandbox's own tests: one running sandbox per session, a recording stub app,
fresh portals per test. Everything is real HTTP on 127.0.0.1; nothing needs Redis."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from b24app.sandbox import AppCard, Portal, Sandbox, SandboxServer, start_sandbox

from .stub_app import AppStub, Received


@pytest.fixture(scope="session")
def server() -> Iterator[SandboxServer]:
    srv = start_sandbox()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def stub() -> Iterator[AppStub]:
    app = AppStub()
    yield app
    app.stop()


@pytest.fixture(scope="session")
def sb(server: SandboxServer) -> Sandbox:
    return server.sandbox


@pytest.fixture(scope="session")
def card(sb: Sandbox, stub: AppStub) -> AppCard:
    return sb.register_app(app_url=stub.url)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def portal(sb: Sandbox, card: AppCard) -> Portal:
    """A fresh portal, nothing installed."""
    return sb.create_portal()


@dataclass
class Installed:
    """A portal with the app installed (REST-only install) and tokens for Alice (1) and Bob (2)."""

    portal: Portal
    admin: dict[str, Any]
    user: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return self.portal.client_endpoint


@pytest.fixture
def installed(sb: Sandbox, card: AppCard, portal: Portal) -> Installed:
    result = sb.install(portal, rest_only=True)
    assert result.status == 200
    return Installed(portal, sb.issue_tokens(portal, 1), sb.issue_tokens(portal, 2))


@pytest.fixture
def crm_only(sb: Sandbox, stub: AppStub) -> tuple[Portal, str]:
    """A portal with an app whose card lists only the `crm` scope, and that app's access token."""
    narrow = sb.register_app(app_url=stub.url, scope="crm")
    portal = sb.create_portal()
    sb.install(portal, rest_only=True, client_id=narrow.client_id)
    return portal, sb.issue_tokens(portal, 1, narrow.client_id)["access_token"]


def call(session: requests.Session, portal: Portal, method: str, token: str | None = None,
         **params: Any) -> requests.Response:
    """POST a REST method with a JSON body and `auth` in it (the documented way, docs/bitrix24-protocol.md §3.1)."""
    body = dict(params)
    if token is not None:
        body["auth"] = token
    return session.post(portal.client_endpoint + method, json=body, timeout=10, allow_redirects=False)


def robot_fields(stub, **overrides: Any) -> dict[str, Any]:
    """What the app's install.json robot registers, in the docs' casing (Name, Type…)."""
    fields: dict[str, Any] = {
        "CODE": "activity_badge", "HANDLER": stub.url + "/robot", "AUTH_USER_ID": 3, "USE_SUBSCRIPTION": "Y",
        "NAME": {"en": "Set activity badge", "de": "Aktivitäts-Badge setzen"},
        "PROPERTIES": {"badge": {"Name": {"en": "Badge"}, "Type": "select", "Options": {"missedCall": "Missed call"}},
                       "action": {"Name": "Action", "Type": "select", "Default": "set",
                                  "Options": {"set": "Set", "clear": "Clear"}}},
        "RETURN_PROPERTIES": {"activity_id": {"Name": "Activity ID", "Type": "int"},
                              "badge": {"Name": "Badge shown", "Type": "string"}},
        "FILTER": {"INCLUDE": [["crm", "CCrmDocumentDeal"]]}}
    fields.update(overrides)
    return fields


def add_robot(http, installed: Installed, stub, **overrides: Any) -> requests.Response:
    return call(http, installed.portal, "bizproc.robot.add", installed.admin["access_token"],
                **robot_fields(stub, **overrides))


def posts(stub, portal: Portal, path: str = "/robot") -> list[Received]:
    return [r for r in stub.at(path) if r.form.get("auth[member_id]") == portal.member_id]


@pytest.fixture
def robot(http, installed: Installed, stub) -> Installed:
    """The portal with the app's robot registered."""
    assert add_robot(http, installed, stub).json()["result"] is True
    return installed
