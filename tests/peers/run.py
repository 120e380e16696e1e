"""`make peers`: real Bitrix24 client libraries against the sandbox.

This driver runs in the project's venv and imports only `b24app.sandbox`. It starts the sandbox,
registers an app, gives each library its own portal (app installed, a webhook, a fresh OAuth token
chain), puts TLS in front of the OAuth server and of b24pysdk's portal (that SDK only speaks https),
then runs `tests/peers/clients.py` with the private venv's python, where the libraries live. It
prints one PASS/FAIL line per check and exits 1 if any check fails (2 if it could not run).

    .venv/bin/python -m tests.peers.run [--python .peers-venv/bin/python] [--only b24pysdk]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from b24app.sandbox import Sandbox, start_sandbox
from tests.peers.tls import TlsTerminator, make_certificates, server_context

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LIBRARIES = ("fast_bitrix24", "b24pysdk")
CLIENT_TIMEOUT = 180.0
# b24pysdk's own live badge test creates 36-character codes, so its portal is one without the newer core's
# 30-character cap (docs/bitrix24-protocol.md §5.1); fast_bitrix24's portal keeps the default and checks the cap.
PORTAL_SETTINGS: dict[str, dict[str, Any]] = {"b24pysdk": {"badge_code_limit": None}}


class _AppStub(BaseHTTPRequestHandler):
    """The app's install URL: answers 200 to the installer POST, like an app that accepts it."""

    def _ok(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def do_GET(self) -> None:
        self._ok()

    def do_POST(self) -> None:
        self._ok()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def app_stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppStub)
    thread = threading.Thread(target=server.serve_forever, name="app-stub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def set_up_portal(sb: Sandbox, lib: str) -> dict[str, Any]:
    """A portal with the app installed (installer POST + installFinish), a webhook and a token chain."""
    portal = sb.create_portal(name=f"peers-{lib}", settings=PORTAL_SETTINGS.get(lib))
    sb.install(portal)
    sb.install_finish(portal)
    hook = sb.create_webhook(portal)
    return {"member_id": portal.member_id, "domain": portal.domain, "client_endpoint": portal.client_endpoint,
            "address": [portal.host, portal.port],
            "webhook_url": hook["url"], "webhook_token": f"{hook['user_id']}/{hook['code']}",
            "tokens": sb.issue_tokens(portal),
            "time_zone": portal.settings.time_zone}


def print_result(record: dict[str, Any], width: int) -> None:
    verdict = "PASS" if record["ok"] else "FAIL"
    seconds = f"{record.get('seconds', 0):6.2f} s"
    print(f"{verdict}  {record['lib']:<13}  {record['check']:<{width}}  {seconds}  {record['detail']}", flush=True)


def run_clients(python: str, cfg: dict[str, Any], ca_path: Path) -> tuple[list[dict[str, Any]], int, str]:
    """Run clients.py in the private venv; stream its JSON lines as PASS/FAIL lines.

    `REQUESTS_CA_BUNDLE` is how `requests` (b24pysdk's HTTP client) is told to trust the test CA;
    `NO_PROXY` keeps a developer's proxy settings away from 127.0.0.1.
    """
    local = "127.0.0.1,localhost"
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(ca_path), "NO_PROXY": local, "no_proxy": local,
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryFile(mode="w+") as stderr:
        proc = subprocess.Popen([python, str(HERE / "clients.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, env=env, cwd=tempfile.gettempdir())
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(cfg))
        proc.stdin.close()
        timer = threading.Timer(CLIENT_TIMEOUT, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                try:
                    record = json.loads(line)
                except ValueError:
                    print(f"      {line.rstrip()}")
                    continue
                if "versions" in record:
                    print("peers: " + ", ".join(f"{k}=={v}" for k, v in record["versions"].items()), flush=True)
                    continue
                results.append(record)
                print_result(record, 70)
            code = proc.wait()
        finally:
            timer.cancel()
        stderr.seek(0)
        return results, code, stderr.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=str(ROOT / ".peers-venv" / "bin" / "python"),
                        help="python of the private venv holding the client libraries")
    parser.add_argument("--only", choices=LIBRARIES, action="append", help="run one library's checks")
    args = parser.parse_args()
    python = os.path.abspath(args.python)  # not resolve(): the venv's python is a symlink out of the venv
    if not Path(python).exists():
        print(f"peers: {python} not found; `make peers` creates the private venv", file=sys.stderr)
        return 2
    started = time.perf_counter()
    libraries = list(args.only or LIBRARIES)
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp, app_stub() as app_url, start_sandbox() as server:
        sb = server.sandbox
        card = sb.register_app(app_url=app_url)
        portals = {lib: set_up_portal(sb, lib) for lib in libraries}
        ca_path, cert_path, key_path = make_certificates(Path(tmp))
        context = server_context(cert_path, key_path)
        terminators = [TlsTerminator(("127.0.0.1", server.oauth_port), context)]
        if "b24pysdk" in portals:
            host, port = portals["b24pysdk"]["address"]
            portal_tls = TlsTerminator((host, port), context)
            portals["b24pysdk"]["tls_domain"] = portal_tls.domain
            terminators.append(portal_tls)
        cfg = {"libraries": libraries, "control_url": server.control_url, "oauth_url": server.oauth_url,
               "oauth_tls_url": terminators[0].url, "client_id": card.client_id,
               "client_secret": card.client_secret, "portals": portals}
        print(f"peers: sandbox {server.oauth_url}; TLS " +
              ", ".join(f"{t.url} → {t.upstream_url}" for t in terminators), flush=True)
        try:
            results, code, stderr = run_clients(python, cfg, ca_path)
        finally:
            for terminator in terminators:
                terminator.stop()
        print("peers: REST requests per portal: " + ", ".join(
            f"{lib} {load['requests_total']} ({load['rate_limited']} answered 503)"
            for lib, load in ((lib, sb.counters.portal(p["member_id"])) for lib, p in portals.items())), flush=True)
    failed = [r for r in results if not r["ok"]]
    elapsed = time.perf_counter() - started
    if code not in (0, 1) or not results:
        print(f"peers: clients.py exited with {code}; its stderr:\n{stderr[-4000:]}", file=sys.stderr)
        return 2
    print(f"peers: {len(results) - len(failed)} passed, {len(failed)} failed in {elapsed:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
