"""Configuration from the environment (docs/DESIGN.md §3).

Every variable is parsed and validated once, at start-up, into an immutable `Config`. A bad value
raises `ConfigError` naming the variable; the entry points turn it into one line on stderr and a
non-zero exit, never a traceback. In development mode, missing secrets are generated once and kept
in the data directory so that a restart can still decrypt what it stored, and without credentials the
app is wired to the local sandbox portal that `make run` keeps there (SANDBOX_APP), so every command
of the CLI reaches it with no variable set.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet

from .errors import ConfigError

__all__ = ["DEVELOPMENT", "PRODUCTION", "REPO_ROOT", "Config", "ConfigError", "default_env", "load_config"]

log = logging.getLogger(__name__)

PRODUCTION = "production"
DEVELOPMENT = "development"
OFFICIAL_OAUTH_HOSTS = ("oauth.bitrix.info", "oauth.bitrix24.tech")
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info"
REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_KEY_LENGTH = 32
SENTINEL_SCHEME = "redis+sentinel"
SANDBOX_APP = "sandbox-app.json"


@dataclass(frozen=True)
class Config:
    env: str
    client_id: str | None
    client_secret: str | None = field(repr=False)
    app_url: str | None
    secret_key: str = field(repr=False)
    token_keys: tuple[str, ...] = field(repr=False)
    oauth_url: str = DEFAULT_OAUTH_URL
    redis_url: str | None = None
    allow_http: bool = False
    rate_rps: float = 2.0
    rate_burst: int = 50
    badge_prefix: str = ""
    data_dir: Path = REPO_ROOT / "var"
    warnings: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.env == PRODUCTION

    @property
    def oauth_hosts(self) -> frozenset[str]:
        """The OAuth servers this app will ever send a token or its secret to."""
        return frozenset({*OFFICIAL_OAUTH_HOSTS, urlsplit(self.oauth_url).netloc})

    def missing(self) -> list[str]:
        """Variables without which the app cannot serve portals (for /readyz)."""
        needed = {"B24_CLIENT_ID": self.client_id, "B24_CLIENT_SECRET": self.client_secret,
                  "B24_APP_URL": self.app_url}
        return [name for name, value in needed.items() if not value]


def default_env() -> str:
    """Production under gunicorn, development otherwise (`flask run`, tests, the CLI)."""
    return PRODUCTION if "gunicorn" in sys.modules else DEVELOPMENT


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Parse and validate the environment; raises ConfigError on the first bad variable."""
    env_vars = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env_vars.get(name, "").strip()
        return value or None

    env = get("B24_ENV") or default_env()
    if env not in (PRODUCTION, DEVELOPMENT):
        raise ConfigError("B24_ENV", f"must be '{PRODUCTION}' or '{DEVELOPMENT}', got {env!r}")
    production = env == PRODUCTION
    warnings: list[str] = []
    data_dir = Path(get("B24_DATA_DIR") or REPO_ROOT / "var")
    sandboxed = None
    if not production and get("B24_CLIENT_ID") is None and get("B24_CLIENT_SECRET") is None:
        sandboxed = sandbox_environ(data_dir)
    if sandboxed is not None:
        explicit = {name: value for name, value in env_vars.items() if value.strip()}
        env_vars = {**sandboxed, **explicit}

    allow_http = _parse_flag("B24_ALLOW_HTTP", get("B24_ALLOW_HTTP"))
    client_id = get("B24_CLIENT_ID")
    client_secret = get("B24_CLIENT_SECRET")
    for name, value in (("B24_CLIENT_ID", client_id), ("B24_CLIENT_SECRET", client_secret)):
        if value is None:
            if production:
                raise ConfigError(name, "required in production (from the Bitrix24 developer console)")
            warnings.append(f"{name} is not set: installs cannot be verified (try `flask --app app b24 sandbox`)")

    app_url = get("B24_APP_URL")
    if app_url is not None:
        app_url = _parse_url("B24_APP_URL", app_url, allow_http).rstrip("/")
    elif production:
        raise ConfigError("B24_APP_URL", "required in production: the public https base URL of this backend")
    else:
        warnings.append("B24_APP_URL is not set: placements and events cannot be bound")

    oauth_url = _parse_url("B24_OAUTH_URL", get("B24_OAUTH_URL") or DEFAULT_OAUTH_URL, allow_http).rstrip("/")

    secret_key = get("B24_SECRET_KEY")
    token_keys_raw = get("B24_TOKEN_KEYS")
    if production:
        if secret_key is None:
            raise ConfigError("B24_SECRET_KEY", "required in production (at least 32 random characters)")
        if token_keys_raw is None:
            raise ConfigError("B24_TOKEN_KEYS", "required in production (comma-separated Fernet keys)")
    if secret_key is None or token_keys_raw is None:
        dev = _dev_secrets(data_dir)
        for name, missing in (("B24_SECRET_KEY", secret_key is None), ("B24_TOKEN_KEYS", token_keys_raw is None)):
            if missing and sandboxed is None:  # with the sandbox, generated keys are the plan, not a slip
                warnings.append(f"{name} is not set: using a generated development key from {data_dir}")
        secret_key = secret_key or dev["secret_key"]
        token_keys_raw = token_keys_raw or dev["token_key"]
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError("B24_SECRET_KEY", f"must be at least {MIN_SECRET_KEY_LENGTH} characters")
    token_keys = _parse_token_keys(token_keys_raw)

    redis_url = get("REDIS_URL")
    if redis_url is not None:
        _check_redis_url(redis_url)
    rate_rps, rate_burst = parse_rate(get("B24_RATE") or "2/50")
    badge_prefix = get("B24_BADGE_PREFIX") or ""
    if badge_prefix and not (badge_prefix[0].isascii() and badge_prefix[0].isalpha()
                             and all(c.isascii() and (c.isalnum() or c == "_") for c in badge_prefix)
                             and len(badge_prefix) <= 12):
        raise ConfigError("B24_BADGE_PREFIX", "at most 12 of [A-Za-z0-9_], starting with a letter")

    return Config(env=env, client_id=client_id, client_secret=client_secret, app_url=app_url,
                  secret_key=secret_key, token_keys=token_keys, oauth_url=oauth_url, redis_url=redis_url,
                  allow_http=allow_http, rate_rps=rate_rps, rate_burst=rate_burst, badge_prefix=badge_prefix,
                  data_dir=data_dir, warnings=tuple(warnings))


