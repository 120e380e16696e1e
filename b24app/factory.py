"""The application factory: configuration, logging, Redis, services, the web edge, the CLI."""
from __future__ import annotations

import logging
import random
import re

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin

from . import cli, web
from .config import Config, load_config
from .container import Services, ServicesOnDemand, build_services
from .observability.logs import configure_logging, request_id_var
from .portals.manifest import Manifest, load_manifest
from .storage.connection import connect, probe
from .storage.embedded import ensure_embedded, exit_cleanly_on_sigterm
from .web.common import EXTENSION

log = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(config: Config | None = None, *, configure_logs: bool = True) -> Flask:
    """Build the WSGI app; raises ConfigError (one readable line) on bad configuration.

    The configuration and install.json are checked here; Redis and the services wait for first use.
    """
    if config is None:
        config = load_config()
    if configure_logs:
        configure_logging("INFO" if config.is_production else "DEBUG",
                          secrets=(config.client_secret or "", config.secret_key, *config.token_keys))
    manifest = load_manifest()
    if config.redis_url is None:
        exit_cleanly_on_sigterm()
    app = Flask(__name__, static_folder=None)
    app.config.update(SECRET_KEY=config.secret_key)
    app.session_interface = _NoCookieSession()
    app.extensions[EXTENSION] = ServicesOnDemand(lambda: _services(config, manifest))

    _register_request_hooks(app)
    web.init_app(app)
    app.cli.add_command(cli.make_group(create_app))
    return app


def _services(config: Config, manifest: Manifest) -> Services:
    for warning in config.warnings:
        log.warning(warning)
    redis_url = config.redis_url
    if redis_url is None:
        environ: dict[str, str] = {}
        server = ensure_embedded(config.data_dir, environ)
        redis_url = environ["REDIS_URL"]
        if server is not None:
            server.stop_at_exit()
    return build_services(config, connect(redis_url), probe(redis_url), manifest=manifest)


class _NoCookieSession(SessionInterface):
    """The app keeps nothing in cookies (the UI sends a bearer token, docs/DESIGN.md §4) and never uses
    `flask.session`; Flask's cookie session would still build an HMAC serializer and look for a cookie on
    every request, ≈ 30 µs each (docs/PERFORMANCE.md). `flask.session` is an empty, read-only NullSession."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


# Headers every response gets unless its view set them, and those of JSON responses (lower-cased name,
# name, value): checked against the response's header names once instead of one scan per header.
_DEFAULT_HEADERS = (("x-content-type-options", "X-Content-Type-Options", "nosniff"),
                    ("referrer-policy", "Referrer-Policy", "no-referrer"))
_JSON_HEADERS = (*_DEFAULT_HEADERS, ("cache-control", "Cache-Control", "no-store"),
                 ("content-security-policy", "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"))


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")  # the X-Request-ID header
        # Unique, not secret (it only ties log lines together): Python's generator, reseeded in every forked
        # worker, spares each request a getrandom system call.
        request_id_var.set(incoming if _REQUEST_ID_RE.match(incoming) else f"{random.getrandbits(128):032x}")

    @app.after_request
    def _common_headers(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _value in headers}
        request_id = request_id_var.get()
        if request_id:
            if "x-request-id" in present:
                headers["X-Request-ID"] = request_id
            else:
                headers.add("X-Request-ID", request_id)
        for lowered, name, value in _JSON_HEADERS if response.mimetype == "application/json" else _DEFAULT_HEADERS:
            if lowered not in present:
                headers.add(name, value)
        return response

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        request_id_var.set(None)
