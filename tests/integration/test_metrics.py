"""GET /metrics: Prometheus text, bounded labels, summed over gunicorn workers."""
from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from b24app.bitrix.errors import OTHER, outcome_label
from b24app.bitrix.limiter import RateLimiter, RateLimitTimeout
from b24app.observability import metrics
from b24app.storage.badge_cache import QUIET
from tests.conftest import TEST_REDIS_URL
from tests.integration.api import session_for
from tests.support.processes import clean_env, gunicorn

SEED = {"code": "metricsBadge", "title": "Metrics", "value": "On", "type": "success"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of an exposition text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url_or_client) -> str:
    if isinstance(url_or_client, str):
        response = requests.get(f"{url_or_client}/metrics", timeout=10)
        body = response.text
    else:
        response = url_or_client.get("/metrics")
        body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return body


def test_metrics_endpoint_serves_prometheus_text(client) -> None:
    client.get("/healthz")
    text = scrape(client)
    assert "# TYPE b24_http_requests_total counter" in text
    assert "# TYPE b24_http_request_duration_seconds histogram" in text
    assert value(text, "b24_http_requests_total", route="/healthz", method="GET", status="200") >= 1


def test_routes_are_url_rules_never_raw_paths(client) -> None:
    before = scrape(client)
    client.get("/api/v1/badges/someCode123", headers={"Authorization": "Bearer forged"})
    client.get("/no/such/page/987654")
    after = scrape(client)
    route = "/api/v1/badges/<raw_code>"
    assert value(after, "b24_http_requests_total", route=route, method="GET", status="401") == \
        value(before, "b24_http_requests_total", route=route, method="GET", status="401") + 1
    assert value(after, "b24_http_requests_total", route="<unmatched>", method="GET", status="404") >= 1
    assert "someCode123" not in after and "987654" not in after
    assert value(after, "b24_http_request_duration_seconds_count", route=route, method="GET", status="401") >= 1


def test_portal_calls_refreshes_and_cache_are_counted_without_ids(b24) -> None:
    portal = b24.installed_portal()
    api = session_for(b24, portal)
    http = b24.client()
    before = scrape(http)
    assert api.post("/badges", json=SEED).status_code == 201
    b24.services.jobs.wait()  # the robot's registration reads the new list (a miss)
    assert api.post("/badges", json=SEED).status_code == 409  # a refused write drops the cached list too
    time.sleep(QUIET)  # a list read within a write's quiet second is not kept (storage/badge_cache.py)
    assert api.get("/badges").headers["X-Cache"] == "miss"
    assert api.get("/badges").headers["X-Cache"] == "hit"
    b24.sandbox.expire_tokens(portal)
    assert api.get("/badges/metricsBadge").status_code == 200  # 401 expired_token → one refresh → retried
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("b24_portal_calls_total", method="crm.activity.badge.add", outcome="ok") == 1
    assert delta("b24_portal_calls_total", method="crm.activity.badge.add", outcome="BX_INVALID_VALUE") == 1
    assert delta("b24_portal_calls_total", method="crm.activity.badge.list", outcome="ok") == 2
    assert delta("b24_portal_calls_total", method="crm.activity.badge.get", outcome="ok") == 1
    assert delta("b24_portal_call_duration_seconds_count", method="crm.activity.badge.add") == 2
    assert delta("b24_token_refreshes_total", outcome="ok") == 1
    assert delta("b24_badge_list_cache_total", result="miss") == 2
    assert delta("b24_badge_list_cache_total", result="hit") == 1
    assert delta("b24_portal_calls_total", method="bizproc.robot.update", outcome="ok") == 1
    assert delta("b24_http_requests_total", route="/api/v1/badges", method="POST", status="201") == 1
    assert delta("b24_http_requests_total", route="/api/v1/badges", method="POST", status="409") == 1
    assert delta("b24_limiter_acquires_total", outcome="immediate") >= 4
    record = b24.services.store.get(portal.member_id)
    session_token = api.headers["Authorization"].removeprefix("Bearer ")
    for secret in (portal.member_id, portal.domain, record.access_token, record.refresh_token, session_token):
        assert secret not in after


