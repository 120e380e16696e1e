"""Every Redis key the app writes, defined once (docs/DESIGN.md §6).

A portal's keys carry its member_id in braces, a Redis Cluster hash tag, so all of them share one slot:
every Lua script and transaction touches the keys of one portal only. The domain index keys are only ever
used in single-key commands; the list of portals is a SCAN for PORTAL_PATTERN over every primary.

| key | type | holds |
|---|---|---|
| `b24:portal:{M}` | string | the portal's record, compact JSON (storage/installations.py) |
| `b24:domain:DOMAIN` | string | member_id of the portal at that address (a lookup aid) |
| `b24:lock:{M}` | string | the refresh single-flight lock (bitrix/tokens.py) |
| `b24:rate:{M}` | string | the request bucket's theoretical arrival time (bitrix/limiter.py) |
| `b24:op:{M}` | hash | operating time per method (bitrix/limiter.py) |
| `b24:cache:{M}:badges` | hash | the cached list, its generation, when a write last began (storage/badge_cache.py) |
| `b24:deals:{M}` | hash | deal ID → the activity that shows a badge on it, and the code (storage/deal_links.py) |
| `b24:deal:{M}:ID:lock` | string | serialises changes of that deal's badge |
| `b24:robot:{M}:SHA256` | string | one robot run (workflow_id + event_token): its state and outcome (robot_runs.py) |
| `b24:idem:{M}:SHA256` | hash | an `Idempotency-Key` and its result (storage/idempotency.py) |
| `b24:state:{M}:NONCE` | string | a single-use OAuth `state` (portals/authorization.py) |
| `b24:reauth:SHA256` | string | a one-time re-authorization link → member_id (portals/authorization.py) |
| `b24:user:{M}:ID:token` | string | a UI user's own frame token, encrypted, while the session lives (user_tokens.py) |
| `b24:user:{M}:ID:admin` | string | the portal's latest word: is that user an admin (user_tokens.py) |

One pub/sub channel, CHANGES (`b24:changes`): each message is a key of a portal whose cached list may no
longer be served — its record changed or a badge write began (storage/list_copies.py).
"""
from __future__ import annotations

PORTAL_PATTERN = "b24:portal:{*}"
CHANGES = "b24:changes"


def lua_announce(key: str) -> str:
    """A Lua statement that announces on CHANGES that the portal owning `key` (a Lua expression) changed."""
    return f"redis.call('PUBLISH', '{CHANGES}', {key})"


def _tag(member_id: str) -> str:
    return "{" + member_id + "}"


def portal(member_id: str) -> str:
    return f"b24:portal:{_tag(member_id)}"


def member_of(key: str) -> str:
    """Any key of a portal (`b24:portal:{M}`, `b24:cache:{M}:badges`, …) → M, its hash tag."""
    return key[key.index("{") + 1:key.index("}")]


def domain(name: str) -> str:
    return f"b24:domain:{name.lower()}"


def refresh_lock(member_id: str) -> str:
    return f"b24:lock:{_tag(member_id)}"


def rate(member_id: str) -> str:
    return f"b24:rate:{_tag(member_id)}"


def operating(member_id: str) -> str:
    return f"b24:op:{_tag(member_id)}"


def badge_cache(member_id: str) -> str:
    return f"b24:cache:{_tag(member_id)}:badges"


def deals(member_id: str) -> str:
    """One hash per portal, so "which deals show code X" reads one key, never the keyspace."""
    return f"b24:deals:{_tag(member_id)}"


def legacy_deal(member_id: str, deal_id: int) -> str:
    """Where earlier releases kept one deal's link; read once and moved into `deals`."""
    return f"b24:deal:{_tag(member_id)}:{deal_id}"


def deal_lock(member_id: str, deal_id: int) -> str:
    return f"{legacy_deal(member_id, deal_id)}:lock"


def robot_run(member_id: str, digest: str) -> str:
    return f"b24:robot:{_tag(member_id)}:{digest}"


def idempotency(member_id: str, digest: str) -> str:
    return f"b24:idem:{_tag(member_id)}:{digest}"


def oauth_state(member_id: str, nonce: str) -> str:
    return f"b24:state:{_tag(member_id)}:{nonce}"


def reauth_link(digest: str) -> str:
    return f"b24:reauth:{digest}"


def user_token(member_id: str, user_id: int) -> str:
    return f"b24:user:{_tag(member_id)}:{user_id}:token"


def admin_answer(member_id: str, user_id: int) -> str:
    return f"b24:user:{_tag(member_id)}:{user_id}:admin"


def user_patterns(member_id: str) -> tuple[str, ...]:
    """SCAN patterns of what the app keeps about a portal's users: deleted on every uninstall."""
    return (f"b24:user:{_glob_escape(_tag(member_id))}*",)


def purge_patterns(member_id: str) -> tuple[str, ...]:
    """SCAN patterns of everything kept for a portal besides its record and the global indexes."""
    tag = _glob_escape(_tag(member_id))
    return (f"b24:cache:{tag}*", f"b24:deal:{tag}*", f"b24:deals:{tag}", f"b24:idem:{tag}*", f"b24:robot:{tag}*",
            f"b24:state:{tag}*",
            f"b24:op:{tag}", f"b24:rate:{tag}", f"b24:lock:{tag}", *user_patterns(member_id))


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
