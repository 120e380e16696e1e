"""Small in-memory stand-ins for the REST client's collaborators, so its logic runs without Redis or HTTP.

`Portal.build(handler)` wires one portal ("m1") the way production does — `PortalClient` over a
`TokenManager` over the reference `MemoryInstallationStore` — with `MockTransport` for the wire,
`FakeOAuth` for the OAuth server, thread locks for the refresh lock and a sleep that only records.
`Script` is a handler that answers per REST method from a list; `ok` and `error` build envelopes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from b24app.bitrix.bulkhead import Bulkhead
from b24app.bitrix.client import PortalClient, RetryPolicy
from b24app.bitrix.oauth import AppInfo, TokenSet
from b24app.bitrix.tokens import TokenManager
from b24app.bitrix.transport import MockTransport, Reply, Request, reply
from b24app.storage.installations import Installation, MemoryInstallationStore

MEMBER_ID = "m1"
ENDPOINT = "https://portal.example.com/rest/"
DOMAIN = "portal.example.com"
OWNER = 1
TIMING = {"start": 1721722262.96, "finish": 1721722262.98, "duration": 0.024, "processing": 0.0013}
FAST_RETRY = RetryPolicy(max_attempts=4, max_wait=20.0, backoff_base=0.5, backoff_cap=8.0)


def ok(result: Any, **extra: Any) -> Reply:
    return reply(200, {"result": result, "time": TIMING, **extra})


def error(code: str | int, status: int = 400, description: str = "") -> Reply:
    return reply(status, {"error": code, "error_description": description})


def token_set(access: str = "a2", refresh: str = "r2", *, member_id: str = MEMBER_ID,
              client_endpoint: str = ENDPOINT) -> TokenSet:
    return TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3600,
                    member_id=member_id, client_endpoint=client_endpoint, user_id=OWNER, scope="crm",
                    status="P")


def app_info(*, client_endpoint: str = ENDPOINT, domain: str = DOMAIN, member_id: str = MEMBER_ID) -> AppInfo:
    return AppInfo(client_id="app.test.1", user_id=OWNER, scope="crm", installed=True, version=1, status="P",
                   domain=domain, uri=f"https://{domain}", client_endpoint=client_endpoint, member_id=member_id,
                   member_type="")


class FakeOAuth:
    """The OAuth server: `infos[access_token]` answers app_info, `refreshes` answers refresh in turn.

    Either may hold an exception instance, which is raised instead. Calls are kept for assertions.
    """

    client_id = "app.test.1"

    def __init__(self, *, infos: Mapping[str, AppInfo | Exception] | None = None,
                 refreshes: Sequence[TokenSet | Exception] = ()) -> None:
        self.infos = dict(infos or {})
        self.refreshes = list(refreshes)
        self.app_info_calls: list[str] = []
        self.refresh_calls: list[str] = []

    def app_info(self, access_token: str) -> AppInfo:
        self.app_info_calls.append(access_token)
        return _answer(self.infos[access_token])

    def refresh(self, refresh_token: str) -> TokenSet:
        self.refresh_calls.append(refresh_token)
        return _answer(self.refreshes.pop(0))


def _answer(outcome: Any) -> Any:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class _BoundedLock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.renewals = 0

    def acquire(self, *, blocking: bool | None = None) -> bool:
        return self._lock.acquire(timeout=1.0) if blocking or blocking is None else self._lock.acquire(False)

    def reacquire(self) -> bool:
        self.renewals += 1
        return True

    def release(self) -> None:
        self._lock.release()


class ThreadLocks:
    """The refresh-lock factory of `TokenManager`, one process-local lock per member_id."""

    def __init__(self) -> None:
        self._locks: dict[str, _BoundedLock] = {}
        self._guard = threading.Lock()

    def __call__(self, member_id: str) -> _BoundedLock:
        with self._guard:
            return self._locks.setdefault(member_id, _BoundedLock())


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


Answer = Reply | Exception


class Script:
    """A `MockTransport` handler answering each REST method from its list; the last answer repeats.

    An exception in the list (e.g. `TransportFailure("ReadTimeout")`) is raised as the transport would.
    """

    def __init__(self, answers: Mapping[str, Answer | Sequence[Answer]]) -> None:
        self._answers = {method: [a] if isinstance(a, Reply | Exception) else list(a) for method, a in answers.items()}

    def __call__(self, request: Request) -> Reply:
        queue = self._answers[request.method]
        return _answer(queue.pop(0) if len(queue) > 1 else queue[0])


class FakeBadgeCache:
    """The badge-list cache: always a miss unless filled; counts invalidations per portal."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.invalidated: list[str] = []

    def read(self, member_id: str) -> tuple[bytes | None, str]:
        return self.data.get(member_id), str(self.invalidated.count(member_id))

    def fill(self, member_id: str, generation: str, data: bytes) -> bool:
        if generation != str(self.invalidated.count(member_id)):
            return False
        self.data[member_id] = data
        return True

    def invalidate(self, member_id: str) -> None:
        self.data.pop(member_id, None)
        self.invalidated.append(member_id)

    @staticmethod
    def key(member_id: str) -> str:
        return f"cache:{member_id}"

    def written(self, member_id: str, seconds: float, *, marked: bool) -> None:
        """No write marks here (the unit tests' clients have no limiter): every write bumps."""
        assert not marked
        self.invalidate(member_id)


@dataclass
class Portal:
    """One wired portal client and every fake behind it."""

    client: PortalClient
    transport: MockTransport
    store: MemoryInstallationStore
    oauth: FakeOAuth
    sleep: RecordingSleep
    observed: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def requests(self) -> list[Request]:
        return self.transport.requests

    def sent(self, method: str) -> list[Request]:
        return [r for r in self.transport.requests if r.method == method]

    @property
    def record(self) -> Installation:
        record = self.store.get(MEMBER_ID)
        assert record is not None
        return record

    @classmethod
    def build(cls, handler: Callable[[Request], Reply], *, oauth: FakeOAuth | None = None,
              retry: RetryPolicy = FAST_RETRY, allow_http: bool = False, bulkhead: Bulkhead | None = None,
              locks: ThreadLocks | None = None) -> Portal:
        store = MemoryInstallationStore()
        store.activate(Installation(member_id=MEMBER_ID, domain=DOMAIN, client_endpoint=ENDPOINT, access_token="a1",
                                    refresh_token="r1", expires_at=time.time() + 3600, owner_user_id=OWNER))
        oauth = oauth or FakeOAuth()
        transport = MockTransport(handler)
        sleep = RecordingSleep()
        observed: list[tuple[str, str, float]] = []
        tokens = TokenManager(store, oauth, locks or ThreadLocks(), bulkhead=bulkhead, renew_every=0.01)
        client = PortalClient(MEMBER_ID, store=store, tokens=tokens, oauth=oauth, http=transport,
                              allow_http=allow_http, retry=retry, sleep=sleep, bulkhead=bulkhead,
                              observer=lambda *event: observed.append(event))
        return cls(client, transport, store, oauth, sleep, observed)
