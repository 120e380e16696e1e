"""The application factory: configuration, logging, Redis, services, the web edge, the CLI."""
from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, Response, request

from . import cli, web
from .config import Config, load_config
from .container import build_services
from .observability.logs import configure_logging, request_id_var
from .storage.connection import connect, probe
from .storage.embedded import ensure_embedded
from .web.common import EXTENSION

log = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(config: Config | None = None, *, configure_logs: bool = True) -> Flask:
    """Build the WSGI app; raises ConfigError (one readable line) on bad configuration."""
    if config is None:
        config = load_config()
    if configure_logs:
        configure_logging("INFO" if config.is_production else "DEBUG",
                          secrets=(config.client_secret or "", config.secret_key, *config.token_keys))
    for warning in config.warnings:
        log.warning(warning)

    redis_url = config.redis_url
    if redis_url is None:
        environ: dict[str, str] = {}
        server = ensure_embedded(config.data_dir, environ)
        redis_url = environ["REDIS_URL"]
        if server is not None:
            server.stop_at_exit()

    app = Flask(__name__, static_folder=None)
    app.config.update(SECRET_KEY=config.secret_key)
    app.extensions[EXTENSION] = build_services(config, connect(redis_url), probe(redis_url))

    _register_request_hooks(app)
    web.init_app(app)
    app.cli.add_command(cli.make_group(create_app))
    return app


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        request_id_var.set(incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex)

    @app.after_request
    def _common_headers(response: Response) -> Response:
        request_id = request_id_var.get()
        if request_id:
            response.headers["X-Request-ID"] = request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "application/json":
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        return response

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        request_id_var.set(None)
