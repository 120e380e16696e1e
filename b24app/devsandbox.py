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
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import REPO_ROOT, SANDBOX_APP
from .sandbox.launcher import SandboxServer, start_sandbox
from .sandbox.models import Portal

DEFAULT_APP_PORT = 8000
SANDBOX_STATE = "sandbox-state.json"  # the sandbox's portals, installs, tokens... (b24app/sandbox/persist.py)


def state_path(data_dir: Path) -> Path:
    """Where the sandbox of this data dir keeps its state across restarts."""
    return data_dir / SANDBOX_STATE


def free_port(preferred: int = 0, *, taken: tuple[int, ...] = ()) -> int:
    """`preferred` if it is free on 127.0.0.1, else any free port.

    SO_REUSEADDR as the servers themselves bind: a port our last run left in TIME_WAIT counts as free,
    so a restart keeps its address instead of wandering off for a minute.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if not preferred or preferred in taken:
                raise OSError
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class SandboxApp:
    """The app as the sandbox knows it: credentials and the two addresses, the same on every run."""

    client_id: str
    client_secret: str
    app_port: int
    oauth_port: int

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"


def sandbox_app(data_dir: Path, app_port: int | None = None) -> SandboxApp:
    """The sandbox app of this data dir (config.SANDBOX_APP), created on first use.

    The ports of the last run are taken again when free (`app_port`, e.g. from PORT, wins), so bookmarks
    and open tabs keep working across restarts; the file is what `config` reads to wire the CLI.
    """
    path = data_dir / SANDBOX_APP
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    stored = stored if isinstance(stored, dict) else {}
    client_id = str(stored.get("client_id") or f"local.{secrets.token_hex(7)}.{secrets.randbelow(10**8):08d}")
    client_secret = str(stored.get("client_secret") or secrets.token_urlsafe(36)[:50])
    chosen_app = app_port or free_port(_port(stored.get("app_port"), DEFAULT_APP_PORT))
    chosen_oauth = free_port(_port(stored.get("oauth_port"), chosen_app + 1), taken=(chosen_app,))
    wired = SandboxApp(client_id, client_secret, chosen_app, chosen_oauth)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(wired), handle)
    return wired


def _port(value: object, default: int) -> int:
    return value if isinstance(value, int) and 0 < value < 65536 else default


def start(app_url: str, client_id: str, client_secret: str, oauth_port: int = 0,
          state: Path | None = None) -> tuple[SandboxServer, Portal]:
    """Start the sandbox with the app registered and one demo portal to install it into.

    With `state` the sandbox comes back as it was (portals on their old addresses, installs, tokens...) and
    keeps that file up to date; the demo portal is created only when the state has no portal."""
    server = start_sandbox(oauth_port, state_path=state)
    sb = server.sandbox
    with sb.lock:
        card = sb.apps.get(client_id)
        if card is not None:  # kept from the last run: the same client id, today's secret and address
            card.client_secret, card.app_url = client_secret, app_url.rstrip("/")
            sb.apps = {client_id: card, **{k: v for k, v in sb.apps.items() if k != client_id}}  # the default app
    if card is None:
        sb.register_app(client_id, client_secret, app_url=app_url)
        sb.apps = {client_id: sb.apps[client_id], **{k: v for k, v in sb.apps.items() if k != client_id}}
    portals = list(sb.portals.values())
    portal = next((p for p in portals if p.name == "demo"), portals[0] if portals else None)
    return server, portal or sb.create_portal(name="demo")


def banner(app_url: str, oauth_url: str, portal_url: str) -> str:
    return (f"\n  Activity Badges ({app_url}) is wired to the sandbox portal (no Bitrix24 account needed).\n"
            f"  Open {portal_url}/ and click Install (you are Alice, a portal administrator).\n"
            f"  Sandbox overview and control API: {oauth_url}/\n")


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox until SIGTERM/SIGINT; print one JSON line with its addresses first."""
    parser = argparse.ArgumentParser(description="Run the sandbox portal for the app at --app-url")
    parser.add_argument("--app-url", required=True)
    parser.add_argument("--oauth-port", type=int, default=0)
    parser.add_argument("--state", default=None,
                        help=f"the sandbox's state file [default: B24_DATA_DIR/{SANDBOX_STATE}]; '' keeps no state")
    args = parser.parse_args(argv)
    client_id, client_secret = os.environ["B24_CLIENT_ID"], os.environ["B24_CLIENT_SECRET"]
    state = Path(args.state) if args.state else None
    if args.state is None:
        state = state_path(Path(os.environ.get("B24_DATA_DIR") or REPO_ROOT / "var"))
    server, portal = start(args.app_url, client_id, client_secret, args.oauth_port, state)
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
