"""PHP-style bracket parameters, both ways.

Bitrix24 is PHP: a form or query `title[en]=Hi&ids[]=1&ids[]=2` arrives as nested arrays, batch
commands are query strings parsed the same way (docs/bitrix24-protocol.md §3.4), and events are POSTed with flat
bracket keys such as `auth[access_token]` (docs/bitrix24-protocol.md §1.4). PHP arrays become `dict`s with string
keys here; `[]` appends with the next integer key, like PHP does.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus

_SEGMENT = re.compile(r"\[([^\]]*)\]")


def _split_key(key: str) -> list[str | None]:
    """`a[b][]` -> ['a', 'b', None]; a key without brackets is a single segment."""
    open_at = key.find("[")
    if open_at <= 0:
        return [key]
    base, rest = key[:open_at], key[open_at:]
    segments: list[str | None] = [base]
    pos = 0
    for match in _SEGMENT.finditer(rest):
        if match.start() != pos:
            break
        segments.append(match.group(1) if match.group(1) != "" else None)
        pos = match.end()
    if pos == 0:
        return [key]
    return segments


def _next_index(container: dict[str, Any]) -> str:
    ints = [int(k) for k in container if k.lstrip("-").isdigit()]
    return str(max(ints) + 1 if ints else 0)


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build PHP's `$_POST`-like nested structure from (key, value) pairs."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not key:
            continue
        segments = _split_key(key)
        node = result
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            name = _next_index(node) if seg is None else seg
            if last:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = {}
                    node[name] = child
                node = child
    return result


def parse_query(query: str) -> dict[str, Any]:
    """Parse a raw query string (or a batch command's parameters) the way PHP does."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return parse_pairs(pairs)


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dict -> flat bracket-key pairs, e.g. {'auth': {'domain': x}} -> [('auth[domain]', x)]."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs.extend(flatten(value, name))
        elif isinstance(value, list | tuple):
            pairs.extend(flatten({str(i): v for i, v in enumerate(value)}, name))
        elif value is None:
            pairs.append((name, ""))
        elif isinstance(value, bool):
            pairs.append((name, "1" if value else ""))
        else:
            pairs.append((name, str(value)))
    return pairs


def build_query(data: Mapping[str, Any]) -> str:
    """PHP `http_build_query` equivalent (used to build batch commands in tests and docs)."""
    return "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in flatten(data))


def as_list(value: Any) -> list[Any] | None:
    """A PHP array given as JSON list or as bracket dict -> list of values; None if not an array."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return None


def php_array(value: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """What PHP's json_encode makes of an array: a list if keys are exactly 0..n-1 in order."""
    keys: list[Any] = list(value.keys())
    if keys == [str(i) for i in range(len(keys))] or keys == list(range(len(keys))):
        return list(value.values())
    return value
