"""Old-style list methods: filter prefixes, order and paging (docs/bitrix24-protocol.md §3.2, §3.5).

A filter key may carry a prefix that says how to compare: `>=`, `>`, `<=`, `<`, `=` (the default),
`!=`/`!` (not equal), `@`/`!@` (in / not in a list), `%`/`!%` (contains / does not contain) and
`=%`/`%=`/`!=%`/`!%=` (LIKE with the `%` wildcards in the value). Pages hold 50 rows; `start=-1`
skips counting, so the answer has `total: 0` and no `next` and clients page with a `>ID` cursor.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .phpquery import as_list

PAGE_SIZE = 50
# Longest first, so `>=` is not read as `>` and `!=%` not as `!=`.
PREFIXES = ("!=%", "!%=", ">=", "<=", "!@", "=%", "%=", "!%", "!=", ">", "<", "@", "%", "=", "!")
Normalizer = Callable[[str, Any], list[str]]


@dataclass(frozen=True)
class Condition:
    """One filter entry: `field` compared by `op` with the wanted values (strings, as PHP sees them)."""

    field: str
    op: str
    values: tuple[str, ...]


def parse_filter(filters: Mapping[str, Any], normalize: Normalizer | None = None) -> list[Condition]:
    """`{">=ID": 5, "!COMPLETED": "Y"}` -> conditions; `normalize(field, value)` maps values per field."""
    conditions = []
    for raw_key, value in filters.items():
        key = str(raw_key).upper()
        op = next((p for p in PREFIXES if key.startswith(p)), "=")
        field = key[len(op):] if key.startswith(op) else key
        listed = as_list(value)
        values = [_as_php_string(v) for v in listed] if listed is not None else [_as_php_string(value)]
        if normalize is not None:
            values = normalize(field, values)
        conditions.append(Condition(field, op, tuple(values)))
    return conditions


def matches(row: Mapping[str, Any], conditions: Iterable[Condition]) -> bool:
    """Every condition on a field the row has must hold; unknown fields are ignored, as core does."""
    return all(_holds(_as_php_string(row[c.field]), c) for c in conditions if c.field in row)


def _holds(actual: str, condition: Condition) -> bool:
    op, wanted = condition.op, condition.values
    if op in ("=", "@"):
        return actual in wanted
    if op in ("!", "!=", "!@"):
        return actual not in wanted
    if op in ("%", "!%"):
        found = any(w.lower() in actual.lower() for w in wanted)
        return found if op == "%" else not found
    if op in ("=%", "%=", "!=%", "!%="):
        found = any(_like(w, actual) for w in wanted)
        return found if op in ("=%", "%=") else not found
    return any(_compare(actual, w, op) for w in wanted)


def _like(pattern: str, actual: str) -> bool:
    """SQL LIKE: `%` is any run of characters, `_` one character; case-insensitive, as MySQL collations are."""
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, actual, re.IGNORECASE | re.DOTALL) is not None


def _compare(actual: str, wanted: str, op: str) -> bool:
    left, right = _comparable(actual, wanted)
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    return left <= right


def _comparable(actual: str, wanted: str) -> tuple[Any, Any]:
    """Numbers compare as numbers, ISO dates as instants, anything else as text."""
    for convert in (float, _instant):
        try:
            return convert(actual), convert(wanted)
        except (TypeError, ValueError):
            continue
    return actual, wanted


def _instant(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _as_php_string(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    return str(value)


def sort_rows(rows: list[dict[str, Any]], order: Mapping[str, Any], default: str = "ID") -> list[dict[str, Any]]:
    """Sort by the `order` keys (ASC/DESC) in turn; by `default` ascending when no key is known."""
    keys = [(str(k).upper(), str(v).upper() == "DESC") for k, v in order.items()]
    keys = [(k, desc) for k, desc in keys if rows and k in rows[0]] or [(default, False)]
    ordered = list(rows)
    for key, descending in reversed(keys):
        ordered.sort(key=_sorter(key), reverse=descending)
    return ordered


def _sorter(key: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(key))


def _sort_key(value: Any) -> tuple[int, Any]:
    text = _as_php_string(value)
    try:
        return 0, float(text)
    except ValueError:
        return 1, text


def start_of(value: Any) -> int:
    """The `start` parameter: an offset, or -1 (any negative) for a page without counting."""
    try:
        start = int(str(value).strip()) if value not in (None, "") else 0
    except ValueError:
        return 0
    return -1 if start < 0 else start


def page(rows: list[Any], start: int) -> tuple[list[Any], int, int | None]:
    """(page, total, next): `start=-1` gives the first 50 rows, `total` 0 and no `next` (§3.5)."""
    if start < 0:
        return rows[:PAGE_SIZE], 0, None
    chunk = rows[start:start + PAGE_SIZE]
    more = start + PAGE_SIZE < len(rows)
    return chunk, len(rows), start + PAGE_SIZE if more else None
