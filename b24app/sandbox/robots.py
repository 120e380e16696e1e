"""Automation rules ("robots") on deal stages, and their runs (docs/bitrix24-protocol.md §11).

An app registers robot types with `bizproc.robot.add` (methods/bizproc.py). A portal user places a
robot on a deal stage (an `AutomationRule`, here set through the Python or control API or the portal
page). When a deal enters that stage the robot runs: the portal's queue POSTs the §11.3 form to the
robot's HANDLER (form-encoded, bracket keys, like an event) and, with `use_subscription=Y`, the
workflow waits until the app answers through `bizproc.event.send` with the run's `event_token`.

The token is `WORKFLOW_ID|ACTIVITY_NAME|EVENT_ID.SIGNATURE`, signed per portal (core signs it with
`Main\\Security\\Sign\\Signer`, salt "bizproc"), so a forged token, or another portal's, does not verify.
Runs are recorded per portal (status, deliveries, return values, log) for tests and the deal card.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from typing import TYPE_CHECKING, Any

from .errors import SandboxError
from .models import (
    DEAL_STAGES,
    RUN_ANSWERED,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_PENDING,
    RUN_TIMEOUT,
    AppCard,
    AutomationRule,
    Deal,
    Portal,
    Robot,
    RobotRun,
    StageMove,
)
from .outbound import Delivery

if TYPE_CHECKING:
    from .sandbox import Sandbox

ROBOT_EVENT = "BIZPROC_ROBOT"  # how robot POSTs appear in the delivery log and the event counters
SIGNER_SALT = "bizproc"  # the salt of core's Signer for event tokens
DEAL_DOCUMENT_TYPE = ("crm", "CCrmDocumentDeal", "DEAL")
# What the workflow log says when bizproc.event.send brings no LOG_MESSAGE (EN bizproc-event-send.md).
DEFAULT_LOG_MESSAGE = "Received response from the application."
MAX_TIMEOUT = 3600 * 24 * 365 * 5  # core caps timeout_duration at 5 years (docs/bitrix24-protocol.md §11.3)
_ALNUM = string.ascii_letters + string.digits


def new_workflow_id(now: float) -> str:
    """PHP `uniqid('', true)`: 8 hex digits of seconds, 5 of microseconds, '.', 8 digits."""
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    return f"{seconds:08x}{micros:05x}.{secrets.randbelow(10**8):08d}"


def new_activity_name() -> str:
    """A template activity's name, e.g. `A40364_79843_85254_57332` (the capture in §11.3)."""
    return "A" + "_".join(f"{secrets.randbelow(10**5):05d}" for _ in range(4))


def new_event_id() -> str:
    """`Random::getString(32, true)`: 32 letters and digits."""
    return "".join(secrets.choice(_ALNUM) for _ in range(32))


