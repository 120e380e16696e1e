"""A tiny client of our own /api/v1 for tests: sessions minted the way the UI gets them."""
from __future__ import annotations

from typing import Any

import requests


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


def session_for(b24, portal, user_id: int = 1) -> Api:
    auth = b24.sandbox.frame_auth(portal, user_id=user_id)
    response = requests.post(f"{b24.url}/api/v1/session", timeout=10,
                             json={"AUTH_ID": auth["AUTH_ID"], "member_id": portal.member_id, "DOMAIN": portal.domain})
    response.raise_for_status()
    return Api(b24.url, response.json()["token"])
