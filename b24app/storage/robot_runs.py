"""What became of each robot run: `b24:robot:{MEMBER}:<sha256(workflow_id|event_token)>` (storage/keys.py).

Bitrix24's queue may deliver a run twice; the first delivery claims the key (SET NX) and does the work,
a repeat finds it and does nothing (docs/bitrix24-protocol.md §11.3). The outcome stays a week for
support questions ("did the robot run on deal 5?").
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import redis

from . import keys

KEEP = 7 * 86400


def run_digest(workflow_id: str, event_token: str) -> str:
    return hashlib.sha256(f"{workflow_id}|{event_token}".encode()).hexdigest()


class RobotRunLog:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def claim(self, member_id: str, digest: str, **facts: Any) -> bool:
        """True for the first delivery of a run; False for every repeat."""
        entry = json.dumps({"state": "queued", "at": time.time(), **facts})
        return bool(self._redis.set(keys.robot_run(member_id, digest), entry, nx=True, ex=KEEP))

    def release(self, member_id: str, digest: str) -> None:
        """Undo a claim whose work could not even be queued, so that a redelivery does it."""
        self._redis.delete(keys.robot_run(member_id, digest))

    def finish(self, member_id: str, digest: str, *, ok: bool, message: str, **facts: Any) -> None:
        entry = json.dumps({"state": "done" if ok else "failed", "at": time.time(), "message": message, **facts})
        self._redis.set(keys.robot_run(member_id, digest), entry, ex=KEEP)

    def get(self, member_id: str, digest: str) -> dict[str, Any] | None:
        raw = self._redis.get(keys.robot_run(member_id, digest))
        try:
            found = json.loads(raw) if raw else None
        except ValueError:
            return None
        return found if isinstance(found, dict) else None
