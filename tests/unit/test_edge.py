"""The HTTP edge refuses hostile input before any service sees it (docs/DESIGN.md §10), without Redis."""
from __future__ import annotations

import json

import pytest
from flask import Flask

from b24app.badges.rules import MSG_BIDI, BadgeValidationError, validate_badge
from b24app.errors import BadRequest
from b24app.portals.frames import unflatten
from b24app.web.common import portal_services
from b24app.web.edge import MAX_JSON_DEPTH, STATIC_DIR, json_depth

BADGE = {"code": "paid", "title": "Payment", "value": "Paid", "type": "success"}


@pytest.mark.parametrize(("text", "depth"), [
    ("{}", 1), ("[[[]]]", 3), ('{"a": "[[[[[["}', 1), (r'["\"[[[", [1]]', 2), ("42", 0), ('"x"', 0),
    (json.dumps({"badges": [BADGE] * 500}), 3),
])
def test_json_depth_ignores_brackets_inside_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth


@pytest.mark.parametrize("body", ["[" * 200_000, "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
                                  '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_deeply_nested_json_is_a_clean_400(app: Flask, body: str) -> None:
    response = app.test_client().post("/api/v1/session", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "BAD_REQUEST"


def test_json_at_the_depth_limit_is_parsed(app: Flask) -> None:
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert app.json.loads(nested) == json.loads(nested)


@pytest.mark.parametrize("key", ["auth[member_id]" + "[a]" * 60_000, "x" * 201, "a[b][c][d][e][f][g]"])
def test_overlong_or_deep_form_keys_are_refused(key: str) -> None:
    with pytest.raises(BadRequest):
        unflatten({key: "1"})


def test_bitrix24_shaped_form_keys_unflatten() -> None:
    assert unflatten({"data[FIELDS][ID]": "7", "auth[member_id]": "m"}) == {
        "data": {"FIELDS": {"ID": "7"}}, "auth": {"member_id": "m"}}


def test_events_with_a_deep_form_key_answer_400(app: Flask) -> None:
    response = app.test_client().post("/events", data={"event": "ONAPPUNINSTALL",
                                                       "auth[member_id]" + "[a]" * 60_000: "x"})
    assert response.status_code == 400
    assert response.json["error"] == "BAD_REQUEST"


@pytest.mark.parametrize("raw", ["²", "①", "٣", "３", "-1", "0", "1e3", "99999999999"])
def test_deal_ids_are_ascii_digits_only(app: Flask, raw: str) -> None:
    token = portal_services(app).sessions.issue("m1", 1, False, "portal.example.com")
    response = app.test_client().get(f"/api/v1/deals/{raw}/badge", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400, raw
    assert response.json["fields"] == {"deal_id": "A positive integer."}


@pytest.mark.parametrize(("path", "status"), [
    ("/static/js/app.js", 200), ("/static/css/app.css", 200),
    ("/static/vendor/b24jssdk.min.js", 200 if (STATIC_DIR / "vendor" / "b24jssdk.min.js").exists() else 404),
    ("/static/package.json", 404), ("/static/package-lock.json", 404),
    ("/static/node_modules/@bitrix24/b24jssdk/package.json", 404), ("/static/js/../package.json", 404),
    ("/static/vendor/other.js", 404), ("/static/js/app.js.map", 404),
])
def test_static_serves_the_app_assets_only(app: Flask, path: str, status: int) -> None:
    assert app.test_client().get(path).status_code == status, path


@pytest.mark.parametrize("text", ["Paid \u202edeifirev", "\u202aX", "\u202bX", "\u202cX", "\u202dX", "\u2066X",
                                  "\u2067X", "\u2068X", "X\u2069"])
def test_bidi_controls_in_badge_text_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(BadgeValidationError) as refused:
        validate_badge({**BADGE, "title": {"en": text}, "value": text})
    assert refused.value.fields == {"title.en": MSG_BIDI, "value": MSG_BIDI}
