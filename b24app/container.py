"""The composition root: everything one process holds, built once, at first use, for the app factory.

The web layer and the CLI reach it through `current_app.extensions["b24"]` (web/common.py has the one
accessor). Nothing here is per portal: a portal's context is always passed explicitly. The portal
services exist only when the app has its credentials (B24_CLIENT_ID / B24_CLIENT_SECRET); without them
`portal_services` is None and the routes that need them answer CONFIG_INCOMPLETE.
"""
from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import requests
from redis import Redis
from requests.adapters import HTTPAdapter

from .badges.deals import DealBadges
from .badges.robots import RobotRuns
from .badges.service import Badges
from .bitrix.bulkhead import Bulkhead
from .bitrix.client import PortalClients
from .bitrix.limiter import OperatingBudget, RateLimiter
from .bitrix.oauth import OAuthClient
from .bitrix.tokens import TokenManager, redis_locks
from .bitrix.transport import PortalHTTP, Transport
from .config import Config
from .jobs import Jobs
from .observability import metrics
from .portals.admins import AdminCheck
from .portals.authorization import Reauthorization
from .portals.binding import Binder
from .portals.events import LifecycleEvents
from .portals.manifest import Manifest, load_manifest
from .portals.service import Portals
from .portals.sessions import SessionSigner
from .portals.verification import Verifier
from .storage.badge_cache import BadgeListCache
from .storage.connection import OUTAGES
from .storage.crypto import TokenCipher
from .storage.deal_links import DealLinks
from .storage.idempotency import IdempotencyStore
from .storage.installations import RedisInstallationStore
from .storage.list_copies import ListCopies
from .storage.robot_runs import RobotRunLog
from .storage.user_tokens import UserTokens


@dataclass(frozen=True)
class PortalServices:
    """What needs the app's credentials: verifying portals and calling them."""

    clients: PortalClients
    tokens: TokenManager
    portals: Portals
    admins: AdminCheck
    users: UserTokens
    events: LifecycleEvents
    binder: Binder
    reauthorization: Reauthorization
    sessions: SessionSigner


@dataclass(frozen=True)
class Services:
    config: Config
    redis: Redis
    probe: Redis
    manifest: Manifest
    store: RedisInstallationStore
    transport: Transport
    badges: Badges
    deals: DealBadges
    idempotency: IdempotencyStore
    jobs: Jobs
    robot_runs: RobotRuns
    portal_services: PortalServices | None

    def shutdown(self) -> None:
        """Let queued background work (bindings, robot runs) finish before the process exits."""
        self.jobs.shutdown()
        self.badges.close()


def oauth_session(pool_size: int = 32) -> requests.Session:
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


class ServicesOnDemand:
    """Builds the services the first time they are asked for: `flask … --help` neither starts the embedded
    Redis nor logs configuration warnings; serving pays it once, on the first request."""

    def __init__(self, build: Callable[[], Services]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self.built: Services | None = None

    def get(self) -> Services:
        if self.built is None:
            with self._lock:
                if self.built is None:
                    self.built = self._build()
        return self.built


def build_services(config: Config, client: Redis, probe: Redis | None = None, *,
                   manifest: Manifest | None = None) -> Services:
    """Everything one process holds; `probe` answers readiness checks (the main client when None)."""
    manifest = manifest or load_manifest()
    cipher = TokenCipher(config.token_keys)
    store = RedisInstallationStore(client, cipher)
    transport = PortalHTTP()
    badges = Badges(BadgeListCache(client, copies=ListCopies(client)), prefix=config.badge_prefix)
    bulkhead = Bulkhead()
    jobs = Jobs(outages=OUTAGES)
    deals = DealBadges(badges, DealLinks(client), bulkhead=bulkhead)
    portal_services = None
    if config.client_id and config.client_secret:
        portal_services = _portal_services(config, client, manifest, store, cipher, transport, bulkhead, jobs,
                                           badges)
    return Services(config=config, redis=client, probe=probe or client, manifest=manifest, store=store,
                    transport=transport, badges=badges, deals=deals, idempotency=IdempotencyStore(client), jobs=jobs,
                    robot_runs=RobotRuns(deals=deals, log_store=RobotRunLog(client), jobs=jobs),
                    portal_services=portal_services)


def _portal_services(config: Config, client: Redis, manifest: Manifest, store: RedisInstallationStore,
                     cipher: TokenCipher, transport: Transport, bulkhead: Bulkhead, jobs: Jobs,
                     badges: Badges) -> PortalServices:
    oauth = OAuthClient(config, oauth_session())
    tokens = TokenManager(store, oauth, redis_locks(client), bulkhead=bulkhead)
    limiter = RateLimiter(client, config.rate_rps, config.rate_burst)
    clients = PortalClients(store=store, tokens=tokens, oauth=oauth, http=transport, limiter=limiter,
                            budget=OperatingBudget(client), allow_http=config.allow_http,
                            observer=metrics.observe_portal_call, bulkhead=bulkhead)
    verifier = Verifier(oauth=oauth, http=transport, limiter=limiter, allow_http=config.allow_http,
                        bulkhead=bulkhead)
    sessions = SessionSigner(config.secret_key, audience=oauth.client_id)
    binder = Binder(clients=clients, manifest=manifest, store=store, app_url=config.app_url or "", jobs=jobs,
                    badge_options=badges.options)
    users = UserTokens(client, cipher)
    admins = AdminCheck(store=store, users=users, http=transport)
    return PortalServices(
        clients=clients, tokens=tokens, sessions=sessions, binder=binder, admins=admins, users=users,
        portals=Portals(store=store, verifier=verifier, sessions=sessions, admins=admins),
        events=LifecycleEvents(store=store, verifier=verifier, binder=binder, redis_client=client),
        reauthorization=Reauthorization(store=store, oauth=oauth, verifier=verifier, redis_client=client,
                                        app_url=config.app_url or ""))
