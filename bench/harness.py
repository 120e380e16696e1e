"""What every benchmark shares: the sandbox in its own process, the app under gunicorn, sessions, stats.

`Harness` starts the sandbox (bench/sandbox_host.py) and, on demand, one or more gunicorn deployments of
the app (`gunicorn -c gunicorn.conf.py app:app`, production mode, ≥ 2 workers) wired to it over
127.0.0.1. All deployments share one Redis database and one set of keys, so a portal installed through
one is usable through another (they differ only in settings such as B24_RATE).

The benchmark owns its Redis database: it is flushed at start and at the end.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b24app.portals.sessions import SessionSigner  # noqa: E402
from b24app.storage.crypto import TokenCipher  # noqa: E402
from b24app.storage.installations import Installation, RedisInstallationStore  # noqa: E402

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
RESULTS = ROOT / "bench" / "results"
FLOOR_PATH = "/floor"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted samples."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def describe(samples_s: Sequence[float]) -> dict[str, float]:
    """median / p90 / p99 / max in milliseconds."""
    return {"n": len(samples_s), "median_ms": round(statistics.median(samples_s) * 1e3, 3),
            "p90_ms": round(percentile(samples_s, 90) * 1e3, 3), "p99_ms": round(percentile(samples_s, 99) * 1e3, 3),
            "max_ms": round(max(samples_s) * 1e3, 3)}


def spread(values: Sequence[float]) -> str:
    """Per-run figures as `median (min–max, n runs)`."""
    if not values:
        return "-"
    return f"{statistics.median(values):g} ({min(values):g}–{max(values):g}, {len(values)} runs)"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_avg": os.getloadavg()}


class SandboxProcess:
    """The sandbox in a child process; `call(op, ...)` runs an operation of bench/sandbox_host.py there."""

    def __init__(self) -> None:
        from bench import sandbox_host

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=sandbox_host.serve, args=(child,), daemon=True)
        self._process.start()
        self._lock = threading.Lock()
        if not self._conn.poll(60):
            raise RuntimeError("the sandbox process did not start")
        kind, self.oauth_url = self._conn.recv()
        assert kind == "ready"

    def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send((operation, args, kwargs))
            kind, value = self._conn.recv()
        if kind != "ok":
            raise RuntimeError(f"sandbox: {value}")
        return value

    def stop(self) -> None:
        try:
            with self._lock:
                self._conn.send(None)
        except OSError:
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


@dataclass
class App:
    """One gunicorn deployment of the app."""

    url: str
    process: subprocess.Popen
    log_path: Path
    workers: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Harness:
    redis_url: str
    results: Path
    sandbox: SandboxProcess
    app_port: int
    credentials: dict[str, str]
    secret_key: str
    token_keys: str
    apps: list[App] = field(default_factory=list)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def store(self) -> RedisInstallationStore:
        return RedisInstallationStore(self.redis, TokenCipher(tuple(self.token_keys.split(","))))

    def environ(self, **overrides: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("B24_", "PROMETHEUS_", "WEB_CONCURRENCY", "GUNICORN_")) and k != "REDIS_URL"}
        return {**base, "B24_ENV": "production", "B24_CLIENT_ID": self.credentials["client_id"],
                "B24_CLIENT_SECRET": self.credentials["client_secret"], "B24_OAUTH_URL": self.sandbox.oauth_url,
                "B24_ALLOW_HTTP": "1", "B24_SECRET_KEY": self.secret_key, "B24_TOKEN_KEYS": self.token_keys,
                "REDIS_URL": self.redis_url, **overrides}

    def start_app(self, name: str, *, workers: int = 2, threads: int = 8, port: int | None = None,
                  wsgi: str = "app:app", ready_path: str = "/readyz", **env: str) -> App:
        """gunicorn -c gunicorn.conf.py app:app with `workers` workers; waits until /readyz answers.

        `wsgi` serves another WSGI callable under the very same gunicorn configuration and environment
        (`start_floor`)."""
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        full = self.environ(**{"B24_APP_URL": f"http://127.0.0.1:{self.app_port}", "PORT": str(port),
                               "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads), **env})
        log_path = self.results / f"gunicorn-{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", wsgi],
                                       cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT)
        app = App(url, process, log_path, workers)
        self.apps.append(app)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn {name} exited: {log_path.read_text()[-2000:]}")
            try:
                if requests.get(f"{url}{ready_path}", timeout=1).ok:
                    return app
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn {name} did not become ready")
            time.sleep(0.1)

    def start_floor(self, name: str = "floor", *, workers: int = 2, threads: int = 8, **env: str) -> App:
        """The hello-world floor (bench/floor_app.py): `gunicorn -c gunicorn.conf.py bench.floor_app:app`
        with the environment an app deployment of these settings gets; its route is `FLOOR_PATH`."""
        return self.start_app(name, workers=workers, threads=threads, wsgi="bench.floor_app:app",
                              ready_path=FLOOR_PATH, **env)

    def session_token(self, member_id: str, domain: str, *, user_id: int = 1, is_admin: bool = True) -> str:
        """A UI session token exactly as the app mints it after verifying a frame (same key and audience)."""
        return SessionSigner(self.secret_key, audience=self.credentials["client_id"]).issue(
            member_id, user_id, is_admin, domain)

    def session_via_api(self, app: App, portal: dict[str, Any], user_id: int = 1) -> str:
        """A session minted the way the UI gets one: fresh frame auth → POST /api/v1/session."""
        auth = self.sandbox.call("frame_auth", portal["member_id"], user_id)
        response = requests.post(f"{app.url}/api/v1/session", timeout=30, json={
            "AUTH_ID": auth["AUTH_ID"], "member_id": portal["member_id"], "DOMAIN": portal["domain"]})
        response.raise_for_status()
        return response.json()["token"]

    def installed_portal(self, rate: tuple[float, float] | None = None) -> dict[str, Any]:
        """A portal installed through the real flow (installer POST, installFinish, ONAPPINSTALL).

        Installed with the portal's limit off, then `rate` is set (which empties its bucket), so the
        install's own binding calls do not eat into the budget a benchmark measures.
        """
        portal = self.sandbox.call("create_portal", None)
        statuses = self.sandbox.call("install", portal["member_id"])
        if any(status != 200 for status in statuses):
            raise RuntimeError(f"install answered {statuses}")
        deadline = time.monotonic() + 30
        while self.store().get(portal["member_id"]) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the installed portal never reached the store")
            time.sleep(0.05)
        time.sleep(1.0)  # the background re-binding after ONAPPINSTALL
        if rate is not None:
            self.sandbox.call("set_rate", portal["member_id"], rate)
        return portal

    def save_seeded(self, seeded: list[dict[str, Any]], store: RedisInstallationStore | None = None) -> None:
        store = store or self.store()
        for chain in seeded:
            store.activate(Installation(member_id=chain["member_id"], domain=chain["domain"],
                                        client_endpoint=chain["client_endpoint"], owner_user_id=1,
                                        scope="crm,placement,user_brief", app_version=1,
                                        access_token=chain["access_token"], refresh_token=chain["refresh_token"],
                                        expires_at=chain["expires"], token_issued_at=time.time()))

    def write(self, name: str, data: Any) -> Path:
        path = self.results / f"{name}.json"
        path.write_text(json.dumps(data, indent=2, default=str))
        return path

    def stop(self) -> None:
        for app in self.apps:
            app.stop()
        self.sandbox.stop()


@contextmanager
def harness(redis_url: str = DEFAULT_REDIS_URL, results: Path | None = None) -> Iterator[Harness]:
    """Start the sandbox process; register the app with it; flush the bench Redis DB before and after."""
    results = results or RESULTS / time.strftime("%Y%m%d-%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    client = redis.Redis.from_url(redis_url)
    if client.connection_pool.connection_kwargs.get("db", 0) == 0:
        raise SystemExit("refusing to flush Redis DB 0: give the benchmark its own database (e.g. /14)")
    client.flushdb()
    sandbox = SandboxProcess()
    app_port = free_port()
    try:
        credentials = sandbox.call("register_app", f"http://127.0.0.1:{app_port}")
        bench = Harness(redis_url=redis_url, results=results, sandbox=sandbox, app_port=app_port,
                        credentials=credentials, secret_key=os.urandom(24).hex(),
                        token_keys=Fernet.generate_key().decode())
        try:
            yield bench
        finally:
            bench.stop()
    finally:
        sandbox.stop()
        client.flushdb()
        client.close()
