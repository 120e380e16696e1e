"""Response envelopes (docs/bitrix24-protocol.md §3.2, §3.3): `{result, time{...}}` and `{error, error_description}`."""
from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from typing import Any

from flask import Response

JSON_TYPE = "application/json; charset=utf-8"


def iso(ts: float, tz: tzinfo = UTC) -> str:
    """`2024-07-23T11:11:02+03:00`: REST dates carry the portal's offset (docs/bitrix24-protocol.md §3.2)."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def local(ts: float, tz: tzinfo, fmt: str) -> str:
    """A date in the portal's zone without an offset, for the fields the core sends that way (§6.3)."""
    return datetime.fromtimestamp(ts, tz).strftime(fmt)


def time_block(start: float, finish: float, processing: float, operating: float | None = None,
               operating_reset_at: int | None = None, tz: tzinfo = UTC) -> dict[str, Any]:
    """The `time` object; `operating`/`operating_reset_at` only where the cloud reports them."""
    block: dict[str, Any] = {"start": round(start, 6), "finish": round(finish, 6),
                             "duration": round(finish - start, 6), "processing": round(processing, 6),
                             "date_start": iso(start, tz), "date_finish": iso(finish, tz)}
    if operating is not None:
        block["operating_reset_at"] = operating_reset_at
        block["operating"] = round(operating, 4)
    return block


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(body), status=status, content_type=JSON_TYPE)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


CORS_HEADERS = {"Access-Control-Allow-Origin": "*"}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Accept, X-Requested-With",
    "Access-Control-Max-Age": "600",
}
