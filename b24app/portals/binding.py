"""(Re)binding what install.json lists — events and placements — idempotently.

The installer binds before `installFinish()`; an ONAPPUPDATE wipes every binding (docs/bitrix24-protocol.md
§1.4), and event handlers must answer at once, so re-binding after an event runs in the background.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import Any

import redis

from ..bitrix.client import PortalClient, PortalClients
from ..bitrix.errors import B24Error, already_bound
from ..errors import AppError
from ..storage.installations import InstallationStore
from .manifest import Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BindReport:
    bound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


class Binder:
    def __init__(self, *, clients: PortalClients, manifest: Manifest, store: InstallationStore, app_url: str,
                 workers: int = 2) -> None:
        self._clients = clients
        self._manifest = manifest
        self._store = store
        self._app_url = app_url
        self._background = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="b24-binding")
        self._pending: set[Future[None]] = set()

    def bind(self, member_id: str) -> BindReport:
        """(Re)bind every event and placement of install.json that is not bound yet."""
        portal = self._clients.portal(member_id)
        manifest = self._manifest
        report = BindReport()
        bound_events = {(str(e.get("event", "")).upper(), str(e.get("handler", "")))
                        for e in _as_list(portal.call("event.get").result)}
        handler = manifest.url(self._app_url, "events")
        for event in manifest.events:
            name = f"event {event}"
            if (event, handler) in bound_events:
                report.already.append(name)
                continue
            self._bind_call(portal, "event.bind", {"event": event, "handler": handler}, name, report)
        bound_placements = {(str(p.get("placement", "")).upper(), str(p.get("handler", "")))
                            for p in _as_list(portal.call("placement.get").result)}
        for placement in manifest.placements:
            url = manifest.url(self._app_url, placement.handler)
            name = f"placement {placement.placement}"
            if (placement.placement.upper(), url) in bound_placements:
                report.already.append(name)
                continue
            params = {"PLACEMENT": placement.placement, "HANDLER": url,
                      "TITLE": placement.title.get("en") or next(iter(placement.title.values()), manifest.name),
                      "LANG_ALL": {lang: {"TITLE": title} for lang, title in placement.title.items()}}
            self._bind_call(portal, "placement.bind", params, name, report)
        log.info("bindings checked", extra={"member_id": member_id, "bound": len(report.bound),
                                            "already": len(report.already)})
        return report

    @staticmethod
    def _bind_call(portal: PortalClient, method: str, params: dict[str, Any], name: str, report: BindReport) -> None:
        try:
            portal.call(method, params, idempotent=True)
        except B24Error as exc:
            if not already_bound(exc):
                raise
            report.already.append(name)
        else:
            report.bound.append(name)

    def bind_later(self, member_id: str) -> None:
        """Bind in the background: event handlers must answer fast (§1.6: no retries, answer 200 quickly)."""
        def run() -> None:
            try:
                self.bind(member_id)
            except (AppError, redis.RedisError) as exc:
                log.warning("background binding failed", extra={"member_id": member_id, "error": str(exc)[:200]})
                self._store.update(member_id, last_error=f"binding failed: {exc}"[:300])
        future = self._background.submit(run)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def wait(self, timeout: float = 30.0) -> None:
        """Block until queued background work is done (tests)."""
        futures_wait(list(self._pending), timeout=timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Finish queued bindings before the process exits (gunicorn's worker_exit, atexit)."""
        self.wait(timeout)
        self._background.shutdown(wait=False, cancel_futures=True)


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
