"""Run the app the way production does (gunicorn, several workers) for multi-process tests."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**env: str) -> dict[str, str]:
    """The current environment without any app variable, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("B24_") and k != "REDIS_URL"}
    return {**base, **env}


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"]
_SERVING_RE = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path, workers: int = 2, threads: int = 4,
             ready_timeout: float = 30.0, port: int | None = None, *, own_port: bool = False) -> Iterator[Served]:
    """Start `gunicorn -c gunicorn.conf.py app:app` on `port` (default: a free one; with `own_port`, PORT is
    left unset and the app picks its port as `make run` does); stop it (SIGTERM) on exit."""
    full_env = {**env, "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
    if not own_port:
        full_env["PORT"] = str(port or free_port())
    with log_path.open("w") as log:
        process = subprocess.Popen(GUNICORN, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True)
    served = Served(f"http://127.0.0.1:{full_env.get('PORT', '')}", process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{served.output()}")
            announced = _SERVING_RE.search(served.output())
            if own_port and announced:
                served.url = announced.group(1)
            try:
                if served.url.rsplit(":", 1)[1] and requests.get(f"{served.url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not become healthy:\n{served.output()}")
            time.sleep(0.1)
        yield served
    finally:
        served.stop()
