"""The "Set activity badge" robot's runs (docs/bitrix24-protocol.md §11.3–§11.4).

A run is verified at the web edge (the stored application_token, like an event), answered at once, and
done here in the background (jobs.py): set or clear the deal's badge exactly as the deal tab does
(badges/deals.py), with the run's own token — the user the robot acts as, so the portal's permissions
decide — and, when the workflow waits, report back through `bizproc.event.send`. A run delivered twice
is done once (storage/robot_runs.py). Every failure is reported to the workflow in words a person can
act on; none is raised to the portal's queue, which does not retry.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..bitrix.client import PortalClient
from ..bitrix.errors import OperationTimeLimit, QueryLimitExceeded, TransientAuthError
from ..bitrix.oauth import OAuthUnavailable
from ..coerce import to_int
from ..errors import AppError, InvalidInput, RateLimitTimeout, RefreshBusy
from ..jobs import JobQueueFull, Jobs
from ..storage.robot_runs import RobotRunLog, run_digest
from .deals import DealBadges, DealBusy
from .rules import validate_code
from .service import BadgeNotFound

log = logging.getLogger(__name__)

DEAL_DOCUMENT = ("crm", "CCrmDocumentDeal")
_DEAL_ID_RE = re.compile(r"^DEAL_([1-9][0-9]{0,9})$")
# Nothing reached the portal, or the portal asked to wait: safe to do again. An unknown outcome of a
# write (a timeout of configurable.add) is not: it is reported, never repeated blindly.
RETRYABLE = (RateLimitTimeout, QueryLimitExceeded, OperationTimeLimit, TransientAuthError, OAuthUnavailable,
             RefreshBusy, DealBusy)
RETRY_DELAYS = (1.0, 3.0, 9.0)


@dataclass(frozen=True)
class RobotRun:
    member_id: str
    workflow_id: str
    event_token: str
    robot: str
    document_id: tuple[str, ...]
    properties: Mapping[str, Any]
    waits: bool
    access_token: str = field(repr=False)
    application_token: str = field(repr=False)
    user_id: int

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> RobotRun:
        """From the handler's form, unflattened; InvalidInput names what is missing."""
        auth = _section(payload, "auth")
        found = {"member_id": str(auth.get("member_id", "")), "workflow_id": str(payload.get("workflow_id", "")),
                 "event_token": str(payload.get("event_token", "")), "code": str(payload.get("code", "")),
                 "access_token": str(auth.get("access_token", "")),
                 "application_token": str(auth.get("application_token", ""))}
        missing = [name for name, value in found.items() if not value]
        if missing:
            raise InvalidInput(f"The robot run lacks {', '.join(missing)}.",
                               fields={name: "Required." for name in missing})
        document = payload.get("document_id")
        parts = tuple(str(v) for v in (document.values() if isinstance(document, dict) else document or ()))
        return cls(member_id=found["member_id"], workflow_id=found["workflow_id"], event_token=found["event_token"],
                   robot=found["code"], document_id=parts, properties=_section(payload, "properties"),
                   waits=str(payload.get("use_subscription", "")).upper() == "Y",
                   access_token=found["access_token"], application_token=found["application_token"],
                   user_id=to_int(auth.get("user_id")) or 0)

    @property
    def digest(self) -> str:
        return run_digest(self.workflow_id, self.event_token)

    @property
    def deal_id(self) -> int | None:
        if self.document_id[:2] != DEAL_DOCUMENT or len(self.document_id) != 3:
            return None
        matched = _DEAL_ID_RE.match(self.document_id[2])
        return int(matched.group(1)) if matched else None


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    values: dict[str, Any]


