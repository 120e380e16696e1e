"""The portal REST client: one object per portal context, never shared state between portals.

`POST {client_endpoint}{method}` with a JSON body carrying `auth`, redirects off (a 302 means the
portal was renamed: verified, stored, followed once), a timeout on every call, the shared
per-portal limiter before every request, and the decided behaviour of `bitrix/errors.py` for every
error code. Reads are retried on transient failures; writes are not (their outcome is unknown).
"""
from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import AppError, PortalNeedsReauth, RateLimitTimeout, UserTokenExpired
from ..observability import metrics
from ..observability.logs import request_id_var
from ..storage.installations import Installation, InstallationStore
from .bulkhead import Bulkhead
from .errors import (
    B24Error,
    OperationTimeLimit,
    OwnerCannotAct,
    Policy,
    QueryLimitExceeded,
    TransportError,
    make_error,
    outcome_label,
)
from .limiter import Admission, OperatingBudget, RateLimiter
from .oauth import OAuthClient, OAuthError, TokenRejected
from .tokens import EXPIRY_LEEWAY, REAUTH_MESSAGE, UNREAD, TokenManager
from .transport import Reply, Transport, TransportFailure

log = logging.getLogger(__name__)

BATCH_MAX = 50
DEFAULT_TIMEOUT = (3.05, 30.0)
READ_SUFFIXES = (".get", ".list", ".fields", ".current", ".admin", ".info", ".time")
READ_METHODS = frozenset({"profile", "user.admin", "user.current", "app.info", "server.time", "methods", "scope"})
USER_AGENT = "activity-badges/0.1 (+urllib3)"


def is_read(method: str) -> bool:
    method = method.lower()
    return method in READ_METHODS or method.endswith(READ_SUFFIXES)


@dataclass(frozen=True)
class RestResult:
    result: Any
    time: dict[str, Any] = field(default_factory=dict)
    next: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class BatchResult:
    """Per-command results and errors of one logical batch (possibly several HTTP requests)."""

    result: dict[str, Any]
    errors: dict[str, B24Error]
    total: dict[str, int]
    next: dict[str, int]

    def ok(self, key: str) -> bool:
        return key in self.result and key not in self.errors


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    max_wait: float = 20.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0

    def backoff(self, attempt: int) -> float:
        """Exponential (×1.5) with ±20% jitter so waiting processes do not retry in step."""
        delay = min(self.backoff_cap, self.backoff_base * (1.5 ** (attempt - 1)))
        return delay * random.uniform(0.8, 1.2)


