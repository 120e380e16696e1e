"""batch (docs/bitrix24-protocol.md §3.4): up to 50 commands, `$result[key][field]` references, halt,
per-command errors.

Each command is a query string `method?param=value&...` parsed with PHP bracket rules. The batch
is one HTTP request for the rate limiter; every sub-call is accounted to its own method's operating
time. Empty collections come back as `[]`, and a collection keyed 0..n-1 as a JSON list, exactly
as PHP's json_encode would produce them.
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import RestError
from ..phpquery import parse_query, php_array
from .base import CallContext, rest_method

MAX_COMMANDS = 50
_REF = re.compile(r"\$result\[([^\]]+)\]((?:\[[^\]]*\])*)")
_MISSING = object()


def _lookup(results: dict[str, Any], key: str, path: str) -> Any:
    value: Any = results.get(key, _MISSING)
    for part in re.findall(r"\[([^\]]*)\]", path):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _as_php_string(value: Any) -> str:
    if value is _MISSING or value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, dict | list):
        return "Array"
    return str(value)


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace `$result[...]` references in every string of a parsed parameter tree."""
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if not isinstance(value, str) or "$result[" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole:
        found = _lookup(results, whole.group(1), whole.group(2))
        return "" if found is _MISSING else found
    return _REF.sub(lambda m: _as_php_string(_lookup(results, m.group(1), m.group(2))), value)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "y", "yes")


@rest_method("batch")
def batch(ctx: CallContext, params: dict[str, Any]) -> Any:
    """Run the commands in order; returns the batch result (or the holding Outcome of a timeout fault)."""
    raw = params.get("cmd")
    if isinstance(raw, list):
        commands = {str(i): v for i, v in enumerate(raw)}
    elif isinstance(raw, dict):
        commands = {str(k): v for k, v in raw.items()}
    else:
        commands = {}
    halt = _truthy(params.get("halt", 0))
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    nexts: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for index, (key, command) in enumerate(commands.items()):
        if index >= MAX_COMMANDS:
            errors[key] = RestError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded").body()
            continue
        method, _, query = str(command).partition("?")
        method = method.strip().lower().removesuffix(".json")
        if method == "batch":
            errors[key] = RestError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage").body()
            if halt:
                break
            continue
        sub_params = _substitute(parse_query(query), results)
        sub_params.pop("auth", None)
        outcome = ctx.dispatcher.execute(ctx, method, sub_params, in_batch=True)
        if outcome.hold is not None:
            return outcome  # a timeout fault inside the batch holds the whole request
        if outcome.error is not None:
            errors[key] = outcome.error.body()
            if halt:
                break
            continue
        results[key] = outcome.result
        times[key] = outcome.time
        if outcome.total is not None:
            totals[key] = outcome.total
        if outcome.next is not None:
            nexts[key] = outcome.next
    return {"result": php_array(results), "result_error": php_array(errors), "result_total": php_array(totals),
            "result_next": php_array(nexts), "result_time": php_array(times)}
