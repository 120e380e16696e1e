"""Activity Badges: a multi-portal Bitrix24 app backend."""
from .factory import create_app

__all__ = ["create_app"]
