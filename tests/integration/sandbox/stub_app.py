"""A minimal app on 127.0.0.1 that records every request the sandbox portal sends it.

It stands in for the real app in the sandbox's own tests: installer and iframe POSTs, event POSTs
and OAuth callbacks are recorded with their query and flat form, and hooks let a test react
(e.g. call event.bind from the installer page, like a real installer does).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server


@dataclass
class Received:
    path: str
    method: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class AppStub:
    """Records requests; `hooks[path](received) -> (status, body) | None` customises answers."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.hooks: dict[str, Callable[[Received], Any]] = {}
        self._lock = threading.Lock()
        app = Flask("sandbox-test-app")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
        @app.route("/<path:path>", methods=["GET", "POST"])
        def catch_all(path: str) -> Response:
            item = Received("/" + path, request.method, dict(request.args.items()),
                            dict(request.form.items()), dict(request.headers.items()))
            with self._lock:
                self.received.append(item)
            hook = self.hooks.get(item.path)
            if hook is not None:
                answer = hook(item)
                if answer is not None:
                    status, body = answer
                    return Response(body, status)
            return Response("<html><body>ok</body></html>", 200, content_type="text/html")

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
