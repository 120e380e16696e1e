"""The hello-world floor (docs/DESIGN.md §9): a trivial Flask route served by the app's own gunicorn setup.

`gunicorn -c gunicorn.conf.py bench.floor_app:app`, started by bench/harness.py (`Harness.start_floor`) with the
same environment as the app: the same workers × threads (gthread), the same access log (JSON, redacted) and
error log configuration, the same Prometheus multiprocess directory setup; only the WSGI callable differs.
Every HTTP benchmark measures this floor in the same run and states its figures as a ratio to it: what it
costs to get any request through gunicorn and Flask on this machine, with no work of the app's.

`/floor` answers GET and POST with a small JSON object and reads nothing of the request (a POST body is
still received by gunicorn, as for any request).
"""
from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.route("/floor", methods=["GET", "POST"])
def floor() -> Response:
    return jsonify(ok=True)
