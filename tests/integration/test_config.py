"""Configuration contract (docs/DESIGN.md §3): every variable parsed, every mistake named in one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from b24app.config import REPO_ROOT, ConfigError, load_config, parse_rate

ROOT = REPO_ROOT
FERNET = Fernet.generate_key().decode()
PRODUCTION = {
    "B24_ENV": "production",
    "B24_CLIENT_ID": "app.abc.123",
    "B24_CLIENT_SECRET": "secret-value-123456",
    "B24_APP_URL": "https://badges.example.com/",
    "B24_SECRET_KEY": "k" * 32,
    "B24_TOKEN_KEYS": FERNET,
}


def test_complete_production_config_is_parsed() -> None:
    keys = f"{FERNET}, {Fernet.generate_key().decode()}"
    config = load_config({**PRODUCTION, "B24_RATE": "5/250", "B24_TOKEN_KEYS": keys})
    assert config.is_production
    assert config.app_url == "https://badges.example.com"
    assert config.oauth_url == "https://oauth.bitrix.info"
    assert (config.rate_rps, config.rate_burst) == (5.0, 250)
    assert len(config.token_keys) == 2
    assert config.redis_url is None
    assert config.missing() == []
    assert "oauth.bitrix24.tech" in config.oauth_hosts
    assert "secret-value" not in repr(config)


@pytest.mark.parametrize("variable", ["B24_CLIENT_ID", "B24_CLIENT_SECRET", "B24_APP_URL", "B24_SECRET_KEY",
                                      "B24_TOKEN_KEYS"])
def test_production_requires(variable: str) -> None:
    environ = {k: v for k, v in PRODUCTION.items() if k != variable}
    with pytest.raises(ConfigError) as err:
        load_config(environ)
    assert err.value.variable == variable
    assert str(err.value).startswith(f"{variable}: ")


@pytest.mark.parametrize(("variable", "value"), [
    ("B24_ENV", "staging"),
    ("B24_APP_URL", "badges.example.com"),
    ("B24_APP_URL", "http://badges.example.com"),
    ("B24_APP_URL", "https://x.example.com/?a=1"),
    ("B24_OAUTH_URL", "ftp://oauth.example.com"),
    ("B24_OAUTH_URL", "http://oauth.example.com"),
    ("B24_SECRET_KEY", "short"),
    ("B24_TOKEN_KEYS", "not-a-fernet-key"),
    ("B24_TOKEN_KEYS", f"{FERNET},broken"),
    ("B24_TOKEN_KEYS", " , "),
    ("REDIS_URL", "mysql://localhost"),
    ("REDIS_URL", "localhost:6379"),
    ("B24_ALLOW_HTTP", "maybe"),
    ("B24_RATE", "abc"),
    ("B24_RATE", "2"),
    ("B24_RATE", "0/50"),
    ("B24_RATE", "2/0"),
    ("B24_RATE", "2/1.5"),
    ("B24_BADGE_PREFIX", "9lives"),
    ("B24_BADGE_PREFIX", "way_too_long_prefix"),
])
def test_malformed_value_is_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({**PRODUCTION, variable: value})
    assert err.value.variable == variable
    assert "\n" not in str(err.value)


def test_allow_http_admits_plain_http_urls() -> None:
    config = load_config({**PRODUCTION, "B24_ALLOW_HTTP": "1", "B24_APP_URL": "http://127.0.0.1:5000",
                          "B24_OAUTH_URL": "http://127.0.0.1:9000"})
    assert config.allow_http
    assert "127.0.0.1:9000" in config.oauth_hosts


def test_development_generates_and_keeps_secrets(tmp_path: Path) -> None:
    first = load_config({"B24_ENV": "development", "B24_DATA_DIR": str(tmp_path)})
    second = load_config({"B24_ENV": "development", "B24_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert first.token_keys == second.token_keys
    Fernet(first.token_keys[0])
    stored = tmp_path / "dev-secrets.json"
    assert json.loads(stored.read_text())["secret_key"] == first.secret_key
    assert stored.stat().st_mode & 0o077 == 0
    assert any("B24_SECRET_KEY" in warning for warning in first.warnings)
    assert first.missing() == ["B24_CLIENT_ID", "B24_CLIENT_SECRET", "B24_APP_URL"]


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("B24_") and k != "REDIS_URL"}
    return subprocess.run(argv, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("variable", "value"), [("B24_RATE", "fast"), ("B24_CLIENT_ID", "")])
def test_gunicorn_stops_with_one_line(variable: str, value: str) -> None:
    result = _run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
                  **{**PRODUCTION, variable: value})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith(f"configuration error: {variable}: ")


def test_flask_cli_stops_with_one_line() -> None:
    result = _run([sys.executable, "-m", "flask", "--app", "app", "routes"], B24_ENV="development",
                  B24_TOKEN_KEYS="nope", REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]]
    assert "B24_TOKEN_KEYS" in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2/50", (2.0, 50)), ("5/250", (5.0, 250)), (" 0.5 / 1 ", (0.5, 1)), (".25/3", (0.25, 3))],
)
def test_parse_accepts_rps_slash_burst(value, expected):
    assert parse_rate(value) == expected


@pytest.mark.parametrize(
    "value", ["", "2", "2/", "/50", "0/50", "-1/50", "2/0", "2/1.5", "a/b", "2/50/1", "inf/50", "nan/5", "2:50"]
)
def test_parse_rejects_malformed_values(value):
    with pytest.raises(ConfigError, match="B24_RATE") as exc:
        parse_rate(value)
    assert "\n" not in str(exc.value)
    assert repr(value) in str(exc.value)
