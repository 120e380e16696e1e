"""(Re)binding what install.json lists — events, placements and robots — idempotently.

The installer binds before `installFinish()`; an ONAPPUPDATE wipes every binding, robots included
(docs/bitrix24-protocol.md §1.4, §11.2), and event handlers must answer at once, so re-binding after an
event runs in the background. A robot's badge list is a snapshot: after each change of the catalogue the
robots are registered again (`robots_later`), so the automation designer offers the badges there are.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..bitrix.client import PortalClient, PortalClients
from ..bitrix.errors import AccessDenied, B24Error, Conflict, MethodNotFound, NotFound, already_bound
from ..errors import AppError
from ..jobs import JobQueueFull, Jobs
from ..storage.connection import OUTAGES
from ..storage.installations import InstallationStore
from .manifest import Manifest

BadgeOptions = Callable[[PortalClient], dict[str, str]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BindReport:
    bound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# What a background binding may meet: a refusal of the portal's or an outage of Redis.
_FAILED: tuple[type[Exception], ...] = (AppError, *OUTAGES)
# Seconds without a catalogue change before the robots' badge list is registered again.
ROBOTS_QUIET = 10.0


class Binder:
    def __init__(self, *, clients: PortalClients, manifest: Manifest, store: InstallationStore, app_url: str,
                 jobs: Jobs, badge_options: BadgeOptions = lambda _portal: {},
                 robots_quiet: float = ROBOTS_QUIET) -> None:
        self._clients = clients
        self._manifest = manifest
        self._store = store
        self._app_url = app_url
        self._jobs = jobs
        self._badge_options = badge_options
        self.robots_quiet = robots_quiet

    def bind(self, member_id: str) -> BindReport:
        """(Re)bind every event, placement and robot of install.json that is not bound yet."""
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
        self._register_robots(portal, report)
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

    def register_robots(self, member_id: str) -> BindReport:
        """Register install.json's robots again, with the portal's current badges. They were registered at
        install, so each is updated straight away (one request) and added only if it has gone since."""
        report = BindReport()
        self._register_robots(self._clients.portal(member_id), report, assume_registered=True)
        return report

    def _register_robots(self, portal: PortalClient, report: BindReport, *, assume_registered: bool = False) -> None:
        try:
            self._register_each_robot(portal, report, assume_registered)
        except (AccessDenied, MethodNotFound) as exc:
            # A portal that granted the app before it had robots lacks the scope until the app is updated
            # there; the events and the deal tab must not depend on it.
            report.skipped.extend(f"robot {robot.code}" for robot in self._manifest.robots)
            log.warning("robots not registered", extra={"member_id": portal.member_id, "error": exc.code})

    def _register_each_robot(self, portal: PortalClient, report: BindReport, assume_registered: bool) -> None:
        if not self._manifest.robots:
            return
        registered = ({robot.code for robot in self._manifest.robots} if assume_registered
                      else {str(code) for code in portal.call("bizproc.robot.list").result or []})
        badges = self._badge_options(portal)
        owner = self._store.get(portal.member_id)
        auth_user_id = owner.owner_user_id if owner is not None else 0
        for robot in self._manifest.robots:
            fields = robot.fields(self._manifest.url(self._app_url, robot.handler), badges, auth_user_id or 0)
            name = f"robot {robot.code}"
            if robot.code in registered:
                try:
                    portal.call("bizproc.robot.update", {"CODE": robot.code, "FIELDS": fields}, idempotent=True)
                except NotFound:  # deleted by hand since: add it again
                    pass
                else:
                    report.already.append(name)
                    continue
            try:
                portal.call("bizproc.robot.add", {"CODE": robot.code, **fields}, idempotent=True)
            except Conflict:  # added meanwhile (another worker, or an add whose answer was lost)
                portal.call("bizproc.robot.update", {"CODE": robot.code, "FIELDS": fields}, idempotent=True)
                report.already.append(name)
            else:
                report.bound.append(name)

    def bind_later(self, member_id: str) -> None:
        """Bind in the background: event handlers must answer fast (§1.6: no retries, answer 200 quickly)."""
        self._later(member_id, "binding", self.bind)

    def robots_later(self, member_id: str) -> None:
        """Re-register the robots in the background once the catalogue has been quiet for `robots_quiet`
        seconds: an import in 100 chunks costs the portal one registration, not 100 that would take the
        import's rate-limit slots."""
        if not self._manifest.robots:
            return
        try:
            self._jobs.debounce(member_id, "robot registration", self.robots_quiet,
                                self._background(member_id, "robot registration", self.register_robots))
        except JobQueueFull:  # the catalogue write itself succeeded; the next one registers again
            log.warning("robot registration not queued: the process is shutting down", extra={"member_id": member_id})

    def _later(self, member_id: str, what: str, work: Callable[[str], BindReport]) -> None:
        self._jobs.submit(member_id, self._background(member_id, what, work))

    def _background(self, member_id: str, what: str, work: Callable[[str], BindReport]) -> Callable[[], None]:
        def run() -> None:
            try:
                work(member_id)
            except _FAILED as exc:
                log.warning(f"background {what} failed", extra={"member_id": member_id, "error": str(exc)[:200]})
                with contextlib.suppress(*_FAILED):  # Redis may be the reason
                    self._store.update(member_id, last_error=f"{what} failed: {exc}"[:300])
        return run

    def wait(self, timeout: float = 30.0) -> None:
        """Block until queued background work is done (tests)."""
        self._jobs.wait(timeout)


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
