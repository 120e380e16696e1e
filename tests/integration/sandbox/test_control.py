"""The HTTP control API mirrors the Python API, so tests in other processes can drive the sandbox.

Each step checks a fact of docs/bitrix24-protocol.md through it: install/ONAPPINSTALL (§1.4), clock and expiry (§2.3),
faults (§3.3), counters (§4), rename (§3.1).
"""
from __future__ import annotations

import requests

from b24app.sandbox import SandboxServer


def test_drive_everything_over_http(server: SandboxServer, stub) -> None:
    """§1.1, §2.3, §3.1, §3.3: a full scenario using only `/_sandbox/...`."""
    api = server.control_url
    with requests.Session() as http:
        app = http.post(api + "/apps", json={"app_url": stub.url, "scope": "crm,placement,user_brief"}, timeout=10)
        assert app.status_code == 201
        client_id = app.json()["client_id"]
        assert client_id.startswith("app.") and len(app.json()["client_secret"]) == 50
        portal = http.post(api + "/portals", json={"language": "de", "rate": [2, 50]}, timeout=10).json()
        member = portal["member_id"]
        assert portal["domain"].startswith("127.0.0.1:")
        assert [u["id"] for u in portal["users"]] == [1, 2, 3]

        installed = http.post(api + f"/portals/{member}/install", json={"rest_only": True, "client_id": client_id},
                              timeout=10).json()
        assert installed["status"] == 200
        tokens = http.post(api + f"/portals/{member}/tokens", json={"user_id": 3, "client_id": client_id},
                           timeout=10).json()
        endpoint = portal["client_endpoint"]
        assert http.post(endpoint + "profile", json={"auth": tokens["access_token"]}, timeout=10).ok

        http.post(api + "/clock/advance", json={"seconds": 3601}, timeout=10)
        expired = http.post(endpoint + "profile", json={"auth": tokens["access_token"]}, timeout=10)
        assert expired.json()["error"] == "expired_token"

        tokens = http.post(api + f"/portals/{member}/tokens", json={"user_id": 1, "client_id": client_id},
                           timeout=10).json()
        fault = http.post(api + "/faults", json={"portal": member, "method": "profile", "mode": "500"}, timeout=10)
        assert fault.status_code == 201
        assert http.post(endpoint + "profile", json={"auth": tokens["access_token"]}, timeout=10).status_code == 500
        counters = http.get(api + "/counters", timeout=10).json()["portals"][member]
        assert counters["method_statuses"]["profile"]["500"] == 1

        renamed = http.post(api + f"/portals/{member}/rename", json={}, timeout=10).json()
        assert renamed["client_endpoint"] != endpoint
        moved = http.post(endpoint + "profile", json={"auth": tokens["access_token"]}, allow_redirects=False,
                          timeout=10)
        assert moved.status_code == 302

        state = http.get(api + f"/portals/{member}", timeout=10).json()
        assert state["language"] == "de"
        assert state["installations"][client_id]["installed"] is True

        unknown = http.get(api + "/portals/nope", timeout=10)
        assert unknown.status_code == 404
        bad = http.post(api + f"/portals/{member}/install", json={"user_id": 2, "client_id": client_id}, timeout=10)
        assert bad.status_code == 400
        assert bad.json()["error"] == "SANDBOX_ERROR"
        assert http.delete(api + f"/portals/{member}", timeout=10).json() == {"removed": True}


def test_portal_settings_over_http(server: SandboxServer) -> None:
    """§2.3, §3.2, §5.1: `POST /portals` takes `settings`; the summary and `/portals/<ref>/settings` report them;
    unknown names and bad values are 400 SANDBOX_ERROR."""
    api = server.control_url
    with requests.Session() as http:
        created = http.post(api + "/portals", json={"settings": {"badge_code_limit": None, "time_zone": "+05:00",
                                                                 "refresh_revokes_access": False}}, timeout=10)
        assert created.status_code == 201
        expected = {"badge_code_limit": None, "time_zone": "+05:00", "refresh_revokes_access": False}
        assert created.json()["settings"] == expected
        member = created.json()["member_id"]
        assert http.get(api + f"/portals/{member}/settings", timeout=10).json() == expected
        for bad in ({"time_zone": "MSK"}, {"colour": "blue"}, {"refresh_revokes_access": "no"}):
            refused = http.post(api + f"/portals/{member}/settings", json=bad, timeout=10)
            assert (refused.status_code, refused.json()["error"]) == (400, "SANDBOX_ERROR"), bad
        assert http.post(api + "/portals", json={"settings": {"badge_code_limit": 300}}, timeout=10).status_code == 400
