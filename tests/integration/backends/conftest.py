"""The modules here must hold on a single Redis and on a 3-master Redis Cluster alike: every test in them
runs on both (`backend` in tests/conftest.py)."""
from __future__ import annotations

import pytest
import redis

from tests.conftest import Backend


@pytest.fixture
def redis_url(backend: Backend) -> str:
    return backend.url


@pytest.fixture
def redis_client(backend: Backend) -> redis.Redis:
    return backend.client
