"""Port-less portal domains (docs/bitrix24-protocol.md §3.1, §6.4): the `portless_domains` sandbox option.

Real portal domains carry no port, and the official Python SDK checks an event's or frame's portal by
`hostname(client_endpoint) == app.info install.domain`. With the option each portal listens on a loopback
address of its own (127.x.y.z) on port 80, so DOMAIN, install.domain and the endpoint's host agree.
Listening on port 80 needs root (or a lowered net.ipv4.ip_unprivileged_port_start), as in CI.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from b24app.sandbox import AppCard, SandboxServer, start_sandbox

from .stub_app import AppStub


def _may_listen_on_80() -> bool:
    start = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    return os.geteuid() == 0 or (start.exists() and int(start.read_text()) <= 80)


pytestmark = pytest.mark.skipif(not _may_listen_on_80(), reason="port-less domains listen on port 80")


@pytest.fixture(scope="module")
def portless() -> Iterator[SandboxServer]:
    server = start_sandbox(portless_domains=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def portless_card(portless: SandboxServer, stub: AppStub) -> AppCard:
    return portless.register_app(app_url=stub.url)


def test_domain_has_no_port_and_is_served(portless: SandboxServer, portless_card: AppCard) -> None:
    """§3.1: DOMAIN is a bare host; `client_endpoint` is `http://DOMAIN/rest/` and answers REST calls."""
    portal = portless.create_portal()
    try:
        assert ":" not in portal.domain and portal.domain.startswith("127.")
        assert portal.client_endpoint == f"http://{portal.domain}/rest/"
        portless.install(portal, rest_only=True)
        token = portless.issue_tokens(portal, 1)["access_token"]
        resp = requests.post(portal.client_endpoint + "profile", json={"auth": token}, timeout=10)
        assert resp.json()["result"]["ID"] == "1"
    finally:
        portless.remove_portal(portal)


def test_domain_matches_what_the_sdk_compares(portless: SandboxServer, portless_card: AppCard) -> None:
    """§6.4: the frame's DOMAIN, app.info's install.domain and the client_endpoint's hostname are one string."""
    portal = portless.create_portal()
    try:
        portless.install(portal, rest_only=True)
        frame = portless.frame_auth(portal, 1)
        info = requests.get(portless.oauth_url + "/rest/app.info/", params={"auth": frame["AUTH_ID"]},
                            timeout=10).json()["result"]["install"]
        assert frame["DOMAIN"] == info["domain"] == urlsplit(info["client_endpoint"]).hostname
    finally:
        portless.remove_portal(portal)


def test_rename_moves_to_another_address(portless: SandboxServer, portless_card: AppCard) -> None:
    """§3.1: a renamed portal gets a new address; the old one answers 302 to the same path there."""
    portal = portless.create_portal()
    old_endpoint = portal.client_endpoint
    try:
        portless.rename_portal(portal)
        assert portal.client_endpoint != old_endpoint and ":" not in portal.domain
        moved = requests.post(old_endpoint + "server.time", allow_redirects=False, timeout=10)
        assert moved.status_code == 302
        assert moved.headers["Location"] == portal.client_endpoint + "server.time"
    finally:
        portless.remove_portal(portal)
    with pytest.raises(requests.ConnectionError):
        requests.post(portal.client_endpoint + "server.time", timeout=3)
