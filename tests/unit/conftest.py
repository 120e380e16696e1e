"""The fast tier: no Redis, no network. A test here that opens a socket fails at once, so the tier stays
what its name says (subprocesses such as node are fine)."""
from __future__ import annotations

import socket
from typing import Any

import pytest
from flask import Flask


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_sock: socket.socket, address: Any) -> None:
        raise AssertionError(f"a unit test tried to connect to {address!r}; it belongs in tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def app() -> Flask:
    """The app built from a complete configuration; nothing connects to Redis until a request needs it (a unix
    socket is never asked whether it is a cluster)."""
    from b24app import create_app
    from tests.conftest import make_config

    return create_app(make_config(REDIS_URL="unix:///nonexistent/redis.sock"), configure_logs=False)
