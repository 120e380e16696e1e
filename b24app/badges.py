"""Badge use cases: list (cached), get, create, delete, import, and showing a badge on a deal.

Every operation takes the portal's REST client explicitly. Writes are never blindly repeated: when
`crm.activity.badge.add` fails with an unknown outcome (5xx, timeout), `crm.activity.badge.get`
says whether it happened, so a retry never creates a duplicate or reports a false error.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from . import metrics
from .badge_rules import BadgeInput, BadgeValidationError, display_text, validate_badge
from .errors import AppError
from .rest import PortalClient
from .rest_errors import B24Error, Conflict, InvalidArgument, NotFound, PortalServerError, TransportError
from .store import ACTIVE, RedisInstallationStore

log = logging.getLogger(__name__)

CACHE_TTL = 30
DEAL_OWNER_TYPE = 2
MAX_IMPORT = 500
UNKNOWN_OUTCOME = (PortalServerError, TransportError)

# A hit is served only while the portal's record (KEYS[2]) is active with tokens, so an uninstalled or
# dead portal never answers from the cache; both keys share the portal's hash tag.
_CACHE_READ = """
local data = redis.call('HGET', KEYS[1], 'data')
local gen = redis.call('HGET', KEYS[1], 'gen') or '0'
if redis.call('HGET', KEYS[2], 'state') ~= ARGV[1] or redis.call('HEXISTS', KEYS[2], 'tokens') == 0 then
  data = false
