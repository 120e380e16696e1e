"""Outbound HTTP to portals' REST endpoints: the `Transport` interface, urllib3 behind it, and a mock.

`PortalHTTP` is the production transport: urllib3 directly, one pool per process.
A portal call is JSON in, JSON out, never a followed redirect (a 302 means a renamed portal, which the
REST client confirms before it trusts the new address) and never a cookie. requests adds ≈ 0.5 ms per
call on top of urllib3 for machinery this needs none of (session merging, cookie jar, hooks, environment
lookups), a sixth of the app's whole overhead budget per badge add (docs/DESIGN.md §9,
docs/PERFORMANCE.md). A proxy configured in the environment (HTTPS_PROXY / HTTP_PROXY, honouring
NO_PROXY) is still used.

`MockTransport` answers with a handler function instead of the network (httpx's idea), so the REST
client's retry, refresh, rename and write-resolution logic is unit-tested without sockets.
"""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from ..errors import AppError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
FAILURE_KINDS = frozenset({"ConnectionError", "ConnectTimeout", "ReadTimeout", "ProxyError", "SSLError",
                           "InvalidJSONError"})


class TransportFailure(AppError):
    """No answer came back; `kind` names what happened (ConnectTimeout, ReadTimeout, ConnectionError, …).

    Internal to the bitrix package: the REST client turns it into a `TransportError`."""

    code = "TRANSPORT_FAILURE"

    def __init__(self, kind: str) -> None:
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown transport failure {kind!r}")
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Reply:
    status: int
    location: str
    data: bytes

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECTS and bool(self.location)

    def json_object(self) -> dict[str, Any] | None:
        """The body when it is a JSON object, else None."""
        try:
            body = json.loads(self.data)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


class Transport(Protocol):
    def post_json(self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str],
                  timeout: tuple[float, float]) -> Reply:
        """POST `payload` as JSON; raise TransportFailure when no answer comes back."""


class PortalHTTP:
    """Pooled, keep-alive POSTs of JSON; thread-safe (urllib3 pools are)."""

    def __init__(self, pool_size: int = 32, proxies: Mapping[str, str] | None = None) -> None:
        settings = dict(urllib.request.getproxies() if proxies is None else proxies)
        self._direct = urllib3.PoolManager(num_pools=64, maxsize=pool_size, block=False, retries=False)
        self._proxied = {scheme: urllib3.ProxyManager(settings[scheme], num_pools=64, maxsize=pool_size, block=False,
                                                      retries=False)
                         for scheme in ("http", "https") if settings.get(scheme)}
        self._no_proxy = {"no": settings["no"]} if settings.get("no") else {}

    def post_json(self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str],
                  timeout: tuple[float, float]) -> Reply:
        """POST `payload` as JSON; raises TransportFailure when no answer comes back."""
        try:
            body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            raise TransportFailure("InvalidJSONError") from None
        try:
            response = self._pool(url).request(
                "POST", url, body=body, headers={"Content-Type": "application/json", **headers},
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]), redirect=False, retries=False)
        except NewConnectionError:  # before ConnectTimeoutError, its base class in urllib3 2
            raise TransportFailure("ConnectionError") from None
        except ConnectTimeoutError:
            raise TransportFailure("ConnectTimeout") from None
        except ReadTimeoutError:
            raise TransportFailure("ReadTimeout") from None
        except ProxyError:
            raise TransportFailure("ProxyError") from None
        except SSLError:
            raise TransportFailure("SSLError") from None
        except HTTPError:
            raise TransportFailure("ConnectionError") from None
        return Reply(response.status, response.headers.get("Location", ""), response.data)

    def _pool(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxied = self._proxied.get(parts.scheme)
        if proxied is None or (self._no_proxy and _bypasses_proxy(parts.netloc, self._no_proxy)):
            return self._direct
        return proxied

    def clear(self) -> None:
        """Close every pooled connection (tests, shutdown)."""
        self._direct.clear()
        for manager in self._proxied.values():
            manager.clear()


def _bypasses_proxy(host: str, no_proxy: dict[str, str]) -> bool:
    """NO_PROXY matching exactly as requests and urllib do it (a public helper that typeshed omits)."""
    bypass: Callable[[str, dict[str, str]], bool] = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009
    return bypass(host, no_proxy)


@dataclass(frozen=True)
class Request:
    """What the client sent, as a `MockTransport` handler sees it."""

    url: str
    payload: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: tuple[float, float] = (0.0, 0.0)

    @property
    def method(self) -> str:
        """The REST method: the URL's last path segment (`…/rest/crm.activity.badge.add` → that name)."""
        return self.url.rsplit("/", 1)[-1]


def reply(status: int = 200, body: Any = None, *, location: str = "") -> Reply:
    """A `Reply` with `body` as JSON (bytes are sent as they are), for `MockTransport` handlers."""
    data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    return Reply(status, location, data)


class MockTransport:
    """A transport whose answers come from `handler(request)`; the handler may raise TransportFailure.

    Every request is kept in `requests`, in order, for assertions.
    """

    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self._handler = handler
        self.requests: list[Request] = []

    def post_json(self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str],
                  timeout: tuple[float, float]) -> Reply:
        request = Request(url, json.loads(json.dumps(payload)), dict(headers), timeout)
        self.requests.append(request)
        return self._handler(request)
