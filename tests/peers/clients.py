"""Drive the sandbox through two real Bitrix24 client libraries, the way their users call them.

Runs with the PRIVATE venv's python (`.peers-venv`, see tests/peers/requirements.txt), where
`fast_bitrix24` and `b24pysdk` are installed; it never imports `b24app`. `run.py` starts the sandbox
and passes a JSON config on stdin. Every check prints one JSON line on stdout:
`{"lib", "check", "ok", "detail", "seconds"}`; a first `{"versions": {...}}` line names the libraries.

The checks assert what Bitrix24 does (docs/bitrix24-protocol.md), not what the sandbox happens to do,
so a failure here is a sandbox mismatch unless the detail says otherwise. Each library is imported
inside its own checks, so a broken install of one does not hide the other's results.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

LAYOUT: dict[str, Any] = {
    "icon": {"code": "call-completed"},
    "header": {"title": "Peers check"},
    "body": {"logo": {"code": "call-incoming"},
             "blocks": {"note": {"type": "text", "properties": {"value": "created by tests/peers"}}}},
}
ACTIVITIES = 66
PIVOT_INDEX = 5  # `>ID` of the 6th activity: 60 of the 66 remain, more than one page of 50
BULK = 120
PAGE = 50


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def describe(exc: BaseException) -> str:
    """One line naming the library's exception class and what the portal answered."""
    parts = [f"{type(exc).__module__}.{type(exc).__qualname__}"]
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if isinstance(status, int):
        parts.append(f"HTTP {status}")
    body = getattr(exc, "json_response", None)
    if isinstance(body, dict) and "error" in body:
        parts.append(f"error={body['error']!r} error_description={body.get('error_description')!r}")
    else:
        parts.append(str(exc))
    return " ".join(parts)[:600]


def error_code(exc: BaseException) -> Any:
    """The `error` field of the body behind a b24pysdk exception (its `.error` chokes on numeric codes)."""
    body = getattr(exc, "json_response", None)
    return body.get("error") if isinstance(body, dict) else None


def first_batch_error(exc: BaseException) -> dict[str, Any]:
    """fast_bitrix24 raises ErrorInServerResponseException({cmd_label: {error, error_description}})."""
    errors = exc.args[0] if exc.args else {}
    if isinstance(errors, dict) and errors:
        first = next(iter(errors.values()))
        return first if isinstance(first, dict) else {"error": first}
    if isinstance(errors, list) and errors:
        return errors[0] if isinstance(errors[0], dict) else {"error": errors[0]}
    return {"error": repr(errors)}


def utc_offset(moment: datetime) -> str:
    """`+03:00` for a datetime three hours ahead of UTC."""
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:]}" if text else "naive"


def expect_error(call: Callable[[], Any], cls: type[BaseException], what: str) -> BaseException:
    """Run `call` and return the exception; AssertionError unless it is a `cls`."""
    try:
        value = call()
    except cls as exc:
        return exc
    except Exception as exc:
        raise AssertionError(f"{what}: expected {cls.__module__}.{cls.__qualname__}, got {describe(exc)}") from exc
    raise AssertionError(f"{what}: expected {cls.__qualname__}, but the call returned {value!r:.200}")


