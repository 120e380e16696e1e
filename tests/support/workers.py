"""Code that runs in child processes of multi-process tests (spawned, so importable by name)."""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from b24app.config import load_config
from b24app.container import build_services
from b24app.errors import RefreshBusy
from b24app.storage.connection import connect


def _services(environ: dict[str, str]):
    config = load_config(environ)
    return build_services(config, connect(config.redis_url or ""))


def _portal_services(environ: dict[str, str]):
    return _services(environ).portal_services


def call_many(environ: dict[str, str], member_ids: Sequence[str], threads: int, calls_per_thread: int,
              method: str = "profile") -> dict[str, Any]:
    """`threads` threads each calling `method` on the given portals; returns successes and errors.

    A call answered RefreshBusy (503 with Retry-After: the portal's refresh is in flight and this process
    already has its share of threads waiting for it) is tried again shortly, as a client would; the
    number of such answers is reported as `busy`."""
    clients = _portal_services(environ).clients
    results: dict[str, Any] = {"ok": 0, "busy": 0, "errors": []}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def run(index: int) -> None:
        barrier.wait()
        for n in range(calls_per_thread):
            member_id = member_ids[(index * calls_per_thread + n) % len(member_ids)]
            for _attempt in range(50):
                try:
                    clients.portal(member_id).call(method)
                    with lock:
                        results["ok"] += 1
                    break
                except RefreshBusy:
                    with lock:
                        results["busy"] += 1
                    time.sleep(0.2)
                except Exception as exc:  # reported to the test, which fails on any
                    with lock:
                        results["errors"].append(f"{type(exc).__name__}: {exc}")
                    break

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def hold_refresh_lock_forever(environ: dict[str, str], member_id: str, ready_path: str) -> None:
    """Take the portal's refresh lock the way a refresh does, signal, then hang until SIGKILLed."""
    found = _portal_services(environ)
    oauth = found.clients.oauth

    def stuck_refresh(_refresh_token: str):
        with open(ready_path, "w") as handle:
            handle.write(str(os.getpid()))
        while True:
            time.sleep(1)

    oauth.refresh = stuck_refresh  # the OAuth request never leaves this process
    record = found.tokens.require(member_id)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    found.tokens.refresh(member_id, record.access_token)


def import_badges(environ: dict[str, str], member_id: str, prefix: str, imported: int, single: int) -> dict[str, Any]:
    """One process of an import: `imported` badges through the import use case, `single` one by one."""
    services = _services(environ)
    services_badges = services.badges
    portal = services.portal_services.clients.portal(member_id)
    items = [{"code": f"{prefix}{i}", "title": f"Item {i}", "value": str(i), "type": "primary"}
             for i in range(imported)]
    results = services_badges.import_many(portal, items)
    errors = [r for r in results if not r["ok"]]
    created = sum(1 for r in results if r["ok"])
    for i in range(single):
        badge = services_badges.validate({"code": f"{prefix}s{i}", "title": "t", "value": "v", "type": "success"})
        try:
            services_badges.create(portal, badge)
            created += 1
        except Exception as exc:  # reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"created": created, "errors": errors}