class PortalClient:
    """Calls one portal on behalf of the app, with the portal's stored token chain."""

    def __init__(self, member_id: str, *, store: InstallationStore, tokens: TokenManager, oauth: OAuthClient,
                 http: Transport, limiter: RateLimiter | None = None, budget: OperatingBudget | None = None,
                 allow_http: bool = False, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 observer: Callable[[str, str, float], None] | None = None,
                 record: Installation | None = None, bulkhead: Bulkhead | None = None,
                 user_token: str | None = None, record_key: str | None = None) -> None:
        self.member_id = member_id
        # With a user's own token (`as_user`) the portal's permissions for that user decide, and the stored
        # chain is neither used nor refreshed nor marked: a dead user token is the user's session's to renew.
        self._user_token = user_token
        # The record the caller just read: the first call uses it instead of reading and decrypting it again;
        # later calls always re-read. With `record_key` and a limiter, each call on the stored chain reads it
        # in the round-trip that admits the call (bitrix/limiter.py) rather than in one of its own.
        self._prefetched = record if record is not None and record.member_id == member_id else None
        self._record_key = record_key if limiter is not None and user_token is None else None
        self._store = store
        self._tokens = tokens
        self._oauth = oauth
        self._http = http
        self._limiter = limiter
        self._budget = budget
        self._allow_http = allow_http
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._bulkhead = bulkhead
        # observer(method, outcome, seconds) after each logical call (metrics): `ok`, a known error code or OTHER.
        self._observe = observer or (lambda _method, _outcome, _seconds: None)

    @property
    def marks_writes(self) -> bool:
        """Whether a call's `marks_stale` cache is marked as the call is admitted (there is a limiter to do it)."""
        return self._limiter is not None

    def call(self, method: str, params: Mapping[str, Any] | None = None, *,
             idempotent: bool | None = None, marks_stale: str | None = None) -> RestResult:
        """Call `method`; raises a `B24Error` subclass (see rest_errors) or `PortalUnavailable`. `marks_stale`:
        a cache of the portal's that the call changes, marked stale in the round-trip that admits it."""
        started = time.perf_counter()
        try:
            body = self._request(method, dict(params or {}), is_read(method) if idempotent is None else idempotent,
                                 marks_stale)
        except AppError as exc:
            self._observe(method, outcome_label(exc.code), time.perf_counter() - started)
            raise
        self._observe(method, "ok", time.perf_counter() - started)
        return RestResult(result=body.get("result"), time=body.get("time") or {}, next=body.get("next"),
                          total=body.get("total"))

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]] | Sequence[tuple[str, Mapping[str, Any]]],
              *, halt: bool = False, marks_stale: str | None = None) -> BatchResult:
        """Run commands through `batch`, 50 per request; `$result[key]` references work within a chunk."""
        items = list(commands.items()) if isinstance(commands, Mapping) else \
            [(str(i), command) for i, command in enumerate(commands)]
        result: dict[str, Any] = {}
        errors: dict[str, B24Error] = {}
        total: dict[str, int] = {}
        next_: dict[str, int] = {}
        for start in range(0, len(items), BATCH_MAX):
            chunk = items[start:start + BATCH_MAX]
            cmd = {key: f"{method}?{build_query(params)}" if params else method for key, (method, params) in chunk}
            methods = {key: method for key, (method, _params) in chunk}
            read = all(is_read(method) for method in methods.values())
            answer = self.call("batch", {"halt": 1 if halt else 0, "cmd": cmd}, idempotent=read,
                               marks_stale=marks_stale).result or {}
            result.update(_as_dict(answer.get("result")))
            total.update(_as_dict(answer.get("result_total")))
            next_.update(_as_dict(answer.get("result_next")))
            latest = {methods.get(key, ""): timing for key, timing in _as_dict(answer.get("result_time")).items()}
            for sub_method, timing in latest.items():  # `operating` is cumulative: the last report per method
                self._record_operating(sub_method, timing)
            for key, body in _as_dict(answer.get("result_error")).items():
                body = body if isinstance(body, dict) else {"error": str(body)}
                errors[key] = make_error(body, 400, methods.get(key, ""))
            if halt and errors:
                break
        return BatchResult(result=result, errors=errors, total=total, next=next_)

    # -- one logical call ---------------------------------------------------------------------

    def as_user(self, access_token: str) -> PortalClient:
        """The same portal, called with a user's own token (the frame's): the portal decides what that user
        may do. A token the portal refuses raises `UserTokenExpired`; nothing of the stored chain changes."""
        return PortalClient(self.member_id, store=self._store, tokens=self._tokens, oauth=self._oauth,
                            http=self._http, limiter=self._limiter, budget=self._budget, allow_http=self._allow_http,
                            timeout=self._timeout, retry=self._retry, sleep=self._sleep, observer=self._observe,
                            record=self._prefetched, bulkhead=self._bulkhead, user_token=access_token)

    def _usable_record(self) -> Installation:
        record, self._prefetched = self._prefetched, None
        if self._user_token is not None:
            return replace(record or self._tokens.installed(self.member_id), access_token=self._user_token)
        if record is not None and record.has_tokens and not record.token_expired(leeway=EXPIRY_LEEWAY):
            return record
        return self._tokens.usable(self.member_id)

    def _request(self, method: str, params: dict[str, Any], read: bool, marks_stale: str | None) -> dict[str, Any]:
        record = None if self._prefetched is None and self._record_key is not None else self._usable_record()
        refreshed = moved = False
        retries = 0
        waited = 0.0
        while True:
            admission = self._wait_for_capacity(method, self._retry.max_wait - waited,
                                                self._record_key if record is None else None, marks_stale)
            waited += admission.waited
            if record is None:  # unread: a record of an earlier layout, which the store reads its own way
                found = self._store.decode(self.member_id, admission.record) if admission.record_read else UNREAD
                record = self._tokens.usable(self.member_id, found)
            outcome = _send(self._http, record.client_endpoint, method, record.access_token or "", params,
                            self._timeout)
            if isinstance(outcome, Reply) and outcome.is_redirect and not moved:
                record = self._follow_rename(record, outcome.location, method)
                moved = True
                continue
            body = _parse(outcome, method)
            if not isinstance(body, B24Error):
                self._record_operating(method, body.get("time"), tracked=admission.tracked)
                if self._limiter is not None:
                    self._limiter.relieved(self.member_id)
                return body
            error = body
            if self._user_token is not None and (error.policy is Policy.REFRESH or isinstance(error, OwnerCannotAct)):
                raise UserTokenExpired("Your authorization in Bitrix24 expired; the page renews it.") from error
            if error.policy is Policy.REFRESH and not refreshed:
                record = self._tokens.refresh(self.member_id, record.access_token)
                refreshed = True
                continue
            if isinstance(error, OwnerCannotAct):
                self._store.needs_reauth(self.member_id,
                                         f"authorization_error: user {record.owner_user_id} can no longer act; "
                                         "an administrator must open the app to hand over")
                raise error
            if isinstance(error, QueryLimitExceeded) and self._limiter is not None:
                self._limiter.saturate(self.member_id)
            retries += 1
            delay = self._retry_delay(error, method, read, retries)
            if delay is None or waited + delay > self._retry.max_wait:
                raise error
            with self._wait_slot("retry") as may_wait:
                if not may_wait:
                    raise error
                log.info("portal call retried", extra={"member_id": self.member_id, "method": method,
                                                       "error": error.code, "delay": round(delay, 3)})
                self._sleep(delay)
            waited += delay

    def _retry_delay(self, error: B24Error, method: str, read: bool, retry: int) -> float | None:
        """Seconds to wait before retry number `retry` (1, 2, …), or None: raise the error."""
        if retry >= self._retry.max_attempts:
            return None
        if isinstance(error, OperationTimeLimit):
            return self._budget.blocked(self.member_id, method) if self._budget else 10.0
        if error.policy is Policy.WAIT:
            return self._retry.backoff(retry) + (1.0 if isinstance(error, QueryLimitExceeded) else 0.0)
        if error.policy is Policy.RETRY_READ and read:
            return self._retry.backoff(retry)
        return None

    def _wait_slot(self, reason: str) -> AbstractContextManager[bool]:
        """Whether this thread may wait on the portal (bitrix/bulkhead.py); False is counted as shed."""
        if self._bulkhead is None:
            return nullcontext(True)
        return self._bulkhead.wait_slot(self.member_id, reason)

    def _wait_for_capacity(self, method: str, budget_left: float, record_key: str | None,
                           marks_stale: str | None) -> Admission:
        """Sleep out the method's operating-time pause (at most once), then take a rate-limit slot; only
        within the portal's share of waiting threads, else at once or not at all."""
        with self._wait_slot("rate") as may_wait:
            return self._admit(method, budget_left if may_wait else 0.0, record_key, marks_stale)

    def _admit(self, method: str, budget_left: float, record_key: str | None,
               marks_stale: str | None) -> Admission:
        budget = self._budget
        paused = 0.0
        tracked = False
        while True:
            try:
                if self._limiter is not None:
                    admission = self._limiter.admit(self.member_id, max_wait=max(0.0, budget_left - paused),
                                                    budget=budget, method=method, record_key=record_key,
                                                    marks_stale=marks_stale)
                elif budget is not None:
                    admission = budget.check(self.member_id, method)
                else:
                    admission = Admission()
            except RateLimitTimeout as exc:
                raise _too_many(exc, method) from None
            if not admission.callable:
                self._tokens.require(self.member_id, self._store.decode(self.member_id, admission.record))
                raise PortalNeedsReauth(self.member_id, REAUTH_MESSAGE)  # the script and `require` agree: unreached
            tracked = tracked or admission.tracked
            if not admission.paused or budget is None:
                return replace(admission, waited=paused + admission.waited, tracked=tracked)
            if admission.paused > budget_left - paused:
                raise OperationTimeLimit("OPERATION_TIME_LIMIT", f"{method} is paused for {admission.paused:.0f} s",
                                         method=method, extra={"retry_after": admission.paused})
            self._sleep(admission.paused)
            paused += admission.paused
            metrics.limiter_wait("operating", admission.paused)
            budget = None

    def _record_operating(self, method: str, timing: Any, *, tracked: bool = True) -> None:
        """Store the response's operating time when it matters: it could slow the method down, or it
        replaces a stored report that could (`tracked`); small reports alone change no decision."""
        if self._budget is None or not method or not isinstance(timing, dict) or "operating" not in timing:
            return
        with contextlib.suppress(TypeError, ValueError):
            operating = float(timing["operating"])
            if not tracked and operating < self._budget.record_floor:
                return
            self._budget.record(self.member_id, method, operating,
                                float(timing["operating_reset_at"]) if timing.get("operating_reset_at") else None)

    def _follow_rename(self, record: Installation, location: str, method: str) -> Installation:
        """A 302 says the portal moved. Trust the new address only if the OAuth server confirms it."""
        target = urlsplit(location)
        marker = target.path.find("/rest/")
        if target.scheme not in (("https", "http") if self._allow_http else ("https",)) or marker < 0:
            raise TransportError("BAD_REDIRECT", "the portal redirected to an unusable address", method=method)
        endpoint = f"{target.scheme}://{target.netloc}{target.path[:marker + len('/rest/')]}"
        try:
            info = self._oauth.app_info(record.access_token or "")
        except TokenRejected:
            if self._user_token is not None:
                raise UserTokenExpired("Your authorization in Bitrix24 expired; the page renews it.") from None
            # An expired token cannot ask; a refresh answers with the portal's current endpoint instead.
            record = self._tokens.refresh(self.member_id, record.access_token)
            if record.client_endpoint.rstrip("/") == endpoint.rstrip("/"):
                return record
            raise TransportError("BAD_REDIRECT", "the OAuth server does not confirm the portal's new address",
                                 method=method) from None
        except OAuthError as exc:
            raise TransportError("BAD_REDIRECT", f"could not confirm the portal's new address ({exc.code})",
                                 method=method) from None
        if info.member_id != self.member_id or info.client_endpoint.rstrip("/") != endpoint.rstrip("/"):
            raise TransportError("BAD_REDIRECT", "the OAuth server does not confirm the portal's new address",
                                 method=method)
        self._store.update(self.member_id, client_endpoint=info.client_endpoint, domain=info.domain)
        log.info("portal renamed", extra={"member_id": self.member_id, "domain": info.domain})
        return self._tokens.require(self.member_id)


