"""The sandbox portal as the embedded default Bitrix24 for development.

`make run` without `B24_CLIENT_ID` runs `python -m b24app.devsandbox` beside gunicorn, and
`flask --app app b24 sandbox` runs both in one process: the app is configured with the sandbox's
client id/secret and OAuth URL, and a portal page is printed where one click installs the app.
This is the only app module that imports the sandbox (which itself imports nothing of the app).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path

from .sandbox.launcher import SandboxServer, start_sandbox
from .sandbox.models import Portal


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free on 127.0.0.1, else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def credentials(data_dir: Path) -> tuple[str, str]:
    """The sandbox app's client id and secret, kept in the data dir so restarts keep them."""
    path = data_dir / "sandbox-app.json"
    try:
        stored = json.loads(path.read_text())
        return str(stored["client_id"]), str(stored["client_secret"])
    except (OSError, ValueError, KeyError):
        pass
    client_id = f"local.{secrets.token_hex(7)}.{secrets.randbelow(10**8):08d}"
    client_secret = secrets.token_urlsafe(36)[:50]
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"client_id": client_id, "client_secret": client_secret}, handle)
    return client_id, client_secret


def app_environ(client_id: str, client_secret: str, app_url: str, oauth_port: int) -> dict[str, str]:
    """The variables that point the app at the sandbox."""
    return {"B24_CLIENT_ID": client_id, "B24_CLIENT_SECRET": client_secret, "B24_APP_URL": app_url,
            "B24_OAUTH_URL": f"http://127.0.0.1:{oauth_port}", "B24_ALLOW_HTTP": "1"}


def start(app_url: str, client_id: str, client_secret: str, oauth_port: int = 0) -> tuple[SandboxServer, Portal]:
    """Start the sandbox with the app registered and one demo portal to install it into."""
    server = start_sandbox(oauth_port)
    server.sandbox.register_app(client_id, client_secret, app_url=app_url)
    return server, server.sandbox.create_portal(name="demo")


def banner(app_url: str, oauth_url: str, portal_url: str) -> str:
    return (f"\n  Activity Badges ({app_url}) is wired to the sandbox portal (no Bitrix24 account needed).\n"
            f"  Open {portal_url}/ and click Install (you are Alice, a portal administrator).\n"
            f"  Sandbox overview and control API: {oauth_url}/\n")


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox until SIGTERM/SIGINT; print one JSON line with its addresses first."""
    parser = argparse.ArgumentParser(description="Run the sandbox portal for the app at --app-url")
    parser.add_argument("--app-url", required=True)
    parser.add_argument("--oauth-port", type=int, default=0)
    args = parser.parse_args(argv)
    client_id, client_secret = os.environ["B24_CLIENT_ID"], os.environ["B24_CLIENT_SECRET"]
    server, portal = start(args.app_url, client_id, client_secret, args.oauth_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"oauth_url": server.oauth_url, "portal_url": portal.base_url}), flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
