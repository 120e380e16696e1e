"""The sandbox portal in its own process, driven by the benchmark through a pipe.

The sandbox must not share a GIL with the load generator or the app, so it runs alone; the benchmark
sends it `(operation, args)` and gets plain data back. The operations are the few the benchmarks need
on top of the sandbox's Python API (docs/SANDBOX.md).
"""
from __future__ import annotations

import traceback
from multiprocessing.connection import Connection
from typing import Any

from b24app.sandbox.launcher import SandboxServer, start_sandbox


def _summary(portal: Any) -> dict[str, Any]:
    return {"member_id": portal.member_id, "domain": portal.domain, "client_endpoint": portal.client_endpoint,
            "base_url": portal.base_url}


def register_app(server: SandboxServer, app_url: str) -> dict[str, str]:
    card = server.sandbox.register_app(app_url=app_url)
    return {"client_id": card.client_id, "client_secret": card.client_secret}


def create_portal(server: SandboxServer, rate: tuple[float, float] | None = (2, 50), deals: int = 5) -> dict[str, Any]:
    return _summary(server.sandbox.create_portal(rate=rate, deals=deals))


def install(server: SandboxServer, member_id: str) -> list[int]:
    """The real install: installer POST into the app's /install, then installFinish → ONAPPINSTALL."""
    result = server.sandbox.install(member_id)
    deliveries = server.sandbox.install_finish(member_id)
    return [result.status, *(d.status for d in deliveries)]


def seed_installed(server: SandboxServer, count: int, rate: tuple[float, float] | None = (2, 50)) -> list[dict]:
    """`count` portals with the app installed and one token chain each (no app traffic: for bulk setups)."""
    sb = server.sandbox
    card = sb.app()
    seeded = []
    for _ in range(count):
        portal = sb.create_portal(rate=rate, deals=0)
        with sb.lock:
            sb.lifecycle.begin_install(portal, card, 1)
            portal.installations[card.client_id].installed = True
        chain = sb.issue_tokens(portal)
        seeded.append({**_summary(portal), "client_endpoint": chain["client_endpoint"],
                       "access_token": chain["access_token"], "refresh_token": chain["refresh_token"],
                       "expires": float(chain["expires"])})
    return seeded


def issue_tokens(server: SandboxServer, member_id: str) -> dict[str, Any]:
    return dict(server.sandbox.issue_tokens(member_id))


def frame_auth(server: SandboxServer, member_id: str, user_id: int = 1) -> dict[str, Any]:
    return dict(server.sandbox.frame_auth(member_id, user_id=user_id))


def advance_clock(server: SandboxServer, seconds: float) -> None:
    server.sandbox.clock.advance(seconds)


def set_rate(server: SandboxServer, member_id: str, rate: tuple[float, float] | None) -> None:
    server.sandbox.set_rate(member_id, rate)


def create_webhook(server: SandboxServer, member_id: str) -> str:
    return server.sandbox.create_webhook(member_id, user_id=1, scope="crm,user,placement")["url"]


def portal_counters(server: SandboxServer, member_ids: list[str]) -> dict[str, dict]:
    snapshot = server.sandbox.counters.snapshot()["portals"]
    return {m: snapshot.get(m, {}) for m in member_ids}


def badge_count(server: SandboxServer, member_id: str) -> int:
    portal = server.sandbox.portal(member_id)
    with server.sandbox.lock:
        return len(portal.badges)


def remove_portals(server: SandboxServer, member_ids: list[str]) -> None:
    for member_id in member_ids:
        server.sandbox.remove_portal(member_id)


def add_fault(server: SandboxServer, member_id: str | None, method: str, mode: str, **options: Any) -> None:
    server.sandbox.faults.add(member_id, method, mode, **options)


def clear_faults(server: SandboxServer) -> None:
    server.sandbox.faults.clear()


def expire_tokens(server: SandboxServer, member_id: str) -> None:
    server.sandbox.expire_tokens(member_id)


OPERATIONS = {f.__name__: f for f in (register_app, create_portal, install, seed_installed, issue_tokens, frame_auth,
                                      advance_clock, set_rate, create_webhook, portal_counters, badge_count,
                                      remove_portals, add_fault, clear_faults, expire_tokens)}


def serve(conn: Connection) -> None:
    """Child process entry point: start the sandbox, announce its URL, then run operations until None."""
    server = start_sandbox()
    conn.send(("ready", server.oauth_url))
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            name, args, kwargs = message
            try:
                conn.send(("ok", OPERATIONS[name](server, *args, **kwargs)))
            except Exception as exc:
                conn.send(("error", f"{name}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))
    finally:
        server.stop()
