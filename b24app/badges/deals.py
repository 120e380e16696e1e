"""Showing a badge on a deal's kanban card: one open configurable activity of this app per deal.

A badge is visible only through an open configurable activity whose `badgeCode` names it
(docs/bitrix24-protocol.md §5.6). The app remembers which activity it created per deal
(storage/deal_links.py), updates it to switch badges, and completes it to clear the badge.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from redis.exceptions import LockError

from ..bitrix.bulkhead import Bulkhead
from ..bitrix.client import PortalClient
from ..bitrix.errors import NotFound
from ..coerce import to_int
from ..errors import BadgeError
from ..storage.deal_links import DealLinks
from .rules import display_text
from .service import Badges, PortalAnswerInvalid

log = logging.getLogger(__name__)

DEAL_OWNER_TYPE = 2


@dataclass(frozen=True)
class DealBadge:
    deal_id: int
    code: str
    activity_id: int
    created: bool


class DealBusy(BadgeError):
    """Another change of the deal's badge holds its lock, and this process already has the portal's share
    of threads waiting."""

    code = "DEAL_BUSY"


class DealBadges:
    def __init__(self, badges: Badges, links: DealLinks, *, bulkhead: Bulkhead | None = None) -> None:
        self._badges = badges
        self._links = links
        self._bulkhead = bulkhead

    @contextmanager
    def _changing(self, member_id: str, deal_id: int) -> Iterator[None]:
        """One change of a deal's badge at a time; waiting for another one counts as waiting on the portal
        (bitrix/bulkhead.py)."""
        lock = self._links.lock(member_id, deal_id)
        if not lock.acquire(blocking=False):
            slot = nullcontext(True) if self._bulkhead is None else self._bulkhead.wait_slot(member_id, "deal")
            with slot as may_wait:
                if not (may_wait and lock.acquire(blocking=True)):
                    raise DealBusy("Another change of this deal's badge is under way; try again in a moment.")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):
                lock.release()

    def show(self, portal: PortalClient, deal_id: int, code: str, *, user_id: int, lang: str = "en") -> DealBadge:
        """Show `code` on the deal's kanban card through one open configurable activity of this app."""
        badge = self._badges.get(portal, code)
        member_id = portal.member_id
        with self._changing(member_id, deal_id):
            link = self._links.get(member_id, deal_id)
            layout = _layout(badge, lang)
            if link is not None:
                try:
                    portal.call("crm.activity.configurable.update",
                                {"id": link.activity_id, "fields": {"completed": False, "badgeCode": code},
                                 "layout": layout}, idempotent=True)
                    self._links.remember(member_id, deal_id, link.activity_id, code)
                    return DealBadge(deal_id, code, link.activity_id, created=False)
                except NotFound:
                    log.info("remembered activity is gone; creating a new one", extra={"deal_id": deal_id})
            result = portal.call("crm.activity.configurable.add", {
                "ownerTypeId": DEAL_OWNER_TYPE, "ownerId": deal_id,
                "fields": {"completed": False, "badgeCode": code, "responsibleId": user_id}, "layout": layout,
            }).result
            activity = result.get("activity") if isinstance(result, dict) else None
            activity_id = to_int(activity.get("id")) if isinstance(activity, dict) else None
            if activity_id is None:
                raise PortalAnswerInvalid("The portal did not return the activity it created.")
            self._links.remember(member_id, deal_id, activity_id, code)
            return DealBadge(deal_id, code, activity_id, created=True)

    def clear(self, portal: PortalClient, deal_id: int) -> None:
        """Complete this app's activity on the deal, which removes its badge from the kanban card."""
        member_id = portal.member_id
        with self._changing(member_id, deal_id):
            link = self._links.get(member_id, deal_id)
            if link is None:
                return
            with contextlib.suppress(NotFound):
                portal.call("crm.activity.configurable.update",
                            {"id": link.activity_id, "fields": {"completed": True, "badgeCode": ""}},
                            idempotent=True)
            self._links.forget(member_id, deal_id)

    def showing(self, member_id: str, code: str) -> list[int]:
        """The deals this app shows the badge on: a badge on deals cannot be deleted (ENTITY_WITH_BADGE_EXISTS)."""
        return self._links.showing(member_id, code)

    def shown(self, member_id: str, deal_id: int) -> DealBadge | None:
        """What this app shows on the deal, as remembered."""
        link = self._links.get(member_id, deal_id)
        return DealBadge(deal_id, link.code, link.activity_id, created=False) if link is not None and link.code \
            else None


def _layout(badge: dict[str, Any], lang: str) -> dict[str, Any]:
    title = display_text(badge.get("title", ""), lang) or badge.get("code", "")
    value = display_text(badge.get("value", ""), lang)
    return {
        "icon": {"code": "info"},
        "header": {"title": title},
        "body": {"logo": {"code": "notification"},
                 "blocks": {"badge": {"type": "text", "properties": {"value": f"{title}: {value}".strip(": ")}}}},
    }
