"""10,000+ hostile requests against /api/v1: no 5xx, nothing stored.

Hypothesis drives the app under gunicorn (2 workers, real Redis, the sandbox over HTTP) with requests
built from the operations of the OpenAPI description (b24app/web/openapi.py):
- forged, tampered, expired, foreign-audience and malformed session tokens on every operation;
- a real administrator's session with malformed bodies: wrong JSON types, invalid codes, oversized,
  blank or control-character titles, too many or unknown languages, unknown fields, > 500 import items,
  bodies over 1 MB, invalid JSON and odd content types, bad Idempotency-Keys and deal ids;
- a non-administrator's session on every write;
- forged frame auth on POST /session.
Every answer must be < 500 and, when an error, the JSON error shape. Afterwards Redis holds no key or
value naming any forged member_id, and the real portal received no badge, batch or activity.
"""
from __future__ import annotations

import json
import secrets
import string
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from b24app.badges.rules import LANGUAGE_IDS, MAX_CODE_LENGTH
from b24app.web import openapi
from tests.conftest import TEST_REDIS_URL
from tests.faults.stack import gunicorn_stack
from tests.integration.helpers import redis_dump

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"deadline": None, "database": None, "derandomize": True, "phases": [Phase.generate],
            "suppress_health_check": list(HealthCheck)}
FORGED_MEMBERS: set[str] = set()
STATUSES: Counter[int] = Counter()
ACCEPTED: list[tuple] = []


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    with gunicorn_stack(TEST_REDIS_URL, tmp_path_factory.mktemp("fuzz"), workers=2, threads=4) as deployed:
        portal = deployed.installed_portal(rate=None)
        admin = deployed.session(portal)
        user = deployed.session(portal, user_id=2)
        http = requests.Session()
        before = dict(deployed.sandbox.counters.portal(portal.member_id)["requests"])
        yield {"deployed": deployed, "portal": portal, "http": http, "before": before,
               "admin": admin.headers["Authorization"].removeprefix("Bearer "),
               "user": user.headers["Authorization"].removeprefix("Bearer ")}


def _paths() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in openapi.document()["paths"].items() for method in item
            if path not in ("/openapi.json", "/session")]


OPERATIONS = _paths()
HEADER_CHARS = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
header_values = st.text(HEADER_CHARS, min_size=1, max_size=40).filter(lambda v: not v[0].isspace())
hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
member_ids = st.one_of(hex32, hex32, st.text("0123456789abcdef", min_size=1, max_size=40),
                       st.text(min_size=1, max_size=40))
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5) |
                           st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=15)
bad_codes = st.one_of(
    st.just(""), st.text(min_size=MAX_CODE_LENGTH + 1, max_size=MAX_CODE_LENGTH + 40, alphabet=string.ascii_letters),
    st.from_regex(r"[0-9_][A-Za-z0-9_]{0,20}", fullmatch=True),
    st.text(min_size=1, max_size=20).filter(lambda s: not s.isascii() or not s.replace("_", "").isalnum()),
    json_scalars.filter(lambda v: not isinstance(v, str)))
good_texts = st.text(string.ascii_letters + " ", min_size=1, max_size=40).filter(str.strip)
bad_texts = st.one_of(
    st.just(""), st.text(" \t", min_size=1, max_size=5),
    st.text(min_size=256, max_size=400).filter(lambda s: len(s.strip()) > 255),
    st.builds(lambda a, c: a + c, good_texts, st.sampled_from(["\n", "\t", "\x00", "\x7f", "\x85"])),
    st.dictionaries(st.sampled_from(LANGUAGE_IDS), good_texts, min_size=0, max_size=0),
    st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda s: s not in LANGUAGE_IDS), good_texts,
                    min_size=1, max_size=3),
    st.just({lang: "x" for lang in LANGUAGE_IDS}),
    st.dictionaries(st.sampled_from(LANGUAGE_IDS), st.text(min_size=256, max_size=300), min_size=1, max_size=2),
    json_values.filter(lambda v: not isinstance(v, (str, dict))))


@st.composite
def invalid_badges(draw) -> object:
    """A badge body with at least one broken field (so none can ever be created)."""
    badge = {"code": draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)),
             "title": draw(good_texts), "value": draw(good_texts),
             "type": draw(st.sampled_from(["success", "failure", "warning", "primary", "secondary"]))}
    broken = draw(st.sets(st.sampled_from(["code", "title", "value", "type", "extra", "missing"]), min_size=1))
    if "code" in broken:
        badge["code"] = draw(bad_codes)
    for name in ("title", "value"):
        if name in broken:
            badge[name] = draw(bad_texts)
    if "type" in broken:
        badge["type"] = draw(json_values.filter(lambda v: v not in ("success", "failure", "warning", "primary",
                                                                      "secondary")))
    if "extra" in broken:
        badge[draw(st.text(min_size=1, max_size=70).filter(lambda k: k not in badge))] = draw(json_values)
    if "missing" in broken:
        del badge[draw(st.sampled_from(["code", "title", "value", "type"]))]  # never the extra one
    return draw(st.one_of(st.just(badge), json_values.filter(lambda v: not isinstance(v, dict))))


