"""Client of the Bitrix24 OAuth server: token introspection (app.info), code exchange, refresh.

Only ever talks to the configured OAuth server (`B24_OAUTH_URL`, allow-listed), never to a host
named by a request. Token requests are form POSTs through Authlib (`client_secret_post`), so the
client secret and tokens never appear in a URL. Bitrix24's token response is not RFC-shaped (no
`token_type`, extra `member_id`/`client_endpoint`); we read what we need from it explicitly.

A sick OAuth server must not take the app down (docs/DESIGN.md §10): app.info — asked for every
frame, session and event, also by anonymous callers with garbage tokens — has short timeouts and at
most APP_INFO_CONCURRENCY calls in flight per process (the next is refused at once, 503), and a token
it rejected is remembered for REJECTED_TTL seconds, so garbage costs no second call. A token request
(refresh, code) may take up to 30 s: its answer is a single-use refresh token that must not be lost.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from ..coerce import to_int
from ..config import Config
from ..errors import AppError

APP_INFO_TIMEOUT = (2.0, 5.0)
TOKEN_TIMEOUT = (3.05, 30.0)
APP_INFO_CONCURRENCY = 4
REJECTED_TTL = 60.0
REJECTED_MEMORY = 10_000


class OAuthError(AppError):
    """The OAuth server refused; `code` is its `error` value (lower-cased)."""

    def __init__(self, code: str, description: str = "", status: int | None = None) -> None:
        super().__init__(description)
        self.args = (f"{code}: {description}" if description else code,)
        self.code = code
        self.status = status


class InvalidGrant(OAuthError):
    """The code or refresh token is dead (expired, used, revoked): the portal must re-authorize."""


class TokenRejected(OAuthError):
    """app.info refused the access token (forged, expired, or not ours)."""


class OAuthUnavailable(OAuthError):
    """Network failure or 5xx: nothing was decided, try again later."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: float
    member_id: str
    client_endpoint: str
    user_id: int | None
    scope: str
    status: str


@dataclass(frozen=True)
class AppInfo:
    """The trusted answer of the OAuth server's app.info about one token."""

    client_id: str
    user_id: int | None
    scope: str
    installed: bool
    version: int
    status: str
    domain: str
    uri: str
    client_endpoint: str
    member_id: str
    member_type: str


