"""Badge use cases: list (cached), get, create, replace, delete and import.

Every operation takes the portal's REST client explicitly. Writes are never blindly repeated: when
`crm.activity.badge.add` fails with an unknown outcome (5xx, timeout), `crm.activity.badge.get`
says whether it happened, so a retry never creates a duplicate or reports a false error.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..bitrix.client import PortalClient
from ..bitrix.errors import Conflict, InvalidArgument, NotFound, PortalServerError, TransportError
from ..errors import AppError, BadgeError, InvalidInput
from ..observability import metrics
from ..storage.badge_cache import BadgeListCache
from .rules import BadgeInput, BadgeValidationError, portal_refusal, validate_badge

log = logging.getLogger(__name__)

MAX_IMPORT = 500
UNKNOWN_OUTCOME = (PortalServerError, TransportError)


class BadgeExists(BadgeError):
    code = "BADGE_EXISTS"


class BadgeNotFound(BadgeError):
    code = "NOT_FOUND"


class BadgeInUse(BadgeError):
    """Deals still show the badge; `deals` names those this app put it on (others' are unknown to it)."""

    code = "ENTITY_WITH_BADGE_EXISTS"

    def __init__(self, description: str, *, deals: list[int] | None = None) -> None:
        super().__init__(description)
        self.deals = deals or []


class PortalAnswerInvalid(BadgeError):
    code = "BAD_GATEWAY"


class Badges:
    def __init__(self, cache: BadgeListCache, *, prefix: str = "") -> None:
        self._cache = cache
        self.prefix = prefix

    def close(self) -> None:
        self._cache.close()

    # -- reads ---------------------------------------------------------------------------------

    def listing(self, member_id: str, portal: Callable[[], PortalClient]) -> tuple[bytes, bool]:
        """All badges of the portal as a JSON array, and whether it came from the cache.

        A hit costs no decoding, and at most one Redis round-trip (which also checks that the portal is
        still active); `portal` is called only on a miss, so the token record is read only when needed.
        """
        data, generation = self._cache.read(member_id)
        metrics.badge_cache(hit=data is not None)
        if data is not None:
            return data, True
        encoded = json.dumps(self._fetch_all(portal()), ensure_ascii=False, separators=(",", ":")).encode()
        self._cache.fill(member_id, generation, encoded)
        return encoded, False

    @staticmethod
    def _fetch_all(portal: PortalClient) -> list[dict[str, Any]]:
        """badge.list is not paginated: it returns every badge of the portal (docs/bitrix24-protocol.md §5.4)."""
        result = portal.call("crm.activity.badge.list").result
        badges = result.get("badges", []) if isinstance(result, dict) else []
        return [b for b in badges if isinstance(b, dict)]

    def options(self, portal: PortalClient) -> dict[str, str]:
        """code → "Title: Value" (English, else the first language), for a robot's badge select. Read
        through the list cache: registering the robot after a write and the UI's next list share one call."""
        listing, _cached = self.listing(portal.member_id, lambda: portal)
        badges = json.loads(listing)
        return {str(b["code"]): _label(b) for b in badges if isinstance(b, dict) and b.get("code")}

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
        return validate_badge(payload, prefix=self.prefix)

    def create(self, portal: PortalClient, badge: BadgeInput) -> dict[str, Any]:
        with self._writing(portal):
            return self._add(portal, badge)

    @contextlib.contextmanager
    def _writing(self, portal: PortalClient) -> Iterator[None]:
        """Around a use case's writes, each of which marks the list stale as it is admitted (`_stale`): the
        list is bumped afterwards only when that is not enough (storage/badge_cache.py)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self._cache.written(portal.member_id, time.monotonic() - started, marked=portal.marks_writes)

    def _stale(self, portal: PortalClient) -> str:
        return self._cache.key(portal.member_id)

    def _add(self, portal: PortalClient, badge: BadgeInput, *, resolved: bool = False) -> dict[str, Any]:
        try:
            result = portal.call("crm.activity.badge.add", badge.to_params(), marks_stale=self._stale(portal)).result
        except Conflict as exc:
            raise BadgeExists(f"A badge with the code {badge.code} already exists on this portal.") from exc
        except InvalidArgument as exc:
            raise portal_refusal(exc.description or exc.code) from exc
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

    def replace(self, portal: PortalClient, badge: BadgeInput) -> dict[str, Any]:
        """Give an existing badge new texts or type. Bitrix24 has no badge update (docs/bitrix24-protocol.md
        §5), so this deletes and adds again: refused while deals show the badge (the delete's
        ENTITY_WITH_BADGE_EXISTS, nothing changed), and a failed add puts the old badge back."""
        with self._writing(portal):
            old = self.get(portal, badge.code)
            if _same(old, badge):
                return old
            self.delete(portal, badge.code)
            try:
                return self._add(portal, badge)
            except AppError:
                self._restore(portal, old)
                raise

    def _restore(self, portal: PortalClient, old: dict[str, Any]) -> None:
        params = {key: old.get(key) for key in ("code", "title", "value", "type")}
        try:
            portal.call("crm.activity.badge.add", params, marks_stale=self._stale(portal))
        except AppError:
            log.error("badge.replace lost the badge: the new one and the old one were both refused",
                      extra={"code": params["code"]})
            raise
        log.info("badge.replace put the old badge back", extra={"code": params["code"]})

    def delete(self, portal: PortalClient, code: str) -> None:
        with self._writing(portal):
            try:
                portal.call("crm.activity.badge.delete", {"code": code}, marks_stale=self._stale(portal))
            except UNKNOWN_OUTCOME:
                if self._find(portal, code) is not None:
                    raise
                log.info("badge.delete outcome resolved: it was deleted", extra={"code": code})
            except NotFound:
                raise BadgeNotFound(f"There is no badge with the code {code}.") from None
            except Conflict as exc:
                raise BadgeInUse("Deals still show this badge. Clear it from those deals (or complete their "
                                 "activities) before deleting it.") from exc

    def import_many(self, portal: PortalClient, items: object) -> list[dict[str, Any]]:
        """Create up to 500 badges through `batch` (50 per request); one result per item, in order."""
        if not isinstance(items, list) or not items:
            raise InvalidInput("Send {\"badges\": [...]} with 1 to 500 badges.",
                               fields={"badges": "Give a list of 1 to 500 badges."})
        if len(items) > MAX_IMPORT:
            raise InvalidInput(f"At most {MAX_IMPORT} badges per import.",
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
        if pending:
            with self._writing(portal):
                self._import_batch(portal, pending, results)
        return [r for r in results if r is not None]

    def _import_batch(self, portal: PortalClient, pending: dict[str, tuple[int, BadgeInput]],
                      results: list[dict[str, Any] | None], *, resolved: bool = False) -> None:
        commands = {key: ("crm.activity.badge.add", badge.to_params()) for key, (_i, badge) in pending.items()}
        try:
            answer = portal.batch(commands, marks_stale=self._stale(portal))
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

def _label(badge: dict[str, Any]) -> str:
    def text(value: Any) -> str:
        if isinstance(value, dict):
            return str(value.get("en") or next(iter(value.values()), ""))
        return str(value or "")
    title, value = text(badge.get("title")), text(badge.get("value"))
    return f"{title}: {value}" if title and value else title or value or str(badge["code"])


def _same(found: dict[str, Any], badge: BadgeInput) -> bool:
    return found.get("code") == badge.code and found.get("type") == badge.type and \
        found.get("title") == badge.title and found.get("value") == badge.value


def _exists(code: str) -> dict[str, Any]:
    return _failed(code, "BADGE_EXISTS", f"A badge with the code {code} already exists on this portal.")


def _failed(code: str | None, error: str, description: str) -> dict[str, Any]:
    return {"code": code, "ok": False, "error": error, "error_description": description}