@st.composite
def bodies(draw, method: str, path: str) -> tuple[dict[str, str], bytes | None]:
    """(headers, body bytes) for a write: malformed in every way the API must refuse."""
    if method == "DELETE" or method == "GET":
        return {}, None
    if path == "/badges":
        payload: object = draw(invalid_badges())
    elif path == "/badges/import":
        payload = draw(st.one_of(
            st.fixed_dictionaries({"badges": st.lists(invalid_badges(), min_size=1, max_size=8)}),
            st.fixed_dictionaries({"badges": json_values.filter(lambda v: not isinstance(v, list) or not v)}),
            st.just({"badges": [{"code": "x"}] * 501}), json_values))
    else:
        payload = draw(st.one_of(st.fixed_dictionaries({"code": bad_codes}), json_values,
                                 st.fixed_dictionaries({"code": bad_codes, "lang": json_values})))
    kind = draw(st.sampled_from(["json", "json", "json", "text", "form", "none", "broken", "huge", "multipart"]))
    raw = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()
    if kind == "json":
        return {"Content-Type": "application/json"}, raw
    if kind == "text":
        return {"Content-Type": "text/plain"}, raw
    if kind == "form":
        return {"Content-Type": "application/x-www-form-urlencoded"}, b"code=abc&title=t&value=v&type=success"
    if kind == "none":
        return {}, raw
    if kind == "broken":
        return {"Content-Type": "application/json"}, raw[: max(1, len(raw) // 2)] + b"\xff{"
    if kind == "huge":
        return {"Content-Type": "application/json"}, b'{"code":"' + b"a" * (1024 * 1024 + 10) + b'"}'
    multipart = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"
    return {"Content-Type": "multipart/form-data; boundary=x"}, multipart


def _path(draw, path: str, *, valid_ids: bool) -> str:
    if "{code}" in path:
        code = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)) if valid_ids else \
            draw(st.text(string.printable, min_size=1, max_size=40).filter(lambda s: "/" not in s and s not in ".."))
        path = path.replace("{code}", requests.utils.quote(code, safe=""))
    if "{deal_id}" in path:
        deal = draw(st.integers(1, 20)) if valid_ids else draw(st.sampled_from(["0", "-1", "abc", "99999999999",
                                                                               "1.5", "%20", "1e3"]))
        path = path.replace("{deal_id}", str(deal))
    return "/api/v1" + path


def _forged_token(draw, world: dict) -> str:
    member = draw(member_ids)
    FORGED_MEMBERS.add(member)
    secret = world["deployed"].env["B24_SECRET_KEY"]
    audience = world["deployed"].env["B24_CLIENT_ID"]
    claims = {"m": member, "u": draw(st.integers(0, 10)), "a": True, "d": "evil.example", "aud": audience}
    kind = draw(st.sampled_from(["other-key", "expired", "other-audience", "state-salt", "tampered", "garbage",
                                 "truncated", "none-alg"]))
    if kind == "other-key":
        return URLSafeTimedSerializer(secrets.token_hex(16), salt="b24-ui-session").dumps(claims)
    if kind == "expired":
        age = 901 + draw(st.integers(0, 10**6))

        class PastSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int((datetime.now(UTC) - timedelta(seconds=age)).timestamp())

        return URLSafeTimedSerializer(secret, salt="b24-ui-session", signer=PastSigner).dumps(claims)
    if kind == "other-audience":
        return URLSafeTimedSerializer(secret, salt="b24-ui-session").dumps({**claims, "aud": "app.other.1"})
    if kind == "state-salt":
        return URLSafeTimedSerializer(secret, salt="b24-oauth-state").dumps(claims)
    real = world[draw(st.sampled_from(["admin", "user"]))]
    if kind == "tampered":
        # never the last character of a segment: its low bits may be base64 padding that decodes the same
        positions = [i for i in range(len(real) - 1) if real[i] != "." and real[i + 1] != "."]
        position = draw(st.sampled_from(positions))
        replacement = draw(st.sampled_from("ABCxyz019-_.").filter(lambda c: c != real[position]))
        return real[:position] + replacement + real[position + 1:]
    if kind == "truncated":
        return real[: draw(st.integers(0, len(real) - 1))]
    if kind == "none-alg":
        return "eyJhbGciOiJub25lIn0." + secrets.token_urlsafe(20) + "."
    return draw(st.text(HEADER_CHARS, min_size=1, max_size=300).filter(lambda v: not v[0].isspace()))


def _send(world: dict, method: str, path: str, headers: dict[str, str], body: bytes | None) -> requests.Response | None:
    huge = body is not None and len(body) > 1024 * 1024
    try:
        # a body over 1 MB goes on its own connection: the server may answer 413 and close it unread
        response = (requests if huge else world["http"]).request(
            method, world["deployed"].url + path, headers=headers, data=body, timeout=60)
    except requests.ConnectionError:
        # ... or refuse it by closing the connection before reading it (no status at all, never a 5xx).
        assert huge, (method, path)
        STATUSES[0] += 1
        return None
    STATUSES[response.status_code] += 1
    if method != "GET" and response.status_code < 300:
        ACCEPTED.append((method, path, headers.get("Content-Type"), (body or b"")[:300], response.status_code))
    assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/json", (method, path, response.headers)
        error = response.json()
        assert isinstance(error.get("error"), str) and isinstance(error.get("error_description"), str), error
        assert "Traceback" not in response.text
    return response


