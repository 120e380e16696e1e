"""WSGI entry point: `gunicorn app:app`, `flask --app app run`, `flask --app app b24 …`."""
import sys

from b24app import create_app
from b24app.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"configuration error: {exc}")
