"""The app under gunicorn (real worker processes) wired to a sandbox in this process, over 127.0.0.1.

`gunicorn_stack(redis_url, tmp)` yields a `Deployed`: the sandbox (Python API), the app's URL, its
configuration environment and helpers to install portals and mint sessions the way the UI does.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests
from cryptography.fernet import Fernet

from b24app.sandbox.launcher import SandboxServer, start_sandbox
from b24app.sandbox.models import Portal
from b24app.storage.crypto import TokenCipher
from b24app.storage.installations import RedisInstallationStore
from tests.support.processes import Served, clean_env, free_port, gunicorn


@dataclass
class Deployed:
    sandbox: SandboxServer
    served: Served
    env: dict[str, str]
    redis_url: str

    @property
    def url(self) -> str:
        return self.served.url

    def store(self) -> RedisInstallationStore:
        return RedisInstallationStore(redis.Redis.from_url(self.redis_url),
                                      TokenCipher(tuple(self.env["B24_TOKEN_KEYS"].split(","))))

    def installed_portal(self, **kwargs: Any) -> Portal:
        portal = self.sandbox.create_portal(**kwargs)
        assert self.sandbox.install(portal).status == 200
        assert all(d.status == 200 for d in self.sandbox.install_finish(portal))
        deadline = time.monotonic() + 20
        while self.store().get(portal.member_id) is None:
            assert time.monotonic() < deadline, "the install never reached the store"
            time.sleep(0.05)
        return portal

    def session(self, portal: Portal, user_id: int = 1) -> requests.Session:
        auth = self.sandbox.frame_auth(portal, user_id=user_id)
        response = requests.post(f"{self.url}/api/v1/session", timeout=30, json={
            "AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id, "DOMAIN": portal.domain})
        response.raise_for_status()
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return http


@contextmanager
def gunicorn_stack(redis_url: str, tmp: Path, *, workers: int = 2, threads: int = 4,
                   **env: str) -> Iterator[Deployed]:
    client_id = f"app.faults.{secrets.token_hex(4)}"
    client_secret = secrets.token_urlsafe(32)
    with start_sandbox() as sandbox:
        environ = clean_env(**{
            "B24_ENV": "production", "B24_CLIENT_ID": client_id, "B24_CLIENT_SECRET": client_secret,
            "B24_OAUTH_URL": sandbox.oauth_url, "B24_ALLOW_HTTP": "1", "B24_SECRET_KEY": secrets.token_hex(24),
            "B24_TOKEN_KEYS": Fernet.generate_key().decode(), "REDIS_URL": redis_url, "B24_RATE": "1000/100000",
            **env})
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        environ["B24_APP_URL"] = url
        sandbox.register_app(client_id, client_secret, app_url=url)
        with gunicorn(environ, tmp / "gunicorn.log", workers=workers, threads=threads, port=port) as served:
            yield Deployed(sandbox=sandbox, served=served, env=environ, redis_url=redis_url)
