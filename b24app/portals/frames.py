"""What a portal POSTs to the installer, the app page and every placement, parsed and nothing more.

Nothing here is trusted yet: portals/verification.py shows the frame's token to the OAuth server
before anything is believed (docs/bitrix24-protocol.md §1.2, §6.4).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..coerce import to_int
from ..errors import BadRequest, IncompleteFrame

MAX_KEY_LENGTH = 200
MAX_KEY_DEPTH = 6


@dataclass(frozen=True)
class FrameRequest:
    """The iframe POST a portal sends to the installer, the app page and every placement (§1.2)."""

    domain: str
    member_id: str
    auth_id: str = field(repr=False)
    refresh_id: str = field(default="", repr=False)
    auth_expires: int = 3600
    protocol: str = "1"
    lang: str = "en"
    app_sid: str = ""
    status: str = ""
    placement: str = "DEFAULT"
    placement_options: dict[str, Any] = field(default_factory=dict)
    application_token: str = field(default="", repr=False)

    @classmethod
    def parse(cls, form: Mapping[str, str], args: Mapping[str, str]) -> FrameRequest:
        def get(name: str, default: str = "") -> str:
            return str(form.get(name) or args.get(name) or default).strip()

        domain, member_id, auth_id = get("DOMAIN").lower(), get("member_id"), get("AUTH_ID")
        missing = [name for name, value in (("DOMAIN", domain), ("member_id", member_id), ("AUTH_ID", auth_id))
                   if not value]
        if missing:
            raise IncompleteFrame(f"missing {', '.join(missing)}: open this app from your Bitrix24 portal")
        expires = to_int(get("AUTH_EXPIRES", "3600"))
        return cls(domain=domain, member_id=member_id, auth_id=auth_id, refresh_id=get("REFRESH_ID"),
                   auth_expires=max(0, min(3600 if expires is None else expires, 3600)),
                   protocol=get("PROTOCOL", "1"), lang=get("LANG", "en")[:5].lower(), app_sid=get("APP_SID")[:128],
                   status=get("status"), placement=get("PLACEMENT", "DEFAULT").upper()[:100],
                   placement_options=parse_placement_options(get("PLACEMENT_OPTIONS")),
                   application_token=get("APPLICATION_TOKEN"))


def parse_placement_options(raw: str) -> dict[str, Any]:
    """PLACEMENT_OPTIONS is a JSON string, or junk such as 'undefined' on some placements (§1.2)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def unflatten(form: Mapping[str, Any]) -> dict[str, Any]:
    """`auth[member_id]=x&data[FIELDS][ID]=7` → {"auth": {"member_id": "x"}, "data": {"FIELDS": {"ID": "7"}}}.

    Bitrix24 nests at most a few levels; a longer or deeper key is refused, never built."""
    tree: dict[str, Any] = {}
    for raw_key, value in form.items():
        head, _, rest = raw_key.partition("[")
        parts = [head] + [p.rstrip("]") for p in rest.split("[")] if rest else [head]
        if len(raw_key) > MAX_KEY_LENGTH or len(parts) > MAX_KEY_DEPTH:
            raise BadRequest(f"form key too long or too deeply nested (at most {MAX_KEY_LENGTH} characters and "
                             f"{MAX_KEY_DEPTH} levels)", fields={raw_key[:40]: "Too long or too deeply nested."})
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return tree


def portal_origin(client_endpoint: str) -> str:
    """`https://portal.bitrix24.com/rest/` → `https://portal.bitrix24.com`: what may frame our pages."""
    parts = urlsplit(client_endpoint)
    return f"{parts.scheme}://{parts.netloc}"
