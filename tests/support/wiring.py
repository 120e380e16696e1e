"""The app and the sandbox portal wired to each other over real HTTP on 127.0.0.1.

The sandbox runs in the test process (threads, real sockets); the app runs in a real werkzeug HTTP
server thread (or under gunicorn, see processes.py), so every install, event, REST call and refresh
crosses a socket exactly as in production.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from b24app import create_app
from b24app.config import Config
from b24app.container import Services
from b24app.sandbox.launcher import SandboxServer, start_sandbox
from b24app.sandbox.models import AppCard, Portal
from b24app.web.common import services as services_of
from tests.conftest import make_config

# The robots are registered again this long after a catalogue change (b24app/portals/binding.py): short,
# so that tests waiting for it stay fast; still a real delay that coalesces a burst.
ROBOTS_QUIET = 0.2


class _Slot:
    """A WSGI callable whose app is plugged in once the port (and so the app's own URL) is known."""

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@dataclass
class Stack:
    sandbox: SandboxServer
    app: Flask
    url: str
    card: AppCard
    config: Config

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def client(self):
        return self.app.test_client()

    def new_portal(self, **kwargs: Any) -> Portal:
        return self.sandbox.create_portal(**kwargs)

    def installed_portal(self, **kwargs: Any) -> Portal:
        """A portal that went through the real install: installer POST, installFinish, ONAPPINSTALL."""
        portal = self.new_portal(**kwargs)
        result = self.sandbox.install(portal)
        assert result.status == 200, (result.status, result.body[:500])
        deliveries = self.sandbox.install_finish(portal)
        assert all(d.status == 200 for d in deliveries), [(d.event, d.status) for d in deliveries]
        return portal


@contextmanager
def serve(app_factory: Callable[[str], Flask]) -> Iterator[tuple[str, Flask]]:
    """Serve the app built by `app_factory(own_url)` on a free port in a thread."""
    slot = _Slot()
    server = make_server("127.0.0.1", 0, slot, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = app_factory(url)
    slot.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, app
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def stack(**config_overrides: Any) -> Iterator[Stack]:
    with start_sandbox() as sandbox:
        holder: dict[str, Any] = {}

        def build(url: str) -> Flask:
            card = sandbox.register_app(app_url=url)
            config = make_config(B24_CLIENT_ID=card.client_id, B24_CLIENT_SECRET=card.client_secret,
                                 B24_OAUTH_URL=sandbox.oauth_url, B24_APP_URL=url, **config_overrides)
            holder.update(card=card, config=config)
            return create_app(config, configure_logs=False)

        with serve(build) as (url, app):
            services_of(app).portal_services.binder.robots_quiet = ROBOTS_QUIET
            yield Stack(sandbox=sandbox, app=app, url=url, card=holder["card"], config=holder["config"])