def control(cfg: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to the sandbox's control API (the test's hand on the portal, not a client call)."""
    request = urllib.request.Request(cfg["control_url"] + path, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def expected_ids(ids: list[int]) -> tuple[int, list[int]]:
    if len(ids) != ACTIVITIES:
        raise AssertionError(f"needs the {ACTIVITIES} activities of the batch check (have {len(ids)})")
    return ids[PIVOT_INDEX], ids[PIVOT_INDEX + 1:]


def compare_ids(got: list[int], expected: list[int]) -> None:
    if got == expected:
        return
    extra = sorted(set(got) - set(expected))
    missing = sorted(set(expected) - set(got))
    raise AssertionError(f"got {len(got)} rows ({len(set(got))} distinct), expected {len(expected)}; "
                         f"ids not matching the filter: {extra[:8]}; missing: {missing[:8]}; "
                         f"first ids: {got[:6]}")


class Checks:
    """Runs named checks; each is a function returning a short detail or raising AssertionError."""

    lib = ""

    def __init__(self, cfg: dict[str, Any], portal: dict[str, Any]) -> None:
        self.cfg = cfg
        self.portal = portal
        self.run_id = secrets.token_hex(3)
        self.activity_ids: list[int] = []
        self.failed = 0

    def check(self, name: str, fn: Callable[[], str]) -> None:
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                detail, ok = fn(), True
            except AssertionError as exc:
                detail, ok = str(exc), False
            except Exception as exc:
                detail, ok = describe(exc), False
        if not ok and caught:
            detail += " | warnings: " + "; ".join(str(w.message)[:200] for w in caught[:3])
        self.failed += not ok
        emit({"lib": self.lib, "check": name, "ok": ok, "detail": detail,
              "seconds": round(time.perf_counter() - started, 3)})

    def expire_tokens(self) -> int:
        return int(control(self.cfg, f"/portals/{self.portal['member_id']}/expire-tokens")["count"])


class FastBitrix24Checks(Checks):
    """fast_bitrix24: `Bitrix(webhook)` and `Bitrix(client_endpoint, token_func=...)`, sync API."""

    lib = "fast_bitrix24"

    def __init__(self, cfg: dict[str, Any], portal: dict[str, Any]) -> None:
        from fast_bitrix24 import Bitrix

        super().__init__(cfg, portal)
        self.tokens = dict(portal["tokens"])
        self.token_calls = 0
        self.refreshes = 0
        self.hook = Bitrix(portal["webhook_url"], verbose=False)
        self.oauth = Bitrix(portal["client_endpoint"], token_func=self.token_func, verbose=False)

    async def token_func(self) -> str:
        """What a fast_bitrix24 app writes: the stored token first, a refresh_token grant after a 401."""
        import aiohttp

        self.token_calls += 1
        if self.token_calls == 1:
            return str(self.tokens["access_token"])
        if self.refreshes >= 3:
            raise RuntimeError("token_func: the portal keeps rejecting freshly refreshed tokens")
        self.refreshes += 1
        params = {"grant_type": "refresh_token", "client_id": self.cfg["client_id"],
                  "client_secret": self.cfg["client_secret"], "refresh_token": self.tokens["refresh_token"]}
        async with aiohttp.ClientSession() as session, \
                session.get(f"{self.cfg['oauth_url']}/oauth/token/", params=params) as response:
            body = await response.json(content_type=None)
        if "access_token" not in body:
            raise RuntimeError(f"refresh failed: HTTP {response.status} {body}")
        self.tokens = body
        return str(body["access_token"])

    def run(self) -> None:
        self.check("webhook: badge add/get/list/delete", self.badge_crud)
        self.check(f"webhook: call() with {BULK} items (3 batches)", self.bulk_batch)
        self.check("error: duplicate badge code", self.duplicate_code)
        self.check("error: badge code over 30 characters (default portal)", self.long_code)
        self.check("error: unknown method", self.unknown_method)
        self.check("error: unknown webhook", self.unknown_webhook)
        self.check(f"OAuth token_func: call() creates {ACTIVITIES} configurable activities", self.create_activities)
        self.check("get_all(crm.activity.list, filter >ID): 60 rows over 2 pages", self.get_all_filtered)
        self.check("OAuth: expired token → token_func refresh → retried call", self.refresh)

    def badge_crud(self) -> str:
        from fast_bitrix24.server_response import ErrorInServerResponseException

        code = f"fb24_{self.run_id}"
        title = {"en": "Peers", "de": "Peers"}
        added = self.hook.call("crm.activity.badge.add", {"code": code, "title": title, "value": "ok",
                                                          "type": "success"})
        assert added == {"code": code, "title": title, "value": "ok", "type": "success"}, f"add returned {added!r}"
        got = self.hook.call("crm.activity.badge.get", {"code": code})
        assert got == added, f"get returned {got!r}"
        listed = self.hook.get_all("crm.activity.badge.list")
        assert any(b.get("code") == code for b in listed), f"list does not contain {code}: {listed!r:.300}"
        deleted = self.hook.call("crm.activity.badge.delete", {"code": code})
        assert deleted is True, f"delete returned {deleted!r}"
        exc = expect_error(lambda: self.hook.call("crm.activity.badge.get", {"code": code}),
                           ErrorInServerResponseException, "get after delete")
        error = first_batch_error(exc)
        assert error.get("error") == "NOT_FOUND", f"get after delete: {error!r}"
        return "add, get, get_all(list), delete; get afterwards → NOT_FOUND"

    def bulk_batch(self) -> str:
        codes = [f"fb{i:03d}_{self.run_id}" for i in range(BULK)]
        added = self.hook.call("crm.activity.badge.add",
                               [{"code": c, "title": "Bulk", "value": str(i), "type": "primary"}
                                for i, c in enumerate(codes)])
        got = sorted(b.get("code", "") for b in added)
        assert got == codes, f"{len(added)} results, codes differ: {sorted(set(codes) - set(got))[:5]}"
        listed = {b["code"] for b in self.hook.get_all("crm.activity.badge.list")}
        assert set(codes) <= listed, f"list lacks {len(set(codes) - listed)} of the {BULK} badges"
        deleted = self.hook.call("crm.activity.badge.delete", [{"code": c} for c in codes])
        assert len(deleted) == BULK and all(v is True for v in deleted), f"delete results: {deleted!r:.300}"
        return f"{BULK} badge.add + {BULK} badge.delete in batches of 50"

    def duplicate_code(self) -> str:
        from fast_bitrix24.server_response import ErrorInServerResponseException

        code = f"fbdup_{self.run_id}"
        badge = {"code": code, "title": "Dup", "value": "x", "type": "warning"}
        self.hook.call("crm.activity.badge.add", badge)
        try:
            exc = expect_error(lambda: self.hook.call("crm.activity.badge.add", badge),
                               ErrorInServerResponseException, "second add")
        finally:
            self.hook.call("crm.activity.badge.delete", {"code": code})
        error = first_batch_error(exc)
        assert error.get("error") == "BX_INVALID_VALUE", f"expected BX_INVALID_VALUE, got {error!r}"
        return f"ErrorInServerResponseException {error}"

    def long_code(self) -> str:
        """Newer core caps `code` at 30 characters with a code-less error (docs/bitrix24-protocol.md §5.1)."""
        from fast_bitrix24.server_response import ErrorInServerResponseException

        code = f"fblong_{self.run_id}".ljust(31, "x")
        badge = {"code": code, "title": "Long", "value": "x", "type": "warning"}
        exc = expect_error(lambda: self.hook.call("crm.activity.badge.add", badge), ErrorInServerResponseException,
                           "31-character code")
        error = first_batch_error(exc)
        assert str(error.get("error")) == "0" and "30 characters" in str(error.get("error_description")), \
            f"expected error 0 'The length of the `code` field must not exceed 30 characters', got {error!r}"
        return f"ErrorInServerResponseException {error}"

    def unknown_method(self) -> str:
        from fast_bitrix24.server_response import ErrorInServerResponseException

        exc = expect_error(lambda: self.hook.call("crm.activity.nosuchmethod", {"id": 1}),
                           ErrorInServerResponseException, "unknown method")
        error = first_batch_error(exc)
        assert error.get("error") == "ERROR_METHOD_NOT_FOUND", f"expected ERROR_METHOD_NOT_FOUND, got {error!r}"
        return f"ErrorInServerResponseException {error}"

    def unknown_webhook(self) -> str:
        from aiohttp import ClientResponseError
        from fast_bitrix24 import Bitrix

        stranger = Bitrix(f"{self.portal['client_endpoint']}1/{secrets.token_hex(8)}/", verbose=False)
        exc = expect_error(lambda: stranger.get_all("crm.activity.badge.list"), ClientResponseError, "unknown webhook")
        assert isinstance(exc, ClientResponseError) and exc.status == 401, f"expected HTTP 401, got {describe(exc)}"
        return "aiohttp.ClientResponseError HTTP 401"

    def create_activities(self) -> str:
        items = [{"ownerTypeId": 2, "ownerId": 1 + i % 20, "fields": {"typeId": "CONFIGURABLE", "completed": "N"},
                  "layout": LAYOUT} for i in range(ACTIVITIES)]
        created = self.oauth.call("crm.activity.configurable.add", items)
        ids = sorted(int(a["id"]) for a in created)
        assert len(set(ids)) == ACTIVITIES, f"{len(set(ids))} distinct ids from {len(created)} results"
        self.activity_ids = ids
        return f"ids {ids[0]}..{ids[-1]}"

    def get_all_filtered(self) -> str:
        pivot, expected = expected_ids(self.activity_ids)
        rows = self.oauth.get_all("crm.activity.list", {"filter": {">ID": pivot}, "select": ["ID", "SUBJECT"]})
        compare_ids(sorted(int(r["ID"]) for r in rows), expected)
        assert len(rows) == len(expected), f"{len(rows)} rows for {len(expected)} activities (duplicates)"
        return f"{len(rows)} rows with ID > {pivot}"

    def refresh(self) -> str:
        assert self.activity_ids, "needs the activities of the batch check"
        before, refreshes = self.tokens["access_token"], self.refreshes
        expired = self.expire_tokens()
        got = self.oauth.call("crm.activity.configurable.get", {"id": self.activity_ids[0]})
        assert int(got.get("id", 0)) == self.activity_ids[0], f"configurable.get returned {got!r:.200}"
        assert self.refreshes == refreshes + 1, f"token_func refreshed {self.refreshes - refreshes} times, expected 1"
        assert self.tokens["access_token"] != before, "the access token did not change"
        return f"{expired} token(s) expired; one refresh_token grant, call retried"


def point_b24pysdk_oauth_at(base_url: str) -> None:
    """b24pysdk hard-codes https://oauth.bitrix24.tech for the token and app.info endpoints.

    Point its own requester at the sandbox's OAuth server (behind TLS); the SDK's request, parsing
    and error mapping stay untouched.
    """
    from b24pysdk.api.requesters.bitrix_oauth_requester import BitrixOAuthRequester

    BitrixOAuthRequester._OAUTH_TOKEN_URL = f"{base_url}/oauth/token/"  # type: ignore[misc]
    BitrixOAuthRequester._APP_INFO_URL = f"{base_url}/rest/app.info/"  # type: ignore[misc]


class B24PySdkChecks(Checks):
    """b24pysdk (the official SDK): `BitrixWebhook`/`BitrixToken` → `Client`, https only."""

    lib = "b24pysdk"
    TITLE = "b24pysdk Test Badge Title"
    VALUE = "b24pysdk Test Badge Value"

    def __init__(self, cfg: dict[str, Any], portal: dict[str, Any]) -> None:
        from b24pysdk import BitrixApp, BitrixToken, BitrixWebhook, Client

        super().__init__(cfg, portal)
        point_b24pysdk_oauth_at(cfg["oauth_tls_url"])
        self.domain = portal["tls_domain"]
        self.webhook = BitrixWebhook(domain=self.domain, webhook_token=portal["webhook_token"])
        self.hook = Client(self.webhook)
        self.app = BitrixApp(client_id=cfg["client_id"], client_secret=cfg["client_secret"])
        tokens = portal["tokens"]
        self.token = BitrixToken(domain=self.domain, auth_token=tokens["access_token"],
                                 refresh_token=tokens["refresh_token"],
                                 expires=datetime.fromtimestamp(int(tokens["expires"]), tz=UTC),
                                 expires_in=int(tokens["expires_in"]), bitrix_app=self.app)
        self.oauth = Client(self.token)

    def run(self) -> None:
        self.check("webhook: badge add/get/list/as_list/delete (36-char code)", self.badge_crud)
        self.check(f"webhook: call_batches() with {BULK} requests", self.bulk_batch)
        self.check("error: duplicate badge code", self.duplicate_code)
        self.check("error: unknown method", self.unknown_method)
        self.check("error: unknown webhook", self.unknown_webhook)
        self.check("error: invalid access token", self.invalid_token)
        self.check(f"OAuth: call_batches() creates {ACTIVITIES} configurable activities", self.create_activities)
        self.check("as_list_fast() on crm.activity.list, filter >ID (start=-1, ID window)", self.list_fast)
        self.check("as_list() on crm.activity.list, filter >ID (start/next)", self.list_classic)
        self.check("crm.activity.list start=-1: a page, no next, total 0", self.start_minus_one)
        self.check("OAuth: expired token → automatic refresh → retried call", self.refresh)
        self.check("app.info on the OAuth server (get_app_info)", self.app_info)
        self.check("server.time and the time block in the portal's time zone", self.time_zone)
        self.check("user.current() as the SDK's User object", self.current_user)
        self.check("OAuth error: bad refresh token", self.bad_refresh_token)
        self.check("OAuth error: wrong client_secret", self.wrong_secret)
        self.check("OAuth error: unknown client_id", self.unknown_client)

    def badge_crud(self) -> str:
        from b24pysdk.errors import BitrixAPINotFound

        badge = self.hook.crm.activity.badge
        code = f"b24pysdk_test_badge_{int(time.time() * 10**6)}"
        want = {"code": code, "title": self.TITLE, "value": self.VALUE, "type": "failure"}
        added = badge.add(code=code, title=self.TITLE, value=self.VALUE, type="failure").response
        assert added.result == {"badge": want}, f"add returned {added.result!r}"
        got = badge.get(code=code).result
        assert got == {"badge": want}, f"get returned {got!r}"
        listed = badge.list().result
        assert want in listed.get("badges", []), f"list does not contain the badge: {listed!r:.300}"
        as_list = badge.list().as_list().result
        assert want in as_list, f"as_list() does not contain the badge: {as_list!r:.300}"
        deleted = badge.delete(code=code).result
        assert deleted is True, f"delete returned {deleted!r}"
        exc = expect_error(lambda: badge.get(code=code).result, BitrixAPINotFound, "get after delete")
        return f"code of {len(code)} chars; get afterwards → {type(exc).__name__}"

    def bulk_batch(self) -> str:
        badge = self.hook.crm.activity.badge
        codes = [f"py{i:03d}_{self.run_id}" for i in range(BULK)]
        added = self.hook.call_batches([badge.add(code=c, title="Bulk", value=str(i), type="primary")
                                        for i, c in enumerate(codes)]).result
        assert not added.result_error, f"result_error: {added.result_error!r:.300}"
        values = list(added.result.values()) if isinstance(added.result, dict) else list(added.result)
        got = sorted(v["badge"]["code"] for v in values)
        assert got == codes, f"{len(values)} results, codes differ: {sorted(set(codes) - set(got))[:5]}"
        deleted = self.hook.call_batches([badge.delete(code=c) for c in codes]).result
        assert not deleted.result_error, f"delete result_error: {deleted.result_error!r:.300}"
        results = list(deleted.result.values()) if isinstance(deleted.result, dict) else list(deleted.result)
        assert len(results) == BULK and all(v is True for v in results), f"delete results: {results!r:.300}"
        return f"{BULK} badge.add + {BULK} badge.delete in batches of 50"

    def duplicate_code(self) -> str:
        from b24pysdk.errors import BitrixAPIBadRequest

        badge = self.hook.crm.activity.badge
        code = f"pydup_{self.run_id}"
        badge.add(code=code, title="Dup", value="x", type="warning").call()
        try:
            exc = expect_error(lambda: badge.add(code=code, title="Dup", value="x", type="warning").response,
                               BitrixAPIBadRequest, "second add")
        finally:
            badge.delete(code=code).call()
        assert error_code(exc) == "BX_INVALID_VALUE", f"expected BX_INVALID_VALUE, got {describe(exc)}"
        return describe(exc)

    def unknown_method(self) -> str:
        from b24pysdk.errors import BitrixAPINotFound

        exc = expect_error(lambda: self.webhook.call_method("crm.activity.nosuchmethod", {"id": 1}),
                           BitrixAPINotFound, "unknown method")
        assert error_code(exc) == "ERROR_METHOD_NOT_FOUND", f"got {describe(exc)}"
        return describe(exc)

    def unknown_webhook(self) -> str:
        """Bitrix24 answers an unknown webhook code with 401 INVALID_CREDENTIALS."""
        from b24pysdk import BitrixWebhook, Client
        from b24pysdk.errors import BitrixAPIInvalidCredentials

        stranger = Client(BitrixWebhook(domain=self.domain, webhook_token=f"1/{secrets.token_hex(8)}"))
        exc = expect_error(lambda: stranger.crm.activity.badge.list().response, BitrixAPIInvalidCredentials,
                           "unknown webhook")
        return describe(exc)

    def invalid_token(self) -> str:
        from b24pysdk import BitrixToken, Client
        from b24pysdk.errors import BitrixAPIInvalidToken

        forged = Client(BitrixToken(domain=self.domain, auth_token=secrets.token_hex(35), bitrix_app=self.app))
        exc = expect_error(lambda: forged.crm.activity.badge.list().response, BitrixAPIInvalidToken, "forged token")
        return describe(exc)

    def create_activities(self) -> str:
        configurable = self.oauth.crm.activity.configurable
        batch = self.oauth.call_batches([
            configurable.add(owner_type_id=2, owner_id=1 + i % 20, fields={"typeId": "CONFIGURABLE", "completed": "N"},
                             layout=LAYOUT)
            for i in range(ACTIVITIES)]).result
        assert not batch.result_error, f"result_error: {batch.result_error!r:.300}"
        values = list(batch.result.values()) if isinstance(batch.result, dict) else list(batch.result)
        ids = sorted(int(v["activity"]["id"]) for v in values)
        assert len(set(ids)) == ACTIVITIES, f"{len(set(ids))} distinct ids from {len(values)} results"
        self.activity_ids = ids
        return f"ids {ids[0]}..{ids[-1]}"

    def list_fast(self) -> str:
        pivot, expected = expected_ids(self.activity_ids)
        rows = list(self.oauth.crm.activity.list(filter={">ID": pivot}, select=["ID", "SUBJECT"])
                    .as_list_fast().result)
        got = [int(r["ID"]) for r in rows]
        compare_ids(got, expected)
        return f"{len(rows)} rows with ID > {pivot}, ascending, no duplicates"

    def list_classic(self) -> str:
        pivot, expected = expected_ids(self.activity_ids)
        rows = self.oauth.crm.activity.list(filter={">ID": pivot}, select=["ID"]).as_list().result
        compare_ids(sorted(int(r["ID"]) for r in rows), expected)
        assert len(rows) == len(expected), f"{len(rows)} rows for {len(expected)} activities (duplicates)"
        return f"{len(rows)} rows with ID > {pivot}"

    def start_minus_one(self) -> str:
        """`start=-1` turns counting off: one page of up to 50, no `next`, `total` 0."""
        pivot, expected = expected_ids(self.activity_ids)
        response = self.oauth.crm.activity.list(filter={">ID": pivot}, order={"ID": "ASC"}, start=-1).response
        got = [int(r["ID"]) for r in response.result]
        assert got == expected[:PAGE], f"page ids {got[:3]}..{got[-3:]} (n={len(got)}), expected {expected[:3]}.."
        assert response.next is None, f"`next` is {response.next!r}, expected none"
        assert response.total == 0, f"`total` is {response.total!r}, expected 0"
        return f"{len(got)} rows, next absent, total 0"

    def refresh(self) -> str:
        assert self.activity_ids, "needs the activities of the batch check"
        before = self.token.auth_token
        expired = self.expire_tokens()
        got = self.oauth.crm.activity.configurable.get(bitrix_id=self.activity_ids[0]).result
        assert int(got["activity"]["id"]) == self.activity_ids[0], f"configurable.get returned {got!r:.200}"
        assert self.token.auth_token != before, "the access token did not change"
        return f"{expired} token(s) expired; BitrixAPIExpiredToken → refresh_token grant → retried"

    def app_info(self) -> str:
        info = self.token.get_app_info().result
        assert info.client_id == self.cfg["client_id"], f"client_id {info.client_id!r}"
        assert info.install.member_id == self.portal["member_id"], f"member_id {info.install.member_id!r}"
        assert info.user_id == 1, f"user_id {info.user_id!r}"
        return f"install.domain={info.install.domain} installed={info.install.installed}"

    def time_zone(self) -> str:
        """Bitrix24 writes dates in the portal's time zone; `date_start` is `start` in that zone."""
        request = self.hook.server.time()
        response, now = request.response, request.value
        zone = self.portal["time_zone"]
        started = response.time.date_start
        assert isinstance(now, datetime) and now.tzinfo is not None, f"server.time gave {response.result!r}"
        offsets = {"server.time": utc_offset(now), "time.date_start": utc_offset(started),
                   "time.date_finish": utc_offset(response.time.date_finish)}
        wrong = {k: v for k, v in offsets.items() if v != zone}
        assert not wrong, f"portal zone {zone}, but {wrong} ({response.result!r})"
        assert abs(started.timestamp() - response.time.start) < 1, \
            f"date_start {started.isoformat()} is not start {response.time.start}"
        assert abs(now.timestamp() - time.time()) < 60, f"server.time {now.isoformat()} is not now"
        return f"{response.result} (zone {zone})"

    def current_user(self) -> str:
        """The SDK maps user.current onto its `User` object, which requires ACTIVE, DATE_REGISTER, IS_ONLINE."""
        request = self.oauth.user.current()
        user = request.value
        assert user.bitrix_id == 1 and user.active is True, f"user {user.bitrix_id!r} active={user.active!r}"
        registered = user.date_register
        assert isinstance(registered, datetime), f"DATE_REGISTER {registered!r}"
        assert registered.year > 2000 and registered.timestamp() <= time.time() + 60, \
            f"DATE_REGISTER {registered.isoformat()} is not a plausible registration date"
        return f"ID {user.bitrix_id} {user.name} {user.last_name}, registered {registered.isoformat()}"

    def bad_refresh_token(self) -> str:
        from b24pysdk.errors.oauth import BitrixOAuthInvalidGrant

        return describe(expect_error(lambda: self.app.refresh_oauth_token(refresh_token="invalid_refresh_token"),
                                     BitrixOAuthInvalidGrant, "bad refresh token"))

    def wrong_secret(self) -> str:
        from b24pysdk import BitrixApp
        from b24pysdk.errors.oauth import BitrixOAuthInvalidClient

        app = BitrixApp(client_id=self.cfg["client_id"], client_secret="WRONG_SECRET_12345")
        return describe(expect_error(lambda: app.get_oauth_token(code="any_code"), BitrixOAuthInvalidClient,
                                     "wrong client_secret"))

    def unknown_client(self) -> str:
        """The SDK's own live test: an unknown client_id gets `wrong_client` (HTTP 200 with an error body)."""
        from b24pysdk import BitrixApp
        from b24pysdk.errors.oauth import BitrixOauthWrongClient

        app = BitrixApp(client_id="WRONG_CLIENT_ID_12345", client_secret=self.cfg["client_secret"])
        return describe(expect_error(lambda: app.get_oauth_token(code="any_code"), BitrixOauthWrongClient,
                                     "unknown client_id"))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("fast_bitrix24", "b24pysdk"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def main() -> int:
    asyncio.set_event_loop(asyncio.new_event_loop())  # fast_bitrix24's sync API runs on the current loop
    cfg = json.load(sys.stdin)
    emit({"versions": versions()})
    suites: dict[str, type[Checks]] = {"fast_bitrix24": FastBitrix24Checks, "b24pysdk": B24PySdkChecks}
    failed = 0
    for lib in cfg["libraries"]:
        try:
            suite = suites[lib](cfg, cfg["portals"][lib])
        except Exception as exc:
            emit({"lib": lib, "check": "set up the client", "ok": False, "detail": describe(exc), "seconds": 0})
            failed += 1
            continue
        suite.run()
        failed += suite.failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
