"""OAuth code flow: signed, expiring, single-use state; re-authorizes a dead chain."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from b24app.errors import PortalUnavailable
from b24app.storage.installations import PortalState
from tests.integration.helpers import oauth_counters


def _authorize(b24, domain: str) -> str:
    """Start at /oauth/authorize, go through the portal's consent redirect; return the callback URL."""
    start = requests.get(f"{b24.url}/oauth/authorize", params={"domain": domain}, allow_redirects=False, timeout=5)
    assert start.status_code == 302
    portal_url = start.headers["Location"]
    assert portal_url.startswith(f"http://{domain}/oauth/authorize/?")
    assert parse_qs(urlsplit(portal_url).query)["client_id"] == [b24.card.client_id]
    consent = requests.get(portal_url, allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    callback = consent.headers["Location"]
    assert callback.startswith(f"{b24.url}/oauth/callback?")
    return callback


def _dead_chain(b24):
    portal = b24.installed_portal()
    b24.sandbox.revoke_refresh(portal)
    b24.sandbox.expire_tokens(portal)
    with pytest.raises(PortalUnavailable):
        b24.services.portal_services.clients.portal(portal.member_id).call("profile")
    assert b24.services.store.get(portal.member_id).state == PortalState.NEEDS_REAUTH
    return portal


def test_code_flow_revives_a_portal_that_needs_reauthorization(b24) -> None:
    portal = _dead_chain(b24)
    callback = _authorize(b24, portal.domain)
    before = oauth_counters(b24.sandbox)["code_ok"]
    done = requests.get(callback, timeout=5)
    assert done.status_code == 200
    assert "Authorization renewed" in done.text
    assert oauth_counters(b24.sandbox)["code_ok"] == before + 1
    record = b24.services.store.get(portal.member_id)
    assert (record.state, record.last_error) == (PortalState.ACTIVE, "")
    assert b24.services.portal_services.clients.portal(portal.member_id).call("profile").result["ADMIN"] is True


def test_replayed_state_is_refused(b24) -> None:
    portal = b24.installed_portal()
    callback = _authorize(b24, portal.domain)
    assert requests.get(callback, timeout=5).status_code == 200
    replay = requests.get(callback, timeout=5)
    assert replay.status_code == 401
    assert "already used" in replay.text


def test_missing_or_forged_state_is_refused(b24) -> None:
    portal = b24.installed_portal()
    callback = _authorize(b24, portal.domain)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    without = {k: v for k, v in params.items() if k != "state"}
    assert requests.get(f"{b24.url}/oauth/callback", params=without, timeout=5).status_code == 400
    forged = {**params, "state": params["state"][:-3] + "abc"}
    assert requests.get(f"{b24.url}/oauth/callback", params=forged, timeout=5).status_code == 401


def test_state_of_another_portal_is_refused(b24) -> None:
    first, second = b24.installed_portal(), b24.installed_portal()
    first_params = {k: v[0] for k, v in parse_qs(urlsplit(_authorize(b24, first.domain)).query).items()}
    second_params = {k: v[0] for k, v in parse_qs(urlsplit(_authorize(b24, second.domain)).query).items()}
    mixed = {**second_params, "state": first_params["state"]}
    response = requests.get(f"{b24.url}/oauth/callback", params=mixed, timeout=5)
    assert response.status_code == 401
    assert "another portal" in response.text


def test_unknown_domain_is_not_redirected(b24) -> None:
    response = requests.get(f"{b24.url}/oauth/authorize", params={"domain": "evil.example.com"},
                            allow_redirects=False, timeout=5)
    assert response.status_code == 404