class RobotRuns:
    def __init__(self, *, deals: DealBadges, log_store: RobotRunLog, jobs: Jobs,
                 sleep: Callable[[float], None] = time.sleep, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._deals = deals
        self._log = log_store
        self._jobs = jobs
        self._sleep = sleep
        self._delays = retry_delays

    def accept(self, run: RobotRun, portal: Callable[[], PortalClient]) -> bool:
        """Queue a verified run; False when this run (workflow_id + event_token) was delivered before."""
        if not self._log.claim(run.member_id, run.digest, workflow_id=run.workflow_id, document=list(run.document_id)):
            log.info("robot run repeated: done once already", extra={"member_id": run.member_id})
            return False
        try:
            self._jobs.submit(run.member_id, lambda: self._run(run, portal))
        except JobQueueFull:
            self._log.release(run.member_id, run.digest)
            raise
        return True

    def _run(self, run: RobotRun, portal_factory: Callable[[], PortalClient]) -> None:
        try:
            portal = portal_factory()
        except AppError as exc:
            self._log.finish(run.member_id, run.digest, ok=False, message=exc.description)
            log.warning("robot run dropped: the portal cannot be called",
                        extra={"member_id": run.member_id, "error": exc.code})
            return
        outcome = self._perform(run, portal)
        self._log.finish(run.member_id, run.digest, ok=outcome.ok, message=outcome.message, **outcome.values)
        log.info("robot run done" if outcome.ok else "robot run failed",
                 extra={"member_id": run.member_id, "deal_id": run.deal_id, "outcome": outcome.message[:200]})
        if run.waits:
            self._report(run, portal, outcome)

    def _perform(self, run: RobotRun, portal: PortalClient) -> Outcome:
        deal_id = run.deal_id
        if deal_id is None:
            where = "/".join(run.document_id) or "no document"
            return _failed(f"Activity Badges shows badges on deals only; this rule ran on {where}. "
                           f"Use the robot in a deal pipeline's automation rules.")
        action = str(run.properties.get("action") or "set").lower()
        if action not in ("set", "clear"):
            return _failed(f"Unknown action {action!r}: choose \"set\" or \"clear\" in the robot's settings.")
        code = str(run.properties.get("badge") or "").strip()
        if action == "set":
            try:
                code = validate_code(code) if code else ""  # a stored code, as the robot's select lists them
            except InvalidInput:
                return _failed(f"{code!r} is not a badge code: pick a badge in the robot's settings.")
            if not code:
                return _failed("No badge is chosen: pick one in the robot's settings.")
        for attempt, delay in enumerate((*self._delays, None)):
            try:
                if action == "clear":
                    self._deals.clear(portal, deal_id)
                    return Outcome(True, f"Deal {deal_id}: badge cleared.", {"badge": ""})
                # The activity's responsible user: the one the robot acts as (its AUTH_USER_ID).
                shown = self._deals.show(portal, deal_id, code, user_id=run.user_id or 1)
                return Outcome(True, f"Deal {deal_id}: badge {code} shown.",
                               {"activity_id": shown.activity_id, "badge": code})
            except RETRYABLE as exc:
                if delay is None:
                    return _failed(f"Deal {deal_id}: the portal stayed busy ({exc.description}); "
                                   f"gave up after {attempt + 1} attempts.")
                self._sleep(delay)
            except BadgeNotFound:
                return _failed(f"There is no badge {code} on this portal any more: pick another one in the "
                               f"robot's settings.")
            except AppError as exc:
                return _failed(f"Deal {deal_id}: {_describe(exc)}")
        raise AssertionError("unreachable")

    def _report(self, run: RobotRun, portal: PortalClient, outcome: Outcome) -> None:
        values = {"activity_id": outcome.values.get("activity_id", 0), "badge": outcome.values.get("badge", ""),
                  "error": "" if outcome.ok else outcome.message}
        try:
            portal.call("bizproc.event.send", {"EVENT_TOKEN": run.event_token, "RETURN_VALUES": values,
                                               "LOG_MESSAGE": f"Activity Badges: {outcome.message}"},
                        idempotent=True)
        except AppError as exc:
            log.warning("robot outcome could not be reported", extra={"member_id": run.member_id,
                                                                      "error": exc.code})


def _failed(message: str) -> Outcome:
    return Outcome(False, message, {})


def _describe(exc: AppError) -> str:
    hint = getattr(exc, "hint", "")
    text = exc.description.rstrip(".") + "."
    return f"{text} {hint}".strip() if hint and hint not in text else text


def _section(payload: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}
