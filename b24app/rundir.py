"""One server per data directory (B24_DATA_DIR): the embedded Redis, the development keys and the sandbox's
state live there, and two servers sharing them would stop each other's Redis and fight over ports.

`claim()` takes an advisory lock (flock, released by the kernel when the process dies, so a crash never
leaves it stale) and records where the holder serves; a second claim fails with one line saying where.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from .errors import StorageError

LOCK = "run.lock"
INFO = "run.json"


class AlreadyRunning(StorageError):
    """Another server holds the data directory; `str()` is the one line to show."""

    code = "ALREADY_RUNNING"


class RunClaim:
    """Held for the life of the process (forked workers share it); `announce` says where it serves."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd = fd

    def announce(self, url: str) -> None:
        (self.data_dir / INFO).write_text(json.dumps({"pid": os.getpid(), "url": url}) + "\n")


def claim(data_dir: Path) -> RunClaim:
    """Hold `data_dir` for this server; AlreadyRunning (one line: where the other one is) otherwise."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise AlreadyRunning(_already_running(data_dir)) from None
    return RunClaim(data_dir, fd)


def _already_running(data_dir: Path) -> str:
    try:
        holder = json.loads((data_dir / INFO).read_text())
        where = f" at {holder['url']} (pid {int(holder['pid'])})"
    except (OSError, ValueError, KeyError, TypeError):
        where = ""
    return (f"Activity Badges is already running from {data_dir}{where}: use that one, stop it first, "
            f"or give this one its own B24_DATA_DIR.")
