"""gunicorn settings for `make run` and production.

The master validates the configuration before forking (a bad variable stops start-up with one
line), starts the embedded Redis when REDIS_URL is unset and hands it to the workers through the
environment, and stops it on exit. Outside production, with no B24_CLIENT_ID, it also runs the
sandbox portal beside the app and points the app at it (`b24app.devsandbox`).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Prometheus multiprocess mode (b24app/observability/metrics.py): the directory must be in the environment before
# anything imports prometheus-client, i.e. before the b24app imports below. The master makes it (a
# private temporary one unless PROMETHEUS_MULTIPROC_DIR names one), cleans it at start, and tells it
# each dead worker; /metrics in any worker then sums the samples of all of them.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="b24-metrics-")
    os.environ["_B24_METRICS_DIR_TEMPORARY"] = "1"
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
_metrics_dir.mkdir(parents=True, exist_ok=True)

from b24app.config import REPO_ROOT, ConfigError, default_env, load_config, sandbox_environ  # noqa: E402
from b24app.devsandbox import banner, free_port, sandbox_app  # noqa: E402
from b24app.observability.logs import gunicorn_logconfig  # noqa: E402
from b24app.portals.manifest import load_manifest  # noqa: E402
from b24app.rundir import AlreadyRunning, claim  # noqa: E402
from b24app.storage.embedded import EmbeddedRedisError, ensure_embedded  # noqa: E402


def _fail(message: str, prefix: str = "configuration error: ", status: int = 2) -> None:
    print(f"{prefix}{message}", file=sys.stderr, flush=True)
    if os.environ.get("_B24_METRICS_DIR_TEMPORARY") == "1":
        shutil.rmtree(_metrics_dir, ignore_errors=True)
    sys.exit(status)


_data_dir = Path(os.environ.get("B24_DATA_DIR") or REPO_ROOT / "var")
_redis_given = bool(os.environ.get("REDIS_URL", "").strip())
_sandbox_mode = not os.environ.get("B24_CLIENT_ID", "").strip() and \
    (os.environ.get("B24_ENV") or default_env()) != "production"
# The data dir holds the embedded Redis and the sandbox's state: one server at a time (b24app/rundir.py).
# A configuration reload (HUP) runs this file again in the same master, which already holds it.
_claim = None
if (_sandbox_mode or not _redis_given) and os.environ.get("_B24_RUN_CLAIMED") != str(os.getpid()):
    try:
        _claim = claim(_data_dir)
    except AlreadyRunning as exc:
        _fail(str(exc), prefix="", status=1)
    os.environ["_B24_RUN_CLAIMED"] = str(os.getpid())

try:
    _explicit_port = int(os.environ["PORT"]) if os.environ.get("PORT", "").strip() else None
except ValueError:
    _fail(f"PORT: not a port number: {os.environ['PORT']!r}")
_sandbox_oauth_port = 0
if _sandbox_mode:
    _wired = sandbox_app(_data_dir, _explicit_port)
    _port, _sandbox_oauth_port = _wired.app_port, _wired.oauth_port
    os.environ.update(sandbox_environ(_data_dir) or {})
else:
    _port = _explicit_port or free_port(8000)
bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{_port}"

try:
    _config = load_config()
    load_manifest()
except ConfigError as exc:
    _fail(str(exc))

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
_sandbox = None
_sandbox_info: dict = {}


def on_starting(server):
    global _embedded, _sandbox
    for stale in _metrics_dir.glob("*.db"):  # samples of an earlier run of this directory
        stale.unlink(missing_ok=True)
    try:
        _embedded = ensure_embedded(_config.data_dir)
    except EmbeddedRedisError as exc:
        _fail(f"REDIS_URL: not set and {exc}")
    if _sandbox_mode:
        _sandbox = subprocess.Popen(
            [sys.executable, "-m", "b24app.devsandbox", "--app-url", _config.app_url,
             "--oauth-port", str(_sandbox_oauth_port)], stdout=subprocess.PIPE, text=True)
        line = _sandbox.stdout.readline()
        try:
            _sandbox_info.update(json.loads(line))
        except ValueError:
            _fail(f"B24_CLIENT_ID: not set, and the sandbox portal did not start ({line.strip()!r})")


def when_ready(server):
    host, port = server.address[0][:2] if server.address else ("127.0.0.1", "?")
    if _claim is not None:
        _claim.announce(f"http://{host}:{port}")
    redis_from = "REDIS_URL" if _redis_given else f"embedded in {_data_dir}"
    print(f"Activity Badges is serving on http://{host}:{port}  (workers: {workers}, redis: {redis_from})",
          flush=True)
    if _sandbox_info:
        print(banner(_config.app_url, _sandbox_info["oauth_url"], _sandbox_info["portal_url"]), flush=True)


def post_worker_init(worker):
    """Build the services (Redis clients, Lua scripts, job threads) as the worker starts: no request pays for
    it, and a Redis that is down then costs a request its own timeout only (docs/DESIGN.md §9 Faults)."""
    holder = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("b24")
    if holder is None:
        return
    try:
        holder.get()
    except Exception as exc:  # noqa: BLE001 — the first request builds them again and answers with the reason
        worker.log.warning("services not built at worker start: %s", exc)


def worker_exit(server, worker):
    """Let queued background work (re-binding after an update) finish before the worker goes."""
    holder = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("b24")
    services = getattr(holder, "built", None)
    if services is not None:
        services.shutdown()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))


def on_exit(server):
    if os.environ.get("_B24_METRICS_DIR_TEMPORARY") == "1":
        shutil.rmtree(_metrics_dir, ignore_errors=True)
    if _sandbox is not None and _sandbox.poll() is None:
        _sandbox.terminate()
        try:
            _sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _sandbox.kill()
    if _embedded is not None:
        _embedded.stop()
