"""Profile the badge-add hot path with pyinstrument.

The app is built in this process (`create_app`, the same code gunicorn serves) and driven through Flask's
test client, so the profile shows the app's own work per request: session check, portal record, Redis
round-trips, the REST call to the sandbox (in its own process) and the JSON answer. gunicorn itself is
measured by bench/overhead.py. Writes `profile.txt` and `profile.html` to the results folder.

Usage: .venv/bin/python bench/profile_hot_path.py [--redis-url URL] [-n 500]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import DEFAULT_REDIS_URL, Harness, describe, harness


def run(h: Harness, *, requests_count: int = 500) -> dict[str, Any]:
    from pyinstrument import Profiler

    from b24app import create_app
    from b24app.config import load_config

    primary = next((a for a in h.apps if a.url.endswith(f":{h.app_port}")), None) or \
        h.start_app("profile-installer", port=h.app_port, B24_RATE="1000/100000")
    portal = h.installed_portal(rate=None)
    environ = h.environ(B24_APP_URL=primary.url, B24_RATE="1000/100000", B24_ENV="production")
    app = create_app(load_config(environ), configure_logs=False)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {h.session_token(portal['member_id'], portal['domain'])}"}

    def add(i: int) -> float:
        started = time.perf_counter()
        code = f"w{-i}" if i < 0 else f"p{i}"
        response = client.post("/api/v1/badges", headers=headers, json={
            "code": code, "title": {"en": "Call status"}, "value": "Missed", "type": "failure"})
        assert response.status_code == 201, response.get_data(as_text=True)
        return time.perf_counter() - started

    for i in range(30):
        add(-i - 1)
    plain = [add(i) for i in range(requests_count)]
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for i in range(requests_count, 2 * requests_count):
        add(i)
    profiler.stop()
    (h.results / "profile.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    (h.results / "profile.html").write_text(profiler.output_html())
    return {"benchmark": "profile", "in_process_badge_add": describe(plain),
            "profile_text": str(h.results / "profile.txt"), "profile_html": str(h.results / "profile.html")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()
    with harness(args.redis_url) as h:
        result = run(h, requests_count=args.n)
        print(result)
        print((h.results / "profile.txt").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