@dataclass(frozen=True)
class PortalClients:
    """What every portal's client shares in one process; `portal(member_id)` hands out one portal's client.

    `clients.portal("MEMBER").call("crm.activity.badge.list")` — the portal is checked before each call
    (unknown, uninstalled or needing re-authorization raise `PortalUnavailable`): with a rate limiter and a
    store that can say where the record is, in the round-trip that admits the call, else first."""

    store: InstallationStore
    tokens: TokenManager
    oauth: OAuthClient
    http: Transport
    limiter: RateLimiter | None = None
    budget: OperatingBudget | None = None
    allow_http: bool = False
    observer: Callable[[str, str, float], None] | None = None
    bulkhead: Bulkhead | None = None

    def portal(self, member_id: str) -> PortalClient:
        self.shed_at_once(member_id)
        record_key = self.store.record_key(member_id) if self.limiter is not None else None
        if record_key is not None:
            return self._client(member_id, None, record_key=record_key)
        return self._client(member_id, self.tokens.require(member_id))

    def for_user(self, member_id: str, access_token: str) -> PortalClient:
        """The portal called with a user's own token (see `PortalClient.as_user`), even while the stored
        chain is dead: the user's authorization does not depend on it. Not shed early (`shed_at_once`): a
        robot run makes its client in a background job, where a refusal must come from the call, which its
        job retries, and not from here, which drops the run; a request makes it after `shed_at_once`."""
        return self._client(member_id, self.tokens.installed(member_id)).as_user(access_token)

    def shed_at_once(self, member_id: str) -> None:
        """A caller past its portal's share of waiting threads, while this process knows that the portal
        has no slot now, is refused before anything is read for it (the portal's record, a user's token): a
        flood of one portal's users costs no Redis round-trip per caller (docs/DESIGN.md §10). The price: for
        the few seconds a process remembers a full bucket (bitrix/limiter.py NO_SLOT_HORIZON), such callers
        of a portal uninstalled (or dead) meanwhile hear 503, come back later, before they hear 410 (or 409)."""
        if self.limiter is None or self.bulkhead is None or not self.bulkhead.full(member_id):
            return
        try:
            self.limiter.refuse_if_known_full(member_id)
        except RateLimitTimeout as exc:
            metrics.bulkhead_shed("rate")
            raise _too_many(exc, "") from None

    def _client(self, member_id: str, record: Installation | None, *, record_key: str | None = None) -> PortalClient:
        return PortalClient(member_id, store=self.store, tokens=self.tokens, oauth=self.oauth, http=self.http,
                            limiter=self.limiter, budget=self.budget, allow_http=self.allow_http,
                            observer=self.observer, record=record, bulkhead=self.bulkhead, record_key=record_key)


