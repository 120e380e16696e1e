"""Redis stopped and restarted under load (docs/DESIGN.md §9, faults).

A private redis-server with persistence (AOF, fsync always) on a free port; the app under gunicorn
(2 workers) against it and the sandbox over HTTP; client threads keep calling the API throughout.
While Redis is down every API answer is a 503 JSON error (never a 500 or a traceback) and /readyz is
503; once Redis is back on the same data directory the app recovers by itself (no restart) and the
portal's token chain is intact: no token lost, no re-authorization needed.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.faults.stack import gunicorn_stack
from tests.support.redis_servers import PrivateRedis


@pytest.mark.slow
def test_redis_down_means_503_json_and_the_app_recovers_without_a_restart(tmp_path: Path) -> None:
    store_dir = tmp_path / "redis"
    store_dir.mkdir()
    private = PrivateRedis(store_dir)
    private.start()
    try:
        with gunicorn_stack(private.url, tmp_path) as deployed:
            portal = deployed.installed_portal(rate=None)
            api = deployed.session(portal)
            assert api.post(f"{deployed.url}/api/v1/badges", timeout=30, json={
                "code": "beforeOutage", "title": "t", "value": "v", "type": "success"}).status_code == 201
            stored_before = deployed.store().get(portal.member_id)

            seen: Counter[tuple[str, int]] = Counter()
            bad: list[str] = []
            stop = threading.Event()

            def load(index: int) -> None:
                http = requests.Session()
                http.headers.update(api.headers)
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        if n % 3 == 0:
                            response = http.post(f"{deployed.url}/api/v1/badges", timeout=30, json={
                                "code": f"load{index}x{n}", "title": "t", "value": "v", "type": "primary"})
                        else:
                            response = http.get(f"{deployed.url}/api/v1/badges"
                                                + ("" if n % 3 == 1 else "/beforeOutage"), timeout=30)
                    except requests.RequestException as exc:
                        bad.append(f"no answer: {type(exc).__name__}")
                        continue
                    seen[(response.request.method, response.status_code)] += 1
                    if (response.status_code >= 500 and response.status_code != 503) or \
                            response.headers.get("Content-Type") != "application/json" or \
                            "Traceback" in response.text:
                        bad.append(f"{response.status_code} {response.text[:200]}")
                    time.sleep(0.01)

            threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            private.stop()
            time.sleep(2.0)
            down = requests.get(f"{deployed.url}/readyz", timeout=10)
            assert down.status_code == 503 and down.json()["error"] == "REDIS_UNAVAILABLE"
            during = api.get(f"{deployed.url}/api/v1/badges", timeout=30)
            assert during.status_code == 503
            assert during.json()["error"] == "SERVICE_UNAVAILABLE"
            assert during.headers.get("Retry-After")
            write = api.post(f"{deployed.url}/api/v1/badges", timeout=30,
                             json={"code": "duringOutage", "title": "t", "value": "v", "type": "success"})
            assert write.status_code == 503 and write.json()["error"] == "SERVICE_UNAVAILABLE"
            time.sleep(1.0)

            private.start()  # same port, same data directory
            deadline = time.monotonic() + 30
            while requests.get(f"{deployed.url}/readyz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover after Redis came back"
                time.sleep(0.2)
            time.sleep(1.0)
            stop.set()
            for thread in threads:
                thread.join(30)

            assert bad == [], bad[:10]
            assert seen[("GET", 503)] + seen[("POST", 503)] > 0, f"the load never saw the outage: {seen}"
            assert seen[("GET", 200)] > 0 and seen[("POST", 201)] > 0, seen
            stored_after = deployed.store().get(portal.member_id)
            assert stored_after is not None and stored_after.state == "active"
            assert stored_after.refresh_token == stored_before.refresh_token, "the token chain survived"
            after = api.post(f"{deployed.url}/api/v1/badges", timeout=30,
                             json={"code": "afterOutage", "title": "t", "value": "v", "type": "success"})
            assert after.status_code == 201, after.text
            assert {"beforeOutage", "afterOutage"} <= set(portal.badges)
            counters = deployed.sandbox.counters.portal(portal.member_id)
            assert counters["oauth"]["refresh_failed"] == 0
            assert "Traceback" not in deployed.served.output()
    finally:
        private.stop()
