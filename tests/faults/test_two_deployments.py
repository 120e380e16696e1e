"""Two deployments of the app, as on two hosts, sharing one 3-master Redis Cluster (docs/DESIGN.md §9).

Two gunicorn masters with their own ports and metrics directories, the same secret key, token keys and
cluster. A refresh storm driven through both at once refreshes every portal exactly once and loses none;
one portal's rate budget holds across both (the portal itself never has to refuse a request).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from b24app.portals.sessions import SessionSigner
from b24app.sandbox.launcher import SandboxServer, start_sandbox
from b24app.storage.connection import connect
from b24app.storage.crypto import TokenCipher
from b24app.storage.installations import Installation, PortalState, RedisInstallationStore
from tests.support.processes import Served, clean_env, free_port, gunicorn

pytestmark = pytest.mark.slow


class Twins:
    def __init__(self, sandbox: SandboxServer, env: dict[str, str], apps: list[Served]) -> None:
        self.sandbox = sandbox
        self.env = env
        self.apps = apps

    def store(self) -> RedisInstallationStore:
        return RedisInstallationStore(connect(self.env["REDIS_URL"]),
                                      TokenCipher(tuple(self.env["B24_TOKEN_KEYS"].split(","))))

    def session(self, member_id: str, domain: str) -> str:
        return SessionSigner(self.env["B24_SECRET_KEY"], audience=self.env["B24_CLIENT_ID"]).issue(
            member_id, 1, True, domain)


@pytest.fixture
def twins(redis_cluster: Any, cluster_client: Any, tmp_path: Path) -> Iterator[Twins]:
    client_id, client_secret = f"app.twins.{secrets.token_hex(4)}", secrets.token_urlsafe(32)
    with start_sandbox() as sandbox:
        env = clean_env(B24_ENV="production", B24_CLIENT_ID=client_id, B24_CLIENT_SECRET=client_secret,
                        B24_OAUTH_URL=sandbox.oauth_url, B24_ALLOW_HTTP="1", B24_SECRET_KEY=secrets.token_hex(24),
                        B24_TOKEN_KEYS=Fernet.generate_key().decode(), REDIS_URL=redis_cluster.url,
                        B24_RATE="2/10")
        ports = [free_port(), free_port()]
        env["B24_APP_URL"] = f"http://127.0.0.1:{ports[0]}"
        sandbox.register_app(client_id, client_secret, app_url=env["B24_APP_URL"])
        with gunicorn(env, tmp_path / "a.log", workers=2, threads=8, port=ports[0]) as first, \
                gunicorn(env, tmp_path / "b.log", workers=2, threads=8, port=ports[1]) as second:
            yield Twins(sandbox, env, [first, second])


def _seed(twins: Twins, count: int) -> list[Any]:
    store = twins.store()
    sandbox, client_id = twins.sandbox.sandbox, twins.env["B24_CLIENT_ID"]
    portals = []
    for _ in range(count):
        portal = twins.sandbox.create_portal(rate=None, deals=0)
        with sandbox.lock:
            sandbox.lifecycle.begin_install(portal, sandbox.app(client_id), 1)
            portal.installations[client_id].installed = True
        chain = twins.sandbox.issue_tokens(portal)
        store.activate(Installation(member_id=portal.member_id, domain=portal.domain,
                                    client_endpoint=chain["client_endpoint"], owner_user_id=1,
                                    access_token=chain["access_token"], refresh_token=chain["refresh_token"],
                                    expires_at=float(chain["expires"])))
        portals.append(portal)
    return portals


def test_a_storm_through_both_deployments_refreshes_each_portal_once(twins: Twins) -> None:
    portals = _seed(twins, 120)
    twins.sandbox.sandbox.clock.advance(3601)
    failures: list[str] = []
    lock = threading.Lock()

    def caller(app: Served, share: list[Any]) -> None:
        http = requests.Session()
        for portal in share:
            token = twins.session(portal.member_id, portal.domain)
            for _attempt in range(30):
                response = http.get(f"{app.url}/api/v1/badges", headers={"Authorization": f"Bearer {token}"},
                                    timeout=60)
                if response.status_code != 503:
                    break
                time.sleep(float(response.headers.get("Retry-After", "1")) / 4)
            if response.status_code != 200:
                with lock:
                    failures.append(f"{response.status_code} {response.text[:100]}")

    threads = [threading.Thread(target=caller, args=(app, portals[i % 8::8]))
               for app in twins.apps for i in range(8)]  # each portal is asked through both at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert failures == []
    counts = twins.sandbox.sandbox.counters.snapshot()["portals"]
    assert sorted({counts[p.member_id]["oauth"]["refresh_ok"] for p in portals}) == [1], "exactly one refresh each"
    assert sum(counts[p.member_id]["oauth"]["refresh_failed"] for p in portals) == 0
    store = twins.store()
    assert all(store.get(p.member_id).state == PortalState.ACTIVE for p in portals), "no portal lost"


def test_one_portals_budget_holds_across_both_deployments(twins: Twins) -> None:
    (portal,) = _seed(twins, 1)
    twins.sandbox.set_rate(portal, (2, 10))
    created: list[int] = []
    lock = threading.Lock()

    def writer(app: Served, number: int) -> None:
        token = twins.session(portal.member_id, portal.domain)
        body = {"code": f"b{number}", "title": "t", "value": "v", "type": "success"}
        for _attempt in range(60):
            response = requests.post(f"{app.url}/api/v1/badges", json=body, timeout=60,
                                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{number}"})
            if response.status_code != 503:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        with lock:
            created.append(response.status_code)

    threads = [threading.Thread(target=writer, args=(twins.apps[n % 2], n)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert created == [201] * 24
    counters = twins.sandbox.sandbox.counters.portal(portal.member_id)
    assert counters["rate_limited"] == 0, "the portal never had to refuse: both deployments shared one budget"
    assert len(portal.badges) == 24