def _too_many(refused: RateLimitTimeout, method: str) -> QueryLimitExceeded:
    """No slot within the caller's wait: the portal's own answer to a full bucket, with when to come back."""
    return QueryLimitExceeded("QUERY_LIMIT_EXCEEDED", "Too many requests", method=method,
                              extra={"retry_after": refused.retry_after})


def call_with_token(http: Transport, client_endpoint: str, access_token: str, method: str,
                    params: Mapping[str, Any] | None = None,
                    timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> RestResult:
    """One call with a token that is not the stored chain (e.g. the frame user's): no refresh, no retry."""
    body = _parse(_send(http, client_endpoint, method, access_token, dict(params or {}), timeout), method)
    if isinstance(body, B24Error):
        raise body
    return RestResult(result=body.get("result"), time=body.get("time") or {}, next=body.get("next"),
                      total=body.get("total"))


def _send(http: Transport, client_endpoint: str, method: str, access_token: str, params: dict[str, Any],
          timeout: tuple[float, float]) -> Reply | TransportError:
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    request_id = request_id_var.get()
    if request_id:
        headers["X-Request-ID"] = request_id
    try:
        return http.post_json(client_endpoint + method, {**params, "auth": access_token}, headers=headers,
                              timeout=timeout)
    except TransportFailure as exc:
        return TransportError(exc.kind, "the portal did not answer", method=method)


def _parse(outcome: Reply | TransportError, method: str) -> dict[str, Any] | B24Error:
    """The success envelope, or the typed error for whatever came back."""
    if isinstance(outcome, TransportError):
        return outcome
    body = outcome.json_object()
    if body is None:
        return TransportError(f"HTTP_{outcome.status}", "the portal answered without JSON",
                              http_status=outcome.status, method=method)
    if 300 <= outcome.status < 400:
        return TransportError(f"HTTP_{outcome.status}", "the portal redirected the call elsewhere",
                              http_status=outcome.status, method=method)
    if "error" in body or outcome.status >= 400:
        return make_error(body, outcome.status, method)
    return body


def build_query(params: Mapping[str, Any], prefix: str = "") -> str:
    """PHP `http_build_query` encoding, which batch commands are parsed with (nested keys as a[b][c])."""
    parts: list[str] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        parts.extend(part for part in _encode(name, value) if part)
    return "&".join(parts)


def _encode(name: str, value: Any) -> Iterable[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [build_query(value, name)] if value else []
    if isinstance(value, (list, tuple)):
        return [build_query({str(i): v for i, v in enumerate(value)}, name)] if value else []
    if isinstance(value, bool):
        value = 1 if value else 0
    return [f"{quote(name, safe='[]')}={quote(str(value), safe='')}"]


def _as_dict(value: Any) -> dict[str, Any]:
    """Bitrix24 sends empty collections as [] (docs/bitrix24-protocol.md §3.4)."""
    return value if isinstance(value, dict) else {}