def test_limiter_waits_and_timeouts_are_counted(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, rps=50, burst=2)
    before = metrics.render().decode()
    for _ in range(3):  # capacity 1 (burst - 1): the 2nd and 3rd wait ~20 ms each
        limiter.acquire("metrics-limiter")
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("metrics-limiter", max_wait=0)
    after = metrics.render().decode()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("b24_limiter_acquires_total", outcome="immediate") == 1
    assert delta("b24_limiter_acquires_total", outcome="waited") == 2
    assert delta("b24_limiter_acquires_total", outcome="timeout") == 1
    assert delta("b24_limiter_wait_seconds_count", limit="rate") == 2
    assert 0.02 <= delta("b24_limiter_wait_seconds_sum", limit="rate") < 1.0


def test_label_values_are_bounded() -> None:
    assert outcome_label("ok") == "ok"
    assert outcome_label("QUERY_LIMIT_EXCEEDED") == "QUERY_LIMIT_EXCEEDED"
    assert outcome_label("expired_token") == "expired_token"
    assert outcome_label("HTTP_502") == "HTTP_502"
    assert outcome_label("ReadTimeout") == "ReadTimeout"
    assert outcome_label("SOMETHING_A_PORTAL_MADE_UP_1234") == OTHER
    assert outcome_label("") == OTHER
    assert metrics.method_label("crm.activity.badge.add") == "crm.activity.badge.add"
    assert metrics.method_label("x\ny{}") == "other"


@pytest.mark.slow
def test_gunicorn_workers_are_summed(tmp_path: Path) -> None:
    """Three workers, traffic spread over them, one of them killed: /metrics shows every request."""
    metrics_dir = tmp_path / "prom"
    env = clean_env(B24_ENV="development", B24_CLIENT_ID="app.metrics.1", B24_CLIENT_SECRET="s" * 30,
                    B24_APP_URL="http://127.0.0.1:9", B24_SECRET_KEY="k" * 40,
                    B24_TOKEN_KEYS=Fernet.generate_key().decode(), B24_ALLOW_HTTP="1", REDIS_URL=TEST_REDIS_URL,
                    PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")  # a previous run's file: the master must clean it
    with gunicorn(env, tmp_path / "gunicorn.log", workers=3, threads=2) as served:
        assert not (metrics_dir / "counter_1.db").exists()

        def hit(_: int) -> int:
            return requests.get(f"{served.url}/healthz", headers={"Connection": "close"}, timeout=10).status_code

        sent = value(scrape(served.url), "b24_http_requests_total", route="/healthz", method="GET", status="200")
        deadline = time.monotonic() + 30
        with ThreadPoolExecutor(12) as pool:
            while len(_worker_files(metrics_dir)) < 3 and time.monotonic() < deadline:
                assert set(pool.map(hit, range(60))) == {200}
                sent += 60
        writers = _worker_files(metrics_dir)
        assert len(writers) == 3, f"traffic reached only workers {writers}"
        total = value(scrape(served.url), "b24_http_requests_total", route="/healthz", method="GET", status="200")
        assert total == sent, "every worker's requests are in the sum, whichever worker answers /metrics"

        victim = writers[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{served.url}/healthz", timeout=2).ok:
                    sent += 1
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        text = scrape(served.url)
        assert value(text, "b24_http_requests_total", route="/healthz", method="GET", status="200") == sent, \
            "a dead worker's requests still count"
        assert re.search(r'b24_http_requests_total\{[^}]*route="/metrics"', text)


def _worker_files(directory: Path) -> list[int]:
    return sorted({int(m.group(1)) for f in directory.glob("counter_*.db")
                   if (m := re.fullmatch(r"counter_(\d+)\.db", f.name))})
