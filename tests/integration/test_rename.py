"""Portal rename: a 302 is verified, followed once, and the new address stored."""
from __future__ import annotations

import pytest

from b24app.bitrix.errors import TransportError
from tests.integration.helpers import portal_requests


def test_renamed_portal_is_followed_and_stored(b24) -> None:
    portal = b24.installed_portal()
    old_domain = portal.domain
    moved = b24.sandbox.rename_portal(portal)
    assert moved.domain != old_domain
    result = b24.services.portal_services.clients.portal(portal.member_id).call("crm.activity.badge.list")
    assert result.result == {"badges": []}
    record = b24.services.store.get(portal.member_id)
    assert record.domain == moved.domain
    assert record.client_endpoint == f"http://{moved.domain}/rest/"
    assert b24.services.store.find_by_domain(moved.domain).member_id == portal.member_id
    assert b24.services.store.find_by_domain(old_domain) is None
    before = portal_requests(b24.sandbox, portal.member_id).get("crm.activity.badge.list", 0)
    b24.services.portal_services.clients.portal(portal.member_id).call("crm.activity.badge.list")
    assert portal_requests(b24.sandbox, portal.member_id)["crm.activity.badge.list"] == before + 1, \
        "later calls go straight to the new address"


def test_redirect_the_oauth_server_does_not_confirm_is_refused(b24) -> None:
    portal, stranger = b24.installed_portal(), b24.installed_portal()
    record = b24.services.store.get(portal.member_id)
    client = b24.services.portal_services.clients.portal(portal.member_id)
    # As if the portal answered 302 to another portal's address: the OAuth server names the real one.
    with pytest.raises(TransportError) as err:
        client._follow_rename(record, f"http://{stranger.domain}/rest/profile", "profile")
    assert err.value.code == "BAD_REDIRECT"
    assert b24.services.store.get(portal.member_id).domain == portal.domain
