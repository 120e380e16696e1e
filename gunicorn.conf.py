"""gunicorn settings for `make run` and production.

The master validates the configuration before forking (a bad variable stops start-up with one
line), starts the embedded Redis when REDIS_URL is unset and hands it to the workers through the
environment, and stops it on exit.
"""
import os
import socket
import sys

from b24app.config import ConfigError, load_config
from b24app.embedded_redis import EmbeddedRedisError, ensure_embedded
from b24app.logs import gunicorn_logconfig
from b24app.manifest import load_manifest


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fail(message: str) -> None:
    print(f"configuration error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


try:
    _config = load_config()
    load_manifest()
except ConfigError as exc:
    _fail(str(exc))

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT') or _free_port(8000)}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 75
graceful_timeout = 10
keepalive = 5
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
logconfig_dict = gunicorn_logconfig("INFO" if _config.is_production else "DEBUG",
                                    secrets=(_config.client_secret or "", _config.secret_key, *_config.token_keys))
_embedded = None


def on_starting(server):
    global _embedded
    try:
        _embedded = ensure_embedded(_config.data_dir)
    except EmbeddedRedisError as exc:
        _fail(f"REDIS_URL: not set and {exc}")


def when_ready(server):
    host, port = server.address[0][:2] if server.address else ("127.0.0.1", "?")
    print(f"Activity Badges is serving on http://{host}:{port}  (workers: {workers}, "
          f"redis: {'embedded' if _embedded else 'REDIS_URL'})", flush=True)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
