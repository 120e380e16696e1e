"""Lenient conversions of values Bitrix24 sends as numbers, strings or nothing."""
from __future__ import annotations

from typing import Any


def to_int(value: Any) -> int | None:
    """`7`, `"7"` → 7; None, "", "x", 7.5-as-text → None."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
