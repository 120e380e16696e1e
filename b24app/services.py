"""What one process holds: configuration, the Redis client and the services built on them.

Built once by the app factory and reached by the web layer through `current_app.extensions["b24"]`.
Nothing here is per portal: a portal's context is always passed explicitly.
"""
from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
import requests
from requests.adapters import HTTPAdapter

from . import metrics
from .badges import Badges
from .config import Config
from .crypto import TokenCipher
from .idempotency import IdempotencyStore
from .installations import Installations
from .limiter import OperatingBudget
from .manifest import Manifest, load_manifest
from .oauth import OAuthClient
from .portal_http import PortalHTTP
from .sessions import SessionSigner, StateSigner
from .store import RedisInstallationStore
from .tokens import TokenManager


@dataclass
class Services:
    config: Config
    redis: redis.Redis
    manifest: Manifest
    store: RedisInstallationStore
    installations: Installations | None
    http: requests.Session
    portal_http: PortalHTTP
    badges: Badges
    idempotency: IdempotencyStore


def http_session(pool_size: int = 32) -> requests.Session:
    """One pooled HTTP session per process for the OAuth server (portal calls go through PortalHTTP).

    requests re-reads the environment on every call (proxy variables, NO_PROXY matching, ~/.netrc), and a
    netrc entry would even add credentials to our requests. The environment is read only when a proxy is
    configured there, the one setting this app honours from it.
    """
    session = requests.Session()
    session.trust_env = bool(urllib.request.getproxies())
    adapter = HTTPAdapter(pool_connections=64, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def build_services(config: Config, client: redis.Redis) -> Services:
    manifest = load_manifest()
    store = RedisInstallationStore(client, TokenCipher(config.token_keys))
    http = http_session()
    portal_http = PortalHTTP()
    installations = None
    if config.client_id and config.client_secret:
        oauth = OAuthClient(config, http)
        installations = Installations(
            config=config, manifest=manifest, store=store, oauth=oauth,
            tokens=TokenManager(store, oauth, client), http=portal_http, redis_client=client,
            limiter=metrics.MeteredRateLimiter(client, config.rate_rps, config.rate_burst),
            budget=OperatingBudget(client), observer=metrics.observe_portal_call,
            sessions=SessionSigner(config.secret_key, audience=config.client_id),
            states=StateSigner(config.secret_key, client),
            background=ThreadPoolExecutor(max_workers=2, thread_name_prefix="b24-background"))
    return Services(config=config, redis=client, manifest=manifest, store=store, installations=installations,
                    http=http, portal_http=portal_http, badges=Badges(client, prefix=config.badge_prefix),
                    idempotency=IdempotencyStore(client))
