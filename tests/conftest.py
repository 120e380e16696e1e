"""Shared fixtures: a real Redis for every test that needs one, and a real Redis Cluster for those that
must hold on both.

Tests use the database named by B24_TEST_REDIS_URL (default: db 15 on the local server) and flush it
before each test, so run concurrent test sessions against different databases. The cluster (3 masters
from the stock redis-server, on free ports) is started once per session when a test asks for it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.support import chromium

TEST_REDIS_URL = os.environ.get("B24_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every tier but tests/unit needs the test Redis: without it, one line says so instead of hundreds of
    connection errors."""
    if not any("tests/unit/" not in str(item.path) for item in session.items):
        return
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        pytest.exit(f"Redis does not answer at {TEST_REDIS_URL} ({type(exc).__name__}): start one "
                    "(`redis-server --daemonize yes`) or point B24_TEST_REDIS_URL at one; `make unit` needs none.",
                    returncode=2)


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.redis_servers import RedisCluster3

    cluster = RedisCluster3(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@dataclass
class Backend:
    name: str
    url: str
    client: redis.Redis


@pytest.fixture
def cluster_client(redis_cluster: Any) -> Iterator[redis.Redis]:
    """A cluster client exactly as the app makes one (`connect` detects cluster mode), flushed around the test."""
    from b24app.storage.connection import connect

    client = connect(redis_cluster.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(params=["single", "cluster"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The test's Redis: the single one, then the 3-master cluster. A module that must hold on both
    overrides `redis_url` and `redis_client` with this one's."""
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        yield Backend("cluster", cluster.url, request.getfixturevalue("cluster_client"))
        return
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield Backend("single", TEST_REDIS_URL, client)
    client.flushdb()
    client.close()


def make_config(**overrides: object):
    """A complete configuration for tests (development mode, test Redis, throwaway keys)."""
    from cryptography.fernet import Fernet

    from b24app.config import load_config

    environ = {
        "B24_ENV": "development",
        "B24_CLIENT_ID": "app.test.1",
        "B24_CLIENT_SECRET": "test-client-secret-0123456789",
        "B24_APP_URL": "http://127.0.0.1:5000",
        "B24_SECRET_KEY": "s" * 40,
        "B24_TOKEN_KEYS": Fernet.generate_key().decode(),
        "B24_ALLOW_HTTP": "1",
        "REDIS_URL": TEST_REDIS_URL,
    }
    environ.update({key: str(value) for key, value in overrides.items()})
    return load_config(environ)


@pytest.fixture
def app(redis_client: redis.Redis):
    from b24app import create_app

    return create_app(make_config(), configure_logs=False)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def _stack_session():
    from tests.support.wiring import stack

    with stack() as running:
        yield running


@pytest.fixture
def b24(_stack_session, redis_client: redis.Redis):
    """The app (real HTTP server thread) wired to a running sandbox; Redis is flushed for each test."""
    yield _stack_session
    _stack_session.services.portal_services.binder.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run: Playwright's sync API allows one instance per thread."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(chromium.CHROMIUM), args=chromium.ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def _cluster_stack_session(redis_cluster: Any):
    from tests.support.wiring import stack

    with stack(REDIS_URL=redis_cluster.url) as running:
        yield running


@pytest.fixture(params=["single", "cluster"])
def b24_on_both(request: pytest.FixtureRequest):
    """`b24` on the single Redis, then on the 3-master cluster: for the modules that must hold on both."""
    name = "_stack_session" if request.param == "single" else "_cluster_stack_session"
    request.getfixturevalue("redis_client" if request.param == "single" else "cluster_client")
    running = request.getfixturevalue(name)
    yield running
    running.services.portal_services.binder.wait()