def _signature(portal: Portal, value: str) -> str:
    key = hashlib.sha256(f"{SIGNER_SALT}{portal.sign_key}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def sign_token(portal: Portal, workflow_id: str, activity_name: str, event_id: str) -> str:
    """`WORKFLOW_ID|ACTIVITY_NAME|EVENT_ID.SIGNATURE` (64 hex digits), signed with the portal's key."""
    value = f"{workflow_id}|{activity_name}|{event_id}"
    return f"{value}.{_signature(portal, value)}"


def unsign_token(portal: Portal, token: Any) -> list[str] | None:
    """The token's parts, or None when it was not signed by this portal (CBPRestActivity::extractToken)."""
    if not isinstance(token, str) or "." not in token:
        return None
    value, _, signature = token.rpartition(".")
    if not hmac.compare_digest(_signature(portal, value), signature):
        return None
    return value.split("|")


def _external(value: Any) -> Any:
    """A property value as the queue sends it: null -> '', bool -> Y/N, lists stay lists (`[0]`, `[1]`…)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, list | tuple):
        return [_external(v) for v in value]
    return value


def flag(value: Any) -> bool | None:
    """A yes/no given as a bool or as Y/N, 1/0, true/false; None stays None (not chosen)."""
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("Y", "1", "TRUE", "YES")


def _lookup(values: dict[str, Any], key: str) -> tuple[bool, Any]:
    """A rule's value for a registered property key: exact key first, then case-insensitively."""
    if key in values:
        return True, values[key]
    for name, value in values.items():
        if str(name).upper() == key.upper():
            return True, value
    return False, None


class Automation:
    """Automation rules and robot runs of one sandbox (called through the `Sandbox` facade)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    # -- helpers (call with the lock held) ----------------------------------------------------------
    @staticmethod
    def robot(portal: Portal, client_id: str, code: str) -> Robot | None:
        """The app's registered robot with this CODE (CODEs are unique per app, docs/bitrix24-protocol.md §11.1)."""
        return next((r for r in portal.robots if r.client_id == client_id and r.code == code), None)

    @staticmethod
    def stage(value: Any) -> str:
        stage = str(value or "").strip().upper()
        if stage not in DEAL_STAGES:
            raise SandboxError(f"unknown deal stage {stage!r}; the pipeline's stages: {', '.join(DEAL_STAGES)}")
        return stage

    @staticmethod
    def deal(portal: Portal, deal_id: int) -> Deal:
        deal = portal.deals.get(int(deal_id))
        if deal is None:
            raise SandboxError(f"no deal {deal_id} on {portal.domain}")
        return deal

    def expire(self, portal: Portal) -> None:
        """Close waiting runs whose timeout_duration has passed (IsTimeout=1)."""
        now = self.sb.clock.now()
        for run in portal.robot_runs.values():
            if run.waiting and run.timeout_duration > 0 and run.started_at + run.timeout_duration <= now:
                run.status = RUN_TIMEOUT

    # -- rules --------------------------------------------------------------------------------------
    def add_rule(self, portal: Portal, app: AppCard, stage: str, robot: str, properties: dict[str, Any] | None,
                 use_subscription: bool | str | None, auth_user_id: int | None,
                 timeout_duration: int) -> AutomationRule:
        """Place a robot on a stage. If the robot is registered, unknown property keys are refused, as the
        designer only offers the registered ones."""
        stage_id = self.stage(stage)
        if not isinstance(robot, str) or not robot:
            raise SandboxError("robot must be the robot's CODE")
        values = dict(properties or {})
        timeout = int(timeout_duration or 0)
        if timeout < 0:
            raise SandboxError("timeout_duration must be 0 (no timeout) or positive seconds")
        with self.sb.lock:
            registered = self.robot(portal, app.client_id, robot)
            if registered is not None:
                known = {k.upper() for k in registered.properties}
                unknown = [k for k in values if str(k).upper() not in known]
                if unknown:
                    raise SandboxError(f"robot {robot} has no propert{'y' if len(unknown) == 1 else 'ies'} "
                                       f"{', '.join(map(str, unknown))}; it has: {', '.join(registered.properties)}")
            if auth_user_id is not None and int(auth_user_id) not in portal.users:
                raise SandboxError(f"no user {auth_user_id} on {portal.domain}")
            rule = AutomationRule(portal.next_id(), stage_id, robot, app.client_id, new_activity_name(), values,
                                  flag(use_subscription), None if auth_user_id is None else int(auth_user_id),
                                  min(timeout, MAX_TIMEOUT))
            portal.automation.append(rule)
            return rule

    def rules(self, portal: Portal) -> dict[str, list[AutomationRule]]:
        with self.sb.lock:
            grouped: dict[str, list[AutomationRule]] = {}
            for rule in portal.automation:
                grouped.setdefault(rule.stage_id, []).append(rule)
            return {stage: grouped[stage] for stage in DEAL_STAGES if stage in grouped}

    def remove_rules(self, portal: Portal, rule_id: int | None = None, stage: str | None = None) -> int:
        stage_id = self.stage(stage) if stage is not None else None
        with self.sb.lock:
            keep = [r for r in portal.automation
                    if not ((rule_id is None or r.id == int(rule_id)) and (stage_id is None or r.stage_id == stage_id))]
            removed = len(portal.automation) - len(keep)
            portal.automation[:] = keep
            return removed

    # -- runs ---------------------------------------------------------------------------------------
    def move_deal(self, portal: Portal, deal_id: int, stage: str, user_id: int = 1) -> list[RobotRun]:
        """The deal enters `stage`: the move is recorded and every robot placed on that stage runs, in order.
        Moving a deal to the stage it is in changes nothing and runs nothing."""
        stage_id = self.stage(stage)
        with self.sb.lock:
            deal = self.deal(portal, deal_id)
            if deal.stage_id == stage_id:
                return []
            deal.moves.append(StageMove(self.sb.clock.now(), deal.stage_id, stage_id, int(user_id)))
            deal.stage_id = stage_id
            runs = [self._start(portal, rule.client_id, rule.robot, deal, rule.properties, rule.use_subscription,
                                rule.auth_user_id, rule.timeout_duration, rule)
                    for rule in portal.automation if rule.stage_id == stage_id]
        for run in runs:
            self._deliver(portal, run)
        return runs

    def run_robot(self, portal: Portal, app: AppCard, deal_id: int, robot: str,
                  properties: dict[str, Any] | None = None, use_subscription: bool | str | None = None,
                  auth_user_id: int | None = None, timeout_duration: int = 0,
                  document_id: list[str] | None = None, deliver: bool = True) -> RobotRun:
        """One run of a robot on a deal, outside any stage (a new workflow, a new activity).

        `document_id` sends another document, as a rule in a lead or smart-process pipeline does;
        `deliver=False` keeps the POST queued until `redeliver`, as a slow portal queue does."""
        with self.sb.lock:
            deal = self.deal(portal, deal_id)
            run = self._start(portal, app.client_id, robot, deal, dict(properties or {}), flag(use_subscription),
                              auth_user_id, min(int(timeout_duration or 0), MAX_TIMEOUT), None)
            if document_id is not None and run.payload:
                run.payload["document_id"] = [str(part) for part in document_id]
        if deliver:
            self._deliver(portal, run)
        return run

    def _start(self, portal: Portal, client_id: str, code: str, deal: Deal, values: dict[str, Any],
               use_subscription: bool | None, auth_user_id: int | None, timeout: int,
               rule: AutomationRule | None) -> RobotRun:
        """Create the run and its payload (lock held). It fails at once, unsent, when the app is not installed
        or the robot is not registered (core: "the robot is blocked" until the app registers it again)."""
        now = self.sb.clock.now()
        workflow_id = new_workflow_id(now)
        activity_name = rule.activity_name if rule is not None else new_activity_name()
        event_id = new_event_id()
        robot = self.robot(portal, client_id, code)
        inst = portal.installations.get(client_id)
        app = self.sb.apps.get(client_id)
        registered_wait = robot.use_subscription if robot is not None else ""
        waits = registered_wait == "Y" or (registered_wait == "" and bool(use_subscription))
        run = RobotRun(portal.next_id(), client_id, code, deal.id, workflow_id, activity_name, event_id,
                       sign_token(portal, workflow_id, activity_name, event_id), waits, timeout, now,
                       RUN_PENDING if waits else RUN_COMPLETED, rule.id if rule else None, deal.stage_id)
        portal.robot_runs[run.id] = run
        if app is None or inst is None or not inst.installed:
            run.status, run.error = RUN_FAILED, "the application is not installed on this portal"
            return run
        if robot is None:
            run.status, run.error = RUN_FAILED, f"the application has no robot {code} registered (bizproc.robot.add)"
            return run
        run.handler = robot.handler
        run.return_keys = list(robot.return_properties)
        user_id = auth_user_id if auth_user_id is not None else robot.auth_user_id
        user = portal.users.get(int(user_id or 0))
        if user is None or not user.active:  # AUTH_USER_ID 0 (or gone): the admin who installed the app
            user_id = inst.installed_by
        run.user_id = int(user_id)
        properties: dict[str, Any] = {}
        for key, prop in robot.properties.items():
            found, value = _lookup(values, key)
            if not found and isinstance(prop, dict):
                value = prop.get("DEFAULT")
            properties[key] = _external(value)
        run.properties = properties
        # The order of the fields is core's (CBPRestActivity::execute, docs/bitrix24-protocol.md §11.3).
        run.payload = {"workflow_id": workflow_id, "code": code,
                       "document_id": [*DEAL_DOCUMENT_TYPE[:2], f"DEAL_{deal.id}"],
                       "document_type": list(DEAL_DOCUMENT_TYPE), "event_token": run.event_token,
                       "properties": properties, "use_subscription": "Y" if waits else "N",
                       "timeout_duration": timeout, "ts": int(now),
                       "auth": self.sb.lifecycle.auth_block(portal, app, inst, run.user_id)}
        return run

    def _deliver(self, portal: Portal, run: RobotRun) -> Delivery | None:
        """POST the run to the robot's handler through the event outbox (lock not held)."""
        if not run.payload:
            return None
        delivery = self.sb.outbox.deliver(run.handler, ROBOT_EVENT, portal.member_id, run.payload,
                                          self.sb.clock.now())
        with self.sb.lock:
            run.deliveries.append({"at": delivery.at, "status": delivery.status, "error": delivery.error,
                                   "duration": delivery.duration})
        return delivery

    def redeliver(self, portal: Portal, run_id: int) -> Delivery:
        """POST the same run again — same workflow_id, event_token, ts and tokens — as a queue that
        delivers twice would."""
        with self.sb.lock:
            run = self.run(portal, run_id)
            if not run.payload:
                raise SandboxError(f"robot run {run_id} was never sent ({run.error})")
        delivery = self._deliver(portal, run)
        assert delivery is not None
        return delivery

    def run(self, portal: Portal, run_id: int) -> RobotRun:
        with self.sb.lock:
            self.expire(portal)
            run = portal.robot_runs.get(int(run_id))
            if run is None:
                raise SandboxError(f"no robot run {run_id} on {portal.domain}")
            return run

    def runs(self, portal: Portal, deal_id: int | None = None, status: str | None = None,
             robot: str | None = None) -> list[RobotRun]:
        with self.sb.lock:
            self.expire(portal)
            return [r for r in portal.robot_runs.values()
                    if (deal_id is None or r.deal_id == int(deal_id)) and (status is None or r.status == status)
                    and (robot is None or r.robot == robot)]

    # -- the app's answers (methods/bizproc.py; lock held by the dispatcher) -------------------------
    def find(self, portal: Portal, parts: list[str]) -> RobotRun | None:
        workflow_id = parts[0] if parts else ""
        activity_name = parts[1] if len(parts) > 1 else ""
        return next((r for r in portal.robot_runs.values()
                     if r.workflow_id == workflow_id and r.activity_name == activity_name), None)

    def answer(self, portal: Portal, parts: list[str], return_values: Any, log_message: Any) -> RobotRun | None:
        """`bizproc.event.send` for a verified token: close the waiting run with the whitelisted
        RETURN_VALUES and the LOG_MESSAGE. A run that is not waiting (answered, timed out, never
        waited) or another event id ignores it, as CBPRestActivity::onExternalEvent does."""
        self.expire(portal)
        run = self.find(portal, parts)
        if run is None:
            return None
        event_id = parts[2] if len(parts) > 2 else ""
        if not run.waiting or run.event_id != event_id:
            run.ignored_answers += 1
            return run
        run.log_message = log_message if isinstance(log_message, str) and log_message else DEFAULT_LOG_MESSAGE
        if return_values:
            values = return_values if isinstance(return_values, dict) else {}
            allowed = {key.upper(): key for key in run.return_keys}
            for name, value in values.items():
                key = allowed.get(str(name).upper())
                if key is not None:
                    run.return_values[key] = value
        run.status = RUN_ANSWERED
        run.answered_at = self.sb.clock.now()
        return run

    def write_log(self, portal: Portal, parts: list[str], message: str) -> RobotRun | None:
        """`bizproc.activity.log`: a line in the workflow log; the run keeps waiting."""
        self.expire(portal)
        run = self.find(portal, parts)
        event_id = parts[2] if len(parts) > 2 else ""
        if run is None or not run.waiting or run.event_id != event_id:
            return run
        run.log.append({"at": self.sb.clock.now(), "message": message})
        return run

    # -- lifecycle ----------------------------------------------------------------------------------
    @staticmethod
    def forget_app(portal: Portal, client_id: str) -> None:
        """App update or uninstall: its robots are deleted (docs/bitrix24-protocol.md §11.2); rules placed on
        stages stay, and their runs fail until the app registers the robot again."""
        portal.robots[:] = [r for r in portal.robots if r.client_id != client_id]

    # -- the deal card ------------------------------------------------------------------------------
    def timeline(self, portal: Portal, deal_id: int) -> list[dict[str, Any]]:
        """Stage moves and robot runs of one deal, oldest first."""
        with self.sb.lock:
            self.expire(portal)
            deal = self.deal(portal, deal_id)
            items: list[dict[str, Any]] = [{"kind": "stage", **m.public()} for m in deal.moves]
            items += [{"kind": "robot", "at": r.started_at, **r.public()} for r in portal.robot_runs.values()
                      if r.deal_id == deal.id]
        return sorted(items, key=lambda item: (item["at"], item.get("id", 0)))