end
return {data or false, gen}
"""
# Store a listing only if no write happened since it was requested (the generation is unchanged).
_CACHE_FILL = """
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'gen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
_CACHE_BUMP = """
redis.call('HDEL', KEYS[1], 'data')
redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class BadgeExists(AppError):
    status = 409
    code = "BADGE_EXISTS"


class BadgeNotFound(AppError):
    status = 404
    code = "NOT_FOUND"


@dataclass(frozen=True)
class DealBadge:
    deal_id: int
    code: str
    activity_id: int
    created: bool


def validation_error(exc: BadgeValidationError) -> AppError:
    return AppError(exc.message, code="VALIDATION_ERROR", status=400, fields=dict(exc.fields))


def portal_validation_error(exc: B24Error) -> AppError:
    """The portal refused input we considered valid (e.g. a language it does not have)."""
    text = exc.description or exc.code
    field = "title" if "title" in text else "value" if "value" in text else "code" if "code" in text else "badge"
    return AppError(f"The portal refused the badge: {text}", code="VALIDATION_ERROR", status=400,
                    fields={field: text})


class Badges:
    def __init__(self, redis_client: redis.Redis, *, prefix: str = "", cache_ttl: int = CACHE_TTL) -> None:
        self._redis = redis_client
        self.prefix = prefix
        self._ttl = cache_ttl
        self._read = redis_client.register_script(_CACHE_READ)
        self._fill = redis_client.register_script(_CACHE_FILL)
        self._bump = redis_client.register_script(_CACHE_BUMP)

    @staticmethod
    def cache_key(member_id: str) -> str:
        return f"b24:cache:{{{member_id}}}:badges"

    @staticmethod
    def deal_key(member_id: str, deal_id: int) -> str:
        return f"b24:deal:{{{member_id}}}:{deal_id}"

    # -- reads ---------------------------------------------------------------------------------

    def listing(self, member_id: str, portal: Callable[[], PortalClient]) -> tuple[bytes, bool]:
        """All badges of the portal as a JSON array, and whether it came from the cache.

        A hit costs one Redis round-trip (which also checks that the portal is still active) and no
        decoding; `portal` is called only on a miss, so the token record is read only when needed.
        """
        key = self.cache_key(member_id)
        data, generation = self._read(keys=[key, RedisInstallationStore.key(member_id)], args=[ACTIVE])
        metrics.badge_cache(hit=bool(data))
        if data:
            return data, True
        encoded = json.dumps(self._fetch_all(portal()), ensure_ascii=False, separators=(",", ":")).encode()
        self._fill(keys=[key], args=[generation, encoded, self._ttl])
        return encoded, False

    @staticmethod
    def _fetch_all(portal: PortalClient) -> list[dict[str, Any]]:
        """badge.list is not paginated: it returns every badge of the portal (protocol §5.4)."""
        result = portal.call("crm.activity.badge.list").result
        badges = result.get("badges", []) if isinstance(result, dict) else []
        return [b for b in badges if isinstance(b, dict)]

    def get(self, portal: PortalClient, code: str) -> dict[str, Any]:
        found = self._find(portal, code)
        if found is None:
            raise BadgeNotFound(f"There is no badge with the code {code}.")
        return found

    def _find(self, portal: PortalClient, code: str) -> dict[str, Any] | None:
        try:
            result = portal.call("crm.activity.badge.get", {"code": code}).result
        except NotFound:
            return None
        return result.get("badge") if isinstance(result, dict) else None

    # -- writes --------------------------------------------------------------------------------

    def validate(self, payload: object) -> BadgeInput:
        try:
            return validate_badge(payload, prefix=self.prefix)
        except BadgeValidationError as exc:
            raise validation_error(exc) from None

    def create(self, portal: PortalClient, badge: BadgeInput) -> dict[str, Any]:
        try:
            return self._add(portal, badge)
        finally:
            self.invalidate(portal.member_id)

    def _add(self, portal: PortalClient, badge: BadgeInput, *, resolved: bool = False) -> dict[str, Any]:
        try:
            result = portal.call("crm.activity.badge.add", badge.to_params()).result
        except Conflict as exc:
            raise BadgeExists(f"A badge with the code {badge.code} already exists on this portal.") from exc
        except InvalidArgument as exc:
            raise portal_validation_error(exc) from exc
        except UNKNOWN_OUTCOME as exc:
            found = self._find(portal, badge.code)
            if found is not None:
                if _same(found, badge):
                    log.info("badge.add outcome resolved: it was created", extra={"code": badge.code})
                    return found
                raise BadgeExists(f"A badge with the code {badge.code} already exists on this portal.") from exc
            if resolved:
                raise
            log.info("badge.add outcome resolved: not created, trying once more", extra={"code": badge.code})
            return self._add(portal, badge, resolved=True)
        return result.get("badge", badge.to_params()) if isinstance(result, dict) else badge.to_params()

    def delete(self, portal: PortalClient, code: str) -> None:
        try:
            portal.call("crm.activity.badge.delete", {"code": code})
        except UNKNOWN_OUTCOME:
            if self._find(portal, code) is not None:
                raise
            log.info("badge.delete outcome resolved: it was deleted", extra={"code": code})
        except NotFound:
            raise BadgeNotFound(f"There is no badge with the code {code}.") from None
        except Conflict as exc:
            raise AppError("Deals still show this badge. Clear it from those deals (or complete their "
                           "activities) before deleting it.", code="ENTITY_WITH_BADGE_EXISTS", status=409) from exc
        finally:
            self.invalidate(portal.member_id)

    def invalidate(self, member_id: str) -> None:
        self._bump(keys=[self.cache_key(member_id)], args=[self._ttl])

    def import_many(self, portal: PortalClient, items: Sequence[object]) -> list[dict[str, Any]]:
        """Create up to 500 badges through `batch` (50 per request); one result per item, in order."""
        if not isinstance(items, list) or not items:
            raise AppError("Send {\"badges\": [...]} with 1 to 500 badges.", code="VALIDATION_ERROR", status=400,
                           fields={"badges": "Give a list of 1 to 500 badges."})
        if len(items) > MAX_IMPORT:
            raise AppError(f"At most {MAX_IMPORT} badges per import.", code="VALIDATION_ERROR", status=400,
                           fields={"badges": f"Give at most {MAX_IMPORT} badges."})
        results: list[dict[str, Any] | None] = [None] * len(items)
        pending: dict[str, tuple[int, BadgeInput]] = {}
        seen: set[str] = set()
        for index, item in enumerate(items):
            try:
                badge = validate_badge(item, prefix=self.prefix)
            except BadgeValidationError as exc:
                code = item.get("code") if isinstance(item, dict) and isinstance(item.get("code"), str) else None
                results[index] = {"code": code, "ok": False, "error": "VALIDATION_ERROR",
                                  "error_description": exc.message, "fields": dict(exc.fields)}
                continue
            if badge.code in seen:
                results[index] = _failed(badge.code, "BADGE_EXISTS", "The same code appears earlier in this import.")
                continue
            seen.add(badge.code)
            pending[f"b{index}"] = (index, badge)
        try:
            if pending:
                self._import_batch(portal, pending, results)
        finally:
            self.invalidate(portal.member_id)
        return [r for r in results if r is not None]

    def _import_batch(self, portal: PortalClient, pending: dict[str, tuple[int, BadgeInput]],
                      results: list[dict[str, Any] | None], *, resolved: bool = False) -> None:
        commands = {key: ("crm.activity.badge.add", badge.to_params()) for key, (_i, badge) in pending.items()}
        try:
            answer = portal.batch(commands)
        except UNKNOWN_OUTCOME:
            if resolved:
                raise
            # The batch may have been applied in part: ask the portal what exists, send the rest once more.
            existing = {b.get("code"): b for b in self._fetch_all(portal)}
            missing = {}
            for key, (index, badge) in pending.items():
                found = existing.get(badge.code)
                if found is not None and _same(found, badge):
                    results[index] = {"code": badge.code, "ok": True, "badge": found}
                elif found is not None:
                    results[index] = _exists(badge.code)
                else:
                    missing[key] = (index, badge)
            if missing:
                self._import_batch(portal, missing, results, resolved=True)
            return
        for key, (index, badge) in pending.items():
            error = answer.errors.get(key)
            if answer.ok(key):
                created = answer.result[key]
                results[index] = {"code": badge.code, "ok": True,
                                  "badge": created.get("badge", badge.to_params()) if isinstance(created, dict)
                                  else badge.to_params()}
            elif isinstance(error, Conflict):
                results[index] = _exists(badge.code)
            elif error is not None:
                results[index] = _failed(badge.code, error.code, error.message)
            else:
                results[index] = _failed(badge.code, "UNKNOWN_OUTCOME", "The portal did not answer for this badge.")

    # -- deals ---------------------------------------------------------------------------------

    def show_on_deal(self, portal: PortalClient, deal_id: int, code: str, *, user_id: int,
                     lang: str = "en") -> DealBadge:
        """Show `code` on the deal's kanban card through one open configurable activity of this app."""
        badge = self.get(portal, code)
        key = self.deal_key(portal.member_id, deal_id)
        with self._redis.lock(f"{key}:lock", timeout=30, blocking_timeout=30, thread_local=False):
            activity_id = self._shown(key)[0]
            layout = _layout(badge, lang)
            if activity_id is not None:
                try:
                    portal.call("crm.activity.configurable.update",
                                {"id": activity_id, "fields": {"completed": False, "badgeCode": code},
                                 "layout": layout}, idempotent=True)
                    self._remember(key, activity_id, code)
                    return DealBadge(deal_id, code, activity_id, created=False)
                except NotFound:
                    log.info("remembered activity is gone; creating a new one", extra={"deal_id": deal_id})
            result = portal.call("crm.activity.configurable.add", {
                "ownerTypeId": DEAL_OWNER_TYPE, "ownerId": deal_id,
                "fields": {"completed": False, "badgeCode": code, "responsibleId": user_id}, "layout": layout,
            }).result
            activity_id = _int((result or {}).get("activity", {}).get("id"))
            if activity_id is None:
                raise AppError("The portal did not return the activity it created.", code="BAD_GATEWAY", status=503)
            self._remember(key, activity_id, code)
            return DealBadge(deal_id, code, activity_id, created=True)

    def clear_on_deal(self, portal: PortalClient, deal_id: int) -> None:
        """Complete this app's activity on the deal, which removes its badge from the kanban card."""
        key = self.deal_key(portal.member_id, deal_id)
        with self._redis.lock(f"{key}:lock", timeout=30, blocking_timeout=30, thread_local=False):
            activity_id = self._shown(key)[0]
            if activity_id is None:
                return
            with contextlib.suppress(NotFound):
                portal.call("crm.activity.configurable.update",
                            {"id": activity_id, "fields": {"completed": True, "badgeCode": ""}}, idempotent=True)
            self._redis.delete(key)

    def shown_on_deal(self, member_id: str, deal_id: int) -> DealBadge | None:
        """What this app shows on the deal, as remembered (the activity id per portal+deal)."""
        activity_id, code = self._shown(self.deal_key(member_id, deal_id))
        return DealBadge(deal_id, code, activity_id, created=False) if activity_id is not None and code else None

    def _shown(self, key: str) -> tuple[int | None, str]:
        raw = self._redis.get(key)
        try:
            stored = json.loads(raw) if raw else {}
        except ValueError:
            stored = {}
        return _int(stored.get("activity_id")), str(stored.get("code", ""))

    def _remember(self, key: str, activity_id: int, code: str) -> None:
        self._redis.set(key, json.dumps({"activity_id": activity_id, "code": code}))


def _layout(badge: dict[str, Any], lang: str) -> dict[str, Any]:
    title = display_text(badge.get("title", ""), lang) or badge.get("code", "")
    value = display_text(badge.get("value", ""), lang)
    return {
        "icon": {"code": "info"},
        "header": {"title": title},
        "body": {"logo": {"code": "notification"},
                 "blocks": {"badge": {"type": "text", "properties": {"value": f"{title}: {value}".strip(": ")}}}},
    }


def _same(found: dict[str, Any], badge: BadgeInput) -> bool:
    return found.get("code") == badge.code and found.get("type") == badge.type and \
        found.get("title") == badge.title and found.get("value") == badge.value


def _exists(code: str) -> dict[str, Any]:
    return _failed(code, "BADGE_EXISTS", f"A badge with the code {code} already exists on this portal.")


def _failed(code: str | None, error: str, description: str) -> dict[str, Any]:
    return {"code": code, "ok": False, "error": error, "error_description": description}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