class OAuthClient:
    def __init__(self, config: Config, session: requests.Session | None = None, *,
                 app_info_timeout: tuple[float, float] = APP_INFO_TIMEOUT,
                 token_timeout: tuple[float, float] = TOKEN_TIMEOUT,
                 app_info_concurrency: int = APP_INFO_CONCURRENCY) -> None:
        if not config.client_id or not config.client_secret:
            raise ValueError("B24_CLIENT_ID and B24_CLIENT_SECRET are needed to talk to the OAuth server")
        self._config = config
        self._client_id = config.client_id
        self._client_secret = config.client_secret
        self._base = config.oauth_url
        self._session = session or requests.Session()
        self._app_info_timeout = app_info_timeout
        self._token_timeout = token_timeout
        self._app_info_slots = threading.BoundedSemaphore(app_info_concurrency)
        self._rejected = _Expiring(REJECTED_MEMORY, REJECTED_TTL)

    @property
    def client_id(self) -> str:
        return self._client_id

    def app_info(self, access_token: str) -> AppInfo:
        """Ask the OAuth server who a token belongs to (POST, so the token stays out of URLs)."""
        digest = hashlib.sha256(access_token.encode()).digest()
        remembered = self._rejected.get(digest)
        if remembered is not None:
            raise TokenRejected(remembered, "rejected moments ago")
        if not self._app_info_slots.acquire(blocking=False):
            raise OAuthUnavailable("busy", "too many token checks are waiting for the OAuth server")
        try:
            response = self._session.post(f"{self._base}/rest/app.info", data={"auth": access_token},
                                          timeout=self._app_info_timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise OAuthUnavailable("unavailable", type(exc).__name__) from None
        finally:
            self._app_info_slots.release()
        body = _json(response)
        if response.status_code >= 500:
            raise OAuthUnavailable(str(body.get("error") or response.status_code), "", response.status_code)
        if "error" in body or not isinstance(body.get("result"), dict):
            code = str(body.get("error", "invalid_response")).lower()[:64]
            self._rejected.put(digest, code)
            raise TokenRejected(code, str(body.get("error_description", "")), response.status_code)
        result = body["result"]
        install = result.get("install") if isinstance(result.get("install"), dict) else {}
        return AppInfo(
            client_id=str(result.get("client_id", "")),
            user_id=to_int(result.get("user_id")),
            scope=str(result.get("scope", "")),
            installed=install.get("installed") in (True, "Y", "true", 1),
            version=to_int(install.get("version")) or 0,
            status=str(install.get("status", "")),
            domain=str(install.get("domain", "")).lower(),
            uri=str(install.get("uri", "")),
            client_endpoint=str(install.get("client_endpoint", "")),
            member_id=str(install.get("member_id", "")),
            member_type=str(install.get("member_type", "")),
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token_request(lambda s, url: s.refresh_token(url, refresh_token=refresh_token,
                                                                  timeout=self._token_timeout))

    def exchange_code(self, code: str) -> TokenSet:
        return self._token_request(lambda s, url: s.fetch_token(url, grant_type="authorization_code", code=code,
                                                                timeout=self._token_timeout))

    def authorize_url(self, portal_base: str, state: str) -> str:
        """Where to send a user so that their portal issues a code (no redirect_uri: the app card has it)."""
        return f"{portal_base.rstrip('/')}/oauth/authorize/?{urlencode({'client_id': self._client_id, 'state': state})}"

    def _token_request(self, call: Callable[[OAuth2Session, str], Any]) -> TokenSet:
        session = OAuth2Session(self._client_id, self._client_secret,
                                token_endpoint_auth_method="client_secret_post")  # noqa: S106 - a method name
        session.mount("http://", self._session.get_adapter("http://"))
        session.mount("https://", self._session.get_adapter("https://"))
        try:
            token = dict(call(session, f"{self._base}/oauth/token/"))
        except AuthlibBaseError as exc:
            code = str(getattr(exc, "error", "") or "oauth_error").lower()
            description = str(getattr(exc, "description", "") or "")
            error_class = InvalidGrant if code == "invalid_grant" else OAuthError
            raise error_class(code, description) from None
        except requests.RequestException as exc:
            raise OAuthUnavailable("unavailable", type(exc).__name__) from None
        except ValueError:
            raise OAuthUnavailable("invalid_response", "the OAuth server did not answer JSON") from None
        return self._token_set(token)

    def _token_set(self, token: dict[str, Any]) -> TokenSet:
        access, refresh = token.get("access_token"), token.get("refresh_token")
        if not access or not refresh or not token.get("member_id"):
            raise OAuthError("invalid_response", "token response without access_token/refresh_token/member_id")
        endpoint = str(token.get("client_endpoint", ""))
        if urlsplit(endpoint).scheme not in (("https", "http") if self._config.allow_http else ("https",)):
            raise OAuthError("invalid_response", "token response with an unusable client_endpoint")
        expires_in = to_int(token.get("expires_in")) or 3600
        expires_at = float(to_int(token.get("expires")) or time.time() + expires_in)
        return TokenSet(access_token=str(access), refresh_token=str(refresh), expires_at=expires_at,
                        member_id=str(token["member_id"]), client_endpoint=endpoint,
                        user_id=to_int(token.get("user_id")), scope=str(token.get("scope", "")),
                        status=str(token.get("status", "")))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class _Expiring:
    """A bounded map whose entries expire: the oldest go first when it is full."""

    def __init__(self, size: int, ttl: float) -> None:
        self._items: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        self._size = size
        self._ttl = ttl
        self._lock = threading.Lock()

    def get(self, key: bytes) -> str | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] < time.monotonic():
                del self._items[key]
                return None
            return found[1]

    def put(self, key: bytes, value: str) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
