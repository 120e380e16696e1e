"""What one process holds: configuration, the Redis client and the services built on them.

Built once by the app factory and reached by the web layer through `current_app.extensions["b24"]`.
Nothing here is per portal: a portal's context is always passed explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .config import Config


@dataclass
class Services:
    config: Config
    redis: redis.Redis
