"""Structured logging: one JSON object per line, a request id on every line, secrets redacted.

The redaction filter sits on the handlers, so it sees every record from every library (werkzeug's
request lines, gunicorn's access log, requests/urllib3 debug output) after the message is rendered:
messages, arguments, exception text and URLs all pass through it. Redaction works on key names
(`access_token=…`, `"refresh_token": "…"`, `auth[application_token]=…`, `Authorization: Bearer …`)
plus the exact values of configured secrets such as the client secret.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TextIO

REDACTED = "[REDACTED]"
HANDLER_NAME = "b24app"
SECRET_KEYS = ("auth", "access_token", "refresh_token", "application_token", "client_secret",
               "auth_id", "refresh_id", "code", "password", "secret", "token")
_KEYS = "|".join(SECRET_KEYS)
# key=value in query strings and form bodies, including bracket keys such as auth[access_token]=…
_QUERY_RE = re.compile(rf"(?i)((?:^|[?&;\s,(\[])(?:[\w]*\[)?(?:{_KEYS})\]?=)([^&\s\"',;)]+)")
# "key": "value" / 'key': 'value' in JSON and Python reprs
_MAPPING_RE = re.compile(rf"(?i)([\"'](?:{_KEYS})[\"']\s*:\s*)([\"'])(.*?)(?<!\\)\2")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]+)")
# Terminal styling: werkzeug colours its request lines when stderr is a terminal; JSON carries none.
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("b24_request_id", default=None)
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secret-bearing key/value pairs and any known secret value in `text`."""
    text = _QUERY_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _MAPPING_RE.sub(lambda m: m.group(1) + m.group(2) + REDACTED + m.group(2), text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Renders the record, then rewrites message, exception text and extra fields redacted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD_ATTRS:
                continue
            if key.lower() in SECRET_KEYS:
                record.__dict__[key] = REDACTED
            elif isinstance(value, str):
                record.__dict__[key] = redact(value, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _ANSI_RE.sub("", record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key != "request_id" and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def make_handler(stream: TextIO | None = None, secrets: Iterable[str] = ()) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(secrets))
    handler.set_name(HANDLER_NAME)
    return handler


def configure_logging(level: str | int = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None) -> None:
    """Install the JSON + redaction handler on the root logger, replacing an earlier one.

    `level` applies to this app's loggers; libraries stay at INFO so debugging the app is readable.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(make_handler(stream, secrets))
    root.setLevel(logging.INFO)
    logging.getLogger("b24app").setLevel(level)
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.handlers.clear()
    werkzeug.propagate = True


def gunicorn_logconfig(level: str = "INFO", secrets: Iterable[str] = ()) -> dict[str, Any]:
    """`logconfig_dict` for gunicorn: its error log goes through our root handler, access lines to stdout."""
    handler = {"formatter": "json", "filters": ["redact"], "class": "logging.StreamHandler"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter, "secrets": list(secrets)}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            HANDLER_NAME: {**handler, "stream": "ext://sys.stderr"},
            "access": {**handler, "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
            "b24app": {"level": level},
        },
        "root": {"level": "INFO", "handlers": [HANDLER_NAME]},
    }


class LineThrottle:
    """At most one line per key every `interval` seconds, saying how many were held back since the last.

    A failure that repeats on every request — one portal's users refused by its rate limit, every request
    while Redis is down — is one situation, not thousands of lines: a portal's users must not be able to
    flood the app's logs, and writing a line per refusal would cost the flood's victims CPU. The metrics
    still count every request.
    """

    def __init__(self, interval: float = 10.0, *, clock: Callable[[], float] = time.monotonic,
                 size: int = 1024) -> None:
        self.interval = interval
        self._clock = clock
        self._size = size
        self._last: dict[Hashable, tuple[float, int]] = {}  # key → (when its last line went out, held back since)
        self._lock = threading.Lock()

    def admit(self, key: Hashable) -> int | None:
        """None: hold this line back; else write it, with the number held back since the last one."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.interval:
                self._last[key] = (last[0], last[1] + 1)
                return None
            if len(self._last) >= self._size:
                self._last = {k: v for k, v in self._last.items() if now - v[0] < self.interval}
            self._last[key] = (now, 0)
            return last[1] if last is not None else 0
