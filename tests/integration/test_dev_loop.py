"""The first steps of a developer: the root URL says what the app is, and the suite without Redis says in
one line what to start."""
from __future__ import annotations

import os
import subprocess
import sys

from b24app.devsandbox import free_port
from tests.conftest import make_config


def test_the_root_url_is_a_page_pointing_at_the_sandbox_portal(redis_client) -> None:
    from b24app import create_app

    app = create_app(make_config(B24_ENV="development", B24_OAUTH_URL="http://127.0.0.1:41237"),
                     configure_logs=False)
    page = app.test_client().get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert 'href="http://127.0.0.1:41237/"' in page.text, "where to find the demo portal"
    assert "/api/v1/openapi.json" in page.text


def test_the_suite_without_redis_stops_with_one_line_that_says_what_to_start() -> None:
    closed = f"redis://127.0.0.1:{free_port(0)}/15"  # a port nothing listens on
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/integration/test_dev_loop.py"],
                         env={**os.environ, "B24_TEST_REDIS_URL": closed}, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stdout[-2000:]
    assert f"Redis does not answer at {closed}" in run.stdout
    assert "redis-server" in run.stdout and "B24_TEST_REDIS_URL" in run.stdout
    assert run.stdout.count("Redis does not answer") == 1
    assert "Traceback" not in run.stdout + run.stderr and "ConnectionRefusedError" not in run.stdout

