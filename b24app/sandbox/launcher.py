"""`start_sandbox()`: bind the OAuth server and get ready to serve portals on 127.0.0.1."""
from __future__ import annotations

import logging
import resource
from pathlib import Path
from types import TracebackType
from typing import Any

from .oauth_server import create_oauth_app
from .persist import StateFile
from .portal_app import create_portal_app
from .sandbox import Sandbox
from .server import HttpServer

log = logging.getLogger("b24app.sandbox")


class SandboxServer:
    """A running sandbox: `.sandbox` (the Python API), `.oauth_url`, `.control_url`, `.stop()`."""

    def __init__(self, sandbox: Sandbox, http: HttpServer, oauth_port: int,
                 state_file: StateFile | None = None) -> None:
        self.sandbox = sandbox
        self._http = http
        self.oauth_port = oauth_port
        self.state_file = state_file
        self.restored = False  # True when the state came from the state file

    @property
    def oauth_url(self) -> str:
        """`http://127.0.0.1:P0`: B24_OAUTH_URL for the app."""
        return self.sandbox.oauth_url

    @property
    def server_endpoint(self) -> str:
        """`http://127.0.0.1:P0/rest/` (SERVER_ENDPOINT in posts and events)."""
        return self.sandbox.server_endpoint

    @property
    def control_url(self) -> str:
        """Base URL of the JSON control API."""
        return f"{self.sandbox.oauth_url}/_sandbox"

    def stop(self) -> None:
        """Close every port; held (timeout-fault) connections are released; the state file is written."""
        self.sandbox.stopping.set()
        self._http.stop()
        if self.state_file is not None:
            self.state_file.stop()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __getattr__(self, name: str) -> Any:
        """Convenience: `server.create_portal(...)` is `server.sandbox.create_portal(...)`."""
        return getattr(self.sandbox, name)


def _raise_fd_limit() -> None:
    """~1,000 portals need ~1,000 listening sockets plus connections: lift the soft fd limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        log.debug("could not raise RLIMIT_NOFILE", exc_info=True)


def start_sandbox(oauth_port: int = 0, *, host: str = "127.0.0.1", max_workers: int = 512,
                  event_timeout: float = 10.0, portless_domains: bool = False,
                  state_path: str | Path | None = None, save_interval: float = 1.0) -> SandboxServer:
    """Start the sandbox: the OAuth server (and control API) on `oauth_port` (ephemeral by default).

    Portals get their own ports as they are created. With `portless_domains` each portal gets a
    loopback address of its own (127.x.y.z) on port 80 instead, so its DOMAIN carries no port, as real
    domains do; that needs the right to listen on port 80. Use as a context manager or call `.stop()`.

    With `state_path` the sandbox starts from the state saved there (apps, portals on their old
    addresses, tokens...; see persist.py) and keeps the file up to date: at most every `save_interval`
    seconds while something changes, and when it stops.
    """
    _raise_fd_limit()
    sandbox = Sandbox(event_timeout=event_timeout)
    http = HttpServer(host, max_workers=max_workers)
    try:
        port = http.listen(create_oauth_app(sandbox), oauth_port)
        portal_app = create_portal_app(sandbox)

        def open_address(address: str, wanted: int) -> int:
            return http.listen(portal_app, wanted, address)

        def close_address(address: str, bound: int) -> None:
            http.close_port(bound, address)

        sandbox.attach(f"http://{host}:{port}", open_address, close_address, portless_domains=portless_domains)
        state_file = StateFile(sandbox, Path(state_path), save_interval) if state_path else None
        restored = state_file.load() if state_file is not None else False
    except Exception:
        http.stop()
        raise
    server = SandboxServer(sandbox, http, port, state_file)
    server.restored = restored
    if state_file is not None:
        state_file.start()
    return server