def parse_rate(value: str) -> tuple[float, int]:
    """`RPS/BURST`, e.g. `2/50` (Enterprise: `5/250`)."""
    rps_text, sep, burst_text = value.partition("/")
    try:
        rps, burst = float(rps_text), int(burst_text)
    except ValueError:
        rps, burst = 0.0, 0
    if not sep or not 0 < rps <= 1000 or not 1 <= burst <= 100_000:
        raise ConfigError("B24_RATE", f"expected RPS/BURST such as 2/50, got {value!r}")
    return rps, burst


def _parse_flag(name: str, value: str | None) -> bool:
    if value is None or value.lower() in ("0", "false", "no", "off"):
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(name, f"expected 1 or 0, got {value!r}")


def _parse_url(name: str, value: str, allow_http: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(name, f"expected an absolute URL such as https://example.com, got {value!r}")
    if parts.scheme == "http" and not allow_http:
        raise ConfigError(name, "must use https (set B24_ALLOW_HTTP=1 only for the sandbox and tests)")
    return value


def _parse_token_keys(value: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in value.split(",") if key.strip())
    if not keys:
        raise ConfigError("B24_TOKEN_KEYS", "no key given")
    for index, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "B24_TOKEN_KEYS", f"key #{index} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)") from None
    return keys


def _check_redis_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme == SENTINEL_SCHEME:
        try:
            parse_sentinel_url(value)
        except ValueError as exc:
            raise ConfigError("REDIS_URL", f"{exc} (redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE[/DB])"
                              ) from None
        return
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.netloc or parts.path):
        raise ConfigError("REDIS_URL", f"expected redis://host:port/db, rediss://…, unix:///path or "
                                       f"redis+sentinel://HOST:PORT,…/SERVICE, got {value!r}")


@dataclass(frozen=True)
class SentinelTarget:
    nodes: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """`redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`; ValueError names what is wrong.
    The password is the primary's (the sentinels themselves are asked without one)."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"expected {SENTINEL_SCHEME}://")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT for every sentinel, got {host!r}")
        nodes.append((name.strip("[]"), int(port)))
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ValueError("expected /SERVICE or /SERVICE/DB after the sentinels")
    password = unquote(userinfo.partition(":")[2]) if userinfo else ""
    return SentinelTarget(tuple(nodes), unquote(segments[0]), int(segments[1]) if len(segments) == 2 else 0,
                          password or None)


def sandbox_environ(data_dir: Path) -> dict[str, str] | None:
    """The variables that wire the app to the local sandbox portal whose app `make run` registered
    (b24app/devsandbox.py writes SANDBOX_APP), or None when there is none."""
    try:
        stored = json.loads((data_dir / SANDBOX_APP).read_text())
        client_id, client_secret = str(stored["client_id"]), str(stored["client_secret"])
        app_port, oauth_port = int(stored["app_port"]), int(stored["oauth_port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"B24_CLIENT_ID": client_id, "B24_CLIENT_SECRET": client_secret,
            "B24_APP_URL": f"http://127.0.0.1:{app_port}", "B24_OAUTH_URL": f"http://127.0.0.1:{oauth_port}",
            "B24_ALLOW_HTTP": "1"}


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Development keys, generated once and kept (0600) so restarts can read what was encrypted."""
    path = data_dir / "dev-secrets.json"
    try:
        stored = json.loads(path.read_text())
        if isinstance(stored, dict) and {"secret_key", "token_key"} <= stored.keys():
            return stored
    except (OSError, ValueError):
        pass
    generated = {"secret_key": secrets.token_urlsafe(48), "token_key": Fernet.generate_key().decode()}
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(generated, handle)
    os.replace(tmp, path)
    return generated
