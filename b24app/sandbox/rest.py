"""Portal REST dispatch (docs/bitrix24-protocol.md §3, §4): rate limit, auth, method lookup, faults, operating time,
execution and the envelope. Pure logic over the `Sandbox` state; the HTTP view lives in
`portal_app.py`.

Order of checks for one HTTP request: leaky bucket (503) -> authentication (401) -> method lookup
(404) and scope (403 for an app, 401 for a webhook) -> injected fault -> operating-time limit (429) -> the method.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors as err
from .envelope import time_block
from .errors import RestError
from .methods import REGISTRY, CallContext, Paged

if TYPE_CHECKING:
    from .models import Portal
    from .sandbox import Sandbox

log = logging.getLogger("b24app.sandbox.rest")


@dataclass
class Outcome:
    """Result of executing one method (top-level or a batch sub-call)."""

    result: Any = None
    total: int | None = None
    next: int | None = None
    error: RestError | None = None
    time: dict[str, Any] | None = None
    hold: float | None = None


@dataclass
class Answer:
    """What the HTTP view sends back."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hold: float | None = None
    delay: float = 0.0


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


class Dispatcher:
    """Executes REST calls against one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    # -- authentication -----------------------------------------------------------------------------
    def authenticate(self, portal: Portal, token: str | None, webhook: tuple[str, str] | None,
                     now: float) -> CallContext:
        if webhook is not None:
            return self._webhook_context(portal, webhook, now)
        if not token:
            raise err.no_auth_found()
        access = self.sb.tokens.access.get(token)
        if access is None or access.revoked or access.member_id != portal.member_id:
            raise err.invalid_token()
        if access.expires_at <= now:
            raise err.expired_token()
        installation = portal.installations.get(access.client_id)
        if installation is None:
            raise err.invalid_token()
        user = portal.users.get(access.user_id)
        if user is None or not user.active:
            raise err.authorization_error()
        app = self.sb.apps.get(access.client_id)
        scopes = app.scopes if app else set()
        return CallContext(self.sb, portal, user, scopes, now, client_id=access.client_id,
                           installation=installation, access_expires=access.expires_at, dispatcher=self)

    def _webhook_context(self, portal: Portal, webhook: tuple[str, str], now: float) -> CallContext:
        user_id, code = webhook
        hook = portal.webhooks.get(code)
        if hook is None or str(hook.user_id) != user_id:
            raise err.invalid_credentials()
        user = portal.users.get(hook.user_id)
        if user is None or not user.active:
            raise err.authorization_error()
        scopes = {s.strip() for s in hook.scope.split(",") if s.strip()}
        return CallContext(self.sb, portal, user, scopes, now, webhook=hook, dispatcher=self)

    # -- one method ---------------------------------------------------------------------------------
    def execute(self, ctx: CallContext, method: str, params: dict[str, Any], *, in_batch: bool = False) -> Outcome:
        """Run one method for an authenticated caller; never raises RestError."""
        member = ctx.portal.member_id
        spec = REGISTRY.get(method)
        if spec is None:
            return Outcome(error=err.method_not_found())
        if not spec.allowed(ctx.scopes):
            return Outcome(error=err.insufficient_scope(webhook=ctx.webhook is not None, in_batch=in_batch))
        fault = self.sb.faults.take(member, method)
        apply_then_500 = False
        if fault is not None:
            if fault.mode == "timeout":
                return Outcome(hold=fault.seconds)
            if fault.mode == "500":
                return Outcome(error=err.internal_error())
            if fault.mode == "error":
                return Outcome(error=RestError(fault.error, fault.description, fault.status))
            if fault.mode == "delay":
                ctx.delay = max(ctx.delay, fault.seconds)
            else:
                apply_then_500 = True
        key = (member, ctx.caller_key, method)
        operating = self.sb.operating
        if method != "batch" and operating.blocked(key, ctx.now):
            if in_batch:
                self.sb.counters.sub_call_limited(member)
            return Outcome(error=err.operation_time_limit())
        started = time.perf_counter()
        outcome = Outcome()
        try:
            value = spec.fn(ctx, params)
            if isinstance(value, Outcome):  # batch holding the connection
                return value
            if isinstance(value, Paged):
                outcome.result, outcome.total, outcome.next = value.result, value.total, value.next
            else:
                outcome.result = value
        except RestError as exc:
            outcome.error = exc
        except Exception:
            log.exception("sandbox method %s failed", method)
            outcome.error = err.internal_error()
        self.sb.counters.call(member, method)
        elapsed = time.perf_counter() - started + self.sb.method_cost(member, method)
        if method != "batch":
            operating.record(key, elapsed, ctx.now)
        outcome.time = time_block(ctx.now, ctx.now + elapsed, elapsed,
                                  operating.used(key, ctx.now), operating.reset_at(key, ctx.now), ctx.portal.tz)
        if apply_then_500:
            ctx.force_500 = True
        return outcome

    # -- one HTTP request ---------------------------------------------------------------------------
    def handle(self, portal: Portal, method: str, params: dict[str, Any], token: str | None,
               webhook: tuple[str, str] | None = None) -> Answer:
        with self.sb.lock:
            now = self.sb.clock.now()
            answer = self._handle_locked(portal, method, params, token, webhook, now)
        self.sb.counters.rest_request(portal.member_id, method, answer.status)
        return answer

    def _handle_locked(self, portal: Portal, method: str, params: dict[str, Any], token: str | None,
                       webhook: tuple[str, str] | None, now: float) -> Answer:
        headers = {"Access-Control-Allow-Origin": "*"}
        if portal.rate is not None and not self.sb.bucket.admit(portal.member_id, portal.rate[0], portal.rate[1], now):
            return Answer(503, _json(err.query_limit_exceeded().body()), headers)
        try:
            ctx = self.authenticate(portal, token, webhook, now)
        except RestError as exc:
            return Answer(exc.status, _json(exc.body()), headers)
        if ctx.client_id:
            headers["X-Bitrix-Rest-Application"] = ctx.client_id
        outcome = self.execute(ctx, method, params)
        if outcome.hold is not None:
            return Answer(500, b"", headers, hold=outcome.hold)
        answer = self._answer(outcome, ctx, headers)
        answer.delay = ctx.delay
        return answer

    def _answer(self, outcome: Outcome, ctx: CallContext, headers: dict[str, str]) -> Answer:
        if ctx.force_500:
            return Answer(500, _json(err.internal_error().body()), headers)
        if outcome.error is not None:
            return Answer(outcome.error.status, _json(outcome.error.body()), headers)
        body: dict[str, Any] = {"result": outcome.result}
        if outcome.next is not None:
            body["next"] = outcome.next
        if outcome.total is not None:
            body["total"] = outcome.total
        body["time"] = outcome.time
        if outcome.time is not None:
            headers["X-Bitrix-Rest-Time"] = f"{outcome.time['duration']:.6f}"
        return Answer(200, _json(body), headers)
