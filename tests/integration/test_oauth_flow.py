"""OAuth re-authorization: it starts only from an admin's session, through a one-time link, with an opaque,
single-use state, and stores the new chain only if the consenting user is a portal admin."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from b24app.errors import PortalUnavailable
from b24app.storage.installations import PortalState
from tests.integration.api import session_for
from tests.integration.helpers import oauth_counters


def _link(b24, portal, user_id: int = 1) -> str:
    response = session_for(b24, portal, user_id).post("/oauth/authorize")
    assert response.status_code == 200, response.text
    return response.json()["url"]


def _authorize(b24, portal, *, consenting_user: int = 1) -> str:
    """From an admin's link through the portal's consent redirect; returns the callback URL."""
    start = requests.get(_link(b24, portal), allow_redirects=False, timeout=5)
    assert start.status_code == 302
    portal_url = start.headers["Location"]
    assert portal_url.startswith(f"http://{portal.domain}/oauth/authorize/?")
    query = parse_qs(urlsplit(portal_url).query)
    assert query["client_id"] == [b24.card.client_id]
    consent = requests.get(portal_url, params={"sandbox_user": consenting_user}, allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    callback = consent.headers["Location"]
    assert callback.startswith(f"{b24.url}/oauth/callback?")
    return callback


def _params(callback: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}


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
    callback = _authorize(b24, portal)
    before = oauth_counters(b24.sandbox)["code_ok"]
    done = requests.get(callback, timeout=5)
    assert done.status_code == 200
    assert "Authorization renewed" in done.text
    assert oauth_counters(b24.sandbox)["code_ok"] == before + 1
    record = b24.services.store.get(portal.member_id)
    assert (record.state, record.last_error) == (PortalState.ACTIVE, "")
    assert b24.services.portal_services.clients.portal(portal.member_id).call("profile").result["ADMIN"] is True


def test_a_non_admin_consenting_changes_nothing(b24) -> None:
    portal = b24.installed_portal()
    before = b24.services.store.get(portal.member_id)
    refused = requests.get(_authorize(b24, portal, consenting_user=2), timeout=5)
    assert refused.status_code == 403
    assert "administrator" in refused.text
    after = b24.services.store.get(portal.member_id)
    assert (after.owner_user_id, after.refresh_token, after.state) == (1, before.refresh_token, PortalState.ACTIVE)


def test_only_an_admin_session_gets_a_link(b24) -> None:
    portal = b24.installed_portal()
    refused = session_for(b24, portal, user_id=2).post("/oauth/authorize")
    assert (refused.status_code, refused.json()["error"]) == (403, "ACCESS_DENIED")
    assert requests.post(f"{b24.url}/api/v1/oauth/authorize", timeout=5).status_code == 401


def test_a_link_works_once(b24) -> None:
    portal = b24.installed_portal()
    link = _link(b24, portal)
    assert requests.get(link, allow_redirects=False, timeout=5).status_code == 302
    again = requests.get(link, allow_redirects=False, timeout=5)
    assert again.status_code == 400
    assert "<code>INVALID_LINK</code>" in again.text


def test_the_state_is_opaque_and_single_use(b24) -> None:
    portal = b24.installed_portal()
    callback = _authorize(b24, portal)
    state = _params(callback)["state"]
    padded = state + "=" * (-len(state) % 4)
    assert portal.member_id not in state
    assert portal.member_id.encode() not in base64.urlsafe_b64decode(padded)
    assert requests.get(callback, timeout=5).status_code == 200
    replay = requests.get(callback, timeout=5)
    assert replay.status_code == 401
    assert "already used" in replay.text


def test_missing_or_forged_state_is_refused(b24) -> None:
    portal = b24.installed_portal()
    params = _params(_authorize(b24, portal))
    without = {k: v for k, v in params.items() if k != "state"}
    assert requests.get(f"{b24.url}/oauth/callback", params=without, timeout=5).status_code == 400
    forged = {**params, "state": params["state"][:-3] + "abc"}
    assert requests.get(f"{b24.url}/oauth/callback", params=forged, timeout=5).status_code == 401


def test_state_of_another_portal_is_refused(b24) -> None:
    first, second = b24.installed_portal(), b24.installed_portal()
    first_params = _params(_authorize(b24, first))
    second_params = _params(_authorize(b24, second))
    response = requests.get(f"{b24.url}/oauth/callback", params={**second_params, "state": first_params["state"]},
                            timeout=5)
    assert response.status_code == 401
    assert b24.services.store.get(second.member_id).owner_user_id == 1


def test_without_a_valid_link_every_domain_gets_the_same_answer_and_nothing_is_stored(b24, redis_client) -> None:
    portal = b24.installed_portal()
    before = set(redis_client.scan_iter())
    answers = []
    for params in ({"domain": portal.domain}, {"domain": "evil.example.com"}, {"link": "x" * 43}, {}):
        response = requests.get(f"{b24.url}/oauth/authorize", params=params, allow_redirects=False, timeout=5)
        answers.append((response.status_code, response.text.split("request id")[0]))
    assert len(set(answers)) == 1
    assert answers[0][0] == 400
    assert "<code>INVALID_LINK</code>" in answers[0][1]
    assert set(redis_client.scan_iter()) <= before