@pytest.mark.slow
@settings(max_examples=4000, **SETTINGS)
@given(data=st.data())
def test_forged_and_broken_sessions_are_always_401(world: dict, data: st.DataObject) -> None:
    method, template = data.draw(st.sampled_from(OPERATIONS))
    headers, body = data.draw(bodies(method, template)) if data.draw(st.booleans()) else ({}, None)
    path = _path(data.draw, template, valid_ids=data.draw(st.booleans()))
    if data.draw(st.integers(0, 9)) > 0:
        scheme = data.draw(st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "Basic ", "", "Token "]))
        headers = {**headers, "Authorization": scheme + _forged_token(data.draw, world)}
    if data.draw(st.booleans()):
        headers["Idempotency-Key"] = data.draw(header_values)
    response = _send(world, method, path, headers, body)
    if response is not None and response.status_code != 413:
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])


@pytest.mark.slow
@settings(max_examples=5000, **SETTINGS)
@given(data=st.data())
def test_malformed_input_from_real_sessions_is_refused_without_touching_the_portal(world: dict,
                                                                                   data: st.DataObject) -> None:
    method, template = data.draw(st.sampled_from(OPERATIONS))
    is_write = method != "GET"
    headers, body = data.draw(bodies(method, template))
    valid_ids = data.draw(st.booleans()) and method == "GET"
    path = _path(data.draw, template, valid_ids=valid_ids)
    role = data.draw(st.sampled_from(["admin", "admin", "admin", "user"]))
    headers = {**headers, "Authorization": f"Bearer {world[role]}"}
    if data.draw(st.booleans()):
        headers["Idempotency-Key"] = data.draw(st.one_of(
            header_values, st.just("é"), st.just("x" * 300), st.just("")))
    response = _send(world, method, path, headers, body)
    if response is None or not is_write or role != "user":
        return
    if template.startswith("/deals/"):
        # Any user may show badges on deals, with the user's own token; malformed input still gets nowhere.
        assert response.status_code >= 400, response.text[:200]
    else:
        assert response.status_code in (401, 403, 413), response.text[:200]


@pytest.mark.slow
@settings(max_examples=1200, **SETTINGS)
@given(data=st.data())
def test_forged_frame_auth_gets_no_session(world: dict, data: st.DataObject) -> None:
    member = data.draw(member_ids)
    FORGED_MEMBERS.add(member)
    fields = {"AUTH_ID": data.draw(st.text(min_size=0, max_size=80)), "member_id": member,
              "DOMAIN": data.draw(st.sampled_from([world["portal"].domain, "evil.example", ""]))}
    fields = {k: v for k, v in fields.items() if data.draw(st.booleans()) or k == "member_id"}
    as_json = data.draw(st.booleans())
    headers = {"Content-Type": "application/json" if as_json else "application/x-www-form-urlencoded"}
    body = json.dumps(fields).encode() if as_json else requests.models.RequestEncodingMixin._encode_params(fields)
    response = _send(world, "POST", "/api/v1/session", headers, body if isinstance(body, bytes) else body.encode())
    assert response is not None
    assert response.status_code in (400, 401, 403), response.text[:200]


@pytest.mark.slow
def test_nothing_was_stored_and_the_portal_got_nothing(world: dict) -> None:
    total = sum(STATUSES.values())
    assert total >= 10_000, f"only {total} requests were sent (run the whole module)"
    unexpected = [a for a in ACCEPTED if not (a[-1] == 200 and a[1] == "/api/v1/badges/import")]
    assert unexpected == [], unexpected[:5]
    assert STATUSES.keys() <= {0, 200, 204, 400, 401, 403, 404, 409, 410, 413, 422}, STATUSES
    deployed, portal = world["deployed"], world["portal"]
    dump = redis_dump(redis.Redis.from_url(TEST_REDIS_URL))
    # Hypothesis also draws literals it finds in the code (e.g. "VALIDATION_ERROR"); a string the app itself
    # contains proves nothing about a leak.
    own_text = "".join(path.read_text() for path in (ROOT / "b24app").rglob("*.py"))
    distinctive = [m for m in FORGED_MEMBERS if len(m) >= 12 and len(set(m)) > 3 and m not in own_text]
    assert len(distinctive) > 500
    leaked = [m for m in distinctive if m.encode() in dump]
    assert leaked == [], leaked[:5]
    assert portal.badges == {}, "no badge reached the portal"
    after = deployed.sandbox.counters.portal(portal.member_id)["requests"]
    for method in ("crm.activity.badge.add", "batch", "crm.activity.configurable.add",
                   "crm.activity.configurable.update"):
        assert after.get(method, 0) == world["before"].get(method, 0), method
