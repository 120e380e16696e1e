"""Badge domain rules: every rule and boundary, checked without any portal or Redis."""
from __future__ import annotations

import json

import pytest

from b24app.badges.rules import (
    BADGE_TYPES,
    LANGUAGES,
    MAX_UNKNOWN_FIELDS_REPORTED,
    MSG_CONTROL,
    MSG_EMPTY,
    MSG_EMPTY_MAP,
    MSG_LANG_TEXT_TYPE,
    MSG_NOT_OBJECT,
    MSG_NOT_STRING,
    MSG_REQUIRED,
    MSG_TEXT_TYPE,
    MSG_TOO_LONG,
    MSG_TOO_MANY_LANGUAGES,
    MSG_TYPE,
    MSG_UNKNOWN_FIELD,
    MSG_UNKNOWN_LANGUAGE,
    BadgeInput,
    BadgeValidationError,
    code_message,
    display_text,
    validate_badge,
    validate_code,
)

SEED = {"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}
# Twenty languages in a fixed order (LANGUAGES has 21).
TWENTY = ["en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it", "tr",
          "ja", "sc", "tc", "vn", "id", "ms", "th"]


def body(**changes: object) -> dict:
    payload = dict(SEED)
    payload.update(changes)
    return payload


def errors_of(payload: object, prefix: str = "") -> dict[str, str]:
    with pytest.raises(BadgeValidationError) as caught:
        validate_badge(payload, prefix=prefix)
    return caught.value.fields


# --- constants ---------------------------------------------------------------------------------

def test_types_and_languages_are_the_documented_sets():
    assert BADGE_TYPES == ("success", "failure", "warning", "primary", "secondary")
    assert isinstance(LANGUAGES, frozenset)
    expected = {"en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it", "tr", "ja",
                "sc", "tc", "vn", "id", "ms", "th", "ar"}
    assert expected == LANGUAGES


# --- the documentation's example of crm.activity.badge.add, and to_params -------------------------

def test_the_documented_example_passes_and_gives_exactly_its_params():
    badge = validate_badge(dict(SEED))
    assert badge == BadgeInput(code="missedCall", title="Call Status", value="Missed", type="failure")
    params = badge.to_params()
    # The documented request body minus auth, byte for byte in the same key order.
    assert json.dumps(params, separators=(",", ":")) == (
        '{"code":"missedCall","title":"Call Status","value":"Missed","type":"failure"}')


def test_language_maps_pass_through_to_params_in_order_and_copied():
    badge = validate_badge(body(title={"en": "Call status", "de": "Anrufstatus"},
                                value={"de": "Verpasst", "en": "Missed"}))
    params = badge.to_params()
    assert params == {"code": "missedCall", "title": {"en": "Call status", "de": "Anrufstatus"},
                      "value": {"de": "Verpasst", "en": "Missed"}, "type": "failure"}
    assert list(params["value"]) == ["de", "en"]
    params["title"]["en"] = "changed"
    assert badge.title == {"en": "Call status", "de": "Anrufstatus"}


def test_input_is_not_mutated_and_result_does_not_share_its_maps():
    title = {"en": "  Call status  "}
    payload = body(title=title)
    badge = validate_badge(payload)
    assert badge.title == {"en": "Call status"}
    assert title == {"en": "  Call status  "}
    assert badge.title is not title


@pytest.mark.parametrize("kind", BADGE_TYPES)
def test_every_type_is_accepted(kind):
    assert validate_badge(body(type=kind)).type == kind


# --- the payload as a whole ----------------------------------------------------------------------

@pytest.mark.parametrize("payload", [None, [], [SEED], "x", 1, 1.5, True, ()])
def test_payload_must_be_an_object(payload):
    with pytest.raises(BadgeValidationError) as caught:
        validate_badge(payload)
    assert caught.value.fields == {}
    assert caught.value.message == MSG_NOT_OBJECT
    assert str(caught.value) == MSG_NOT_OBJECT


def test_empty_object_reports_every_field_as_required():
    assert errors_of({}) == {"code": MSG_REQUIRED, "title": MSG_REQUIRED, "value": MSG_REQUIRED,
                             "type": MSG_REQUIRED}


@pytest.mark.parametrize("missing", ["code", "title", "value", "type"])
def test_each_missing_field_is_required(missing):
    payload = dict(SEED)
    del payload[missing]
    assert errors_of(payload) == {missing: MSG_REQUIRED}


def test_unknown_field_is_an_error_even_when_the_rest_is_valid():
    assert errors_of(body(auth="token")) == {"auth": MSG_UNKNOWN_FIELD}


def test_unknown_fields_are_bounded_in_the_report():
    payload = body(**{f"extra{i}": i for i in range(MAX_UNKNOWN_FIELDS_REPORTED + 5)})
    with pytest.raises(BadgeValidationError) as caught:
        validate_badge(payload)
    assert list(caught.value.fields) == [f"extra{i}" for i in range(MAX_UNKNOWN_FIELDS_REPORTED)]
    assert "(and 5 more unknown fields)" in caught.value.message


def test_a_huge_unknown_key_is_clipped_in_the_report():
    fields = errors_of(body(**{"k" * 10_000: 1}))
    (name,) = fields
    assert name.startswith("kkk") and len(name) <= 65


def test_several_errors_are_reported_together():
    with pytest.raises(BadgeValidationError) as caught:
        validate_badge({"code": "1bad", "title": "", "value": {"xx": "a", "de": "\x00"}, "type": "red",
                        "colour": "x"})
    assert caught.value.fields == {
        "code": code_message(),
        "title": MSG_EMPTY,
        "value.xx": MSG_UNKNOWN_LANGUAGE,
        "value.de": MSG_CONTROL,
        "type": MSG_TYPE,
        "colour": MSG_UNKNOWN_FIELD,
    }
    # The summary names every field, so a batch item's error_description is useful on its own.
    for name in caught.value.fields:
        assert name in caught.value.message
    assert caught.value.code == "VALIDATION_ERROR"


# --- code ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["a", "A", "missedCall", "a_1", "z9_", "a" * 30, "a" * 36, "a" * 255,
                                  "Ab_" + "9" * 252])
def test_valid_codes(code):
    assert validate_badge(body(code=code)).code == code


@pytest.mark.parametrize("code", ["", "1abc", "_abc", "a-b", "a b", " abc", "abc ", "abc\n", "ab.c",
                                  "ä", "aé", "a" * 256, "a\x00"])
def test_invalid_codes(code):
    assert errors_of(body(code=code)) == {"code": code_message()}


@pytest.mark.parametrize("code", [None, 1, 1.5, True, False, [], ["a"], {"a": 1}])
def test_code_of_wrong_json_type(code):
    assert errors_of(body(code=code)) == {"code": MSG_NOT_STRING}


def test_code_message_is_the_documented_one():
    assert code_message() == "Use 1–255 characters: letters, digits and _, starting with a letter."
    assert "252" in code_message("ab_") and "`ab_`" in code_message("ab_")


# --- code with the app prefix --------------------------------------------------------------------

def test_prefix_is_prepended():
    assert validate_badge(dict(SEED), prefix="ab_").code == "ab_missedCall"
    assert validate_badge(dict(SEED), prefix="ab_").to_params()["code"] == "ab_missedCall"


def test_prefix_is_not_doubled():
    assert validate_badge(body(code="ab_missedCall"), prefix="ab_").code == "ab_missedCall"


def test_prefix_match_is_case_sensitive():
    assert validate_badge(body(code="AB_missedCall"), prefix="ab_").code == "ab_AB_missedCall"


def test_prefix_length_boundary_counts_the_prefix():
    assert validate_badge(body(code="x" * 252), prefix="ab_").code == "ab_" + "x" * 252      # 255
    assert errors_of(body(code="x" * 253), prefix="ab_") == {"code": code_message("ab_")}   # 256
    assert validate_badge(body(code="ab_" + "x" * 252), prefix="ab_").code == "ab_" + "x" * 252
    assert errors_of(body(code="ab_" + "x" * 253), prefix="ab_") == {"code": code_message("ab_")}


def test_given_code_must_itself_start_with_a_letter_even_with_a_prefix():
    assert errors_of(body(code="1call"), prefix="ab_") == {"code": code_message("ab_")}
    assert errors_of(body(code="_call"), prefix="ab") == {"code": code_message("ab")}


def test_code_that_is_only_the_prefix_is_rejected():
    assert errors_of(body(code="ab_"), prefix="ab_") == {"code": code_message("ab_")}
    assert validate_badge(body(code="ab"), prefix="ab_").code == "ab_ab"


@pytest.mark.parametrize("prefix", ["1ab", "a-b", "a" * 255, " ab"])
def test_malformed_prefix_is_a_programming_error(prefix):
    with pytest.raises(ValueError, match="prefix"):
        validate_badge(dict(SEED), prefix=prefix)
    with pytest.raises(ValueError, match="prefix"):
        validate_code("abc", prefix=prefix)


def test_validate_code_uses_the_same_rule():
    assert validate_code("missedCall") == "missedCall"
    assert validate_code("missedCall", prefix="ab_") == "ab_missedCall"
    assert validate_code("ab_missedCall", prefix="ab_") == "ab_missedCall"
    assert validate_code("a" * 255) == "a" * 255
    assert validate_code("x" * 252, prefix="ab_") == "ab_" + "x" * 252


@pytest.mark.parametrize(("code", "prefix"), [("a" * 256, ""), ("x" * 253, "ab_"), ("", ""), ("1a", ""),
                                              ("a%2Fb", ""), ("ab_", "ab_"), (None, "")])
def test_validate_code_rejects(code, prefix):
    with pytest.raises(BadgeValidationError) as caught:
        validate_code(code, prefix=prefix)
    assert list(caught.value.fields) == ["code"]


# --- title and value: strings --------------------------------------------------------------------

@pytest.mark.parametrize("field", ["title", "value"])
def test_text_is_trimmed(field):
    assert getattr(validate_badge(body(**{field: "  Missed  "})), field) == "Missed"


@pytest.mark.parametrize("field", ["title", "value"])
def test_text_is_kept_as_given_without_escaping(field):
    text = "<b>Missed</b> & \"quoted\" — Пропущен 📞"
    assert getattr(validate_badge(body(**{field: text})), field) == text


@pytest.mark.parametrize("field", ["title", "value"])
@pytest.mark.parametrize("text", ["", " ", "   ", "\u00a0\u3000"])
def test_empty_or_whitespace_text(field, text):
    assert errors_of(body(**{field: text})) == {field: MSG_EMPTY}


@pytest.mark.parametrize("field", ["title", "value"])
def test_text_length_boundary(field):
    assert getattr(validate_badge(body(**{field: "x" * 255})), field) == "x" * 255
    assert errors_of(body(**{field: "x" * 256})) == {field: MSG_TOO_LONG}
    # Characters, not bytes; surrounding whitespace does not count.
    assert getattr(validate_badge(body(**{field: "ж" * 255})), field) == "ж" * 255
    assert getattr(validate_badge(body(**{field: " " + "x" * 255 + " "})), field) == "x" * 255


@pytest.mark.parametrize("field", ["title", "value"])
@pytest.mark.parametrize("text", [None, 1, 0, 1.5, True, False, [], ["Missed"], [["x"]]])
def test_text_of_wrong_json_type(field, text):
    assert errors_of(body(**{field: text})) == {field: MSG_TEXT_TYPE}


@pytest.mark.parametrize("field", ["title", "value"])
@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x85", "\ud800"])
def test_control_characters_are_rejected(field, char):
    assert errors_of(body(**{field: f"Miss{char}ed"})) == {field: MSG_CONTROL}
    # Also at the edges, where trimming would otherwise hide them.
    assert errors_of(body(**{field: f"Missed{char}"})) == {field: MSG_CONTROL}


# --- title and value: language maps ---------------------------------------------------------------

@pytest.mark.parametrize("field", ["title", "value"])
def test_every_language_is_accepted(field):
    for lang in LANGUAGES:
        assert getattr(validate_badge(body(**{field: {lang: "t"}})), field) == {lang: "t"}


@pytest.mark.parametrize("field", ["title", "value"])
def test_empty_map(field):
    assert errors_of(body(**{field: {}})) == {field: MSG_EMPTY_MAP}


@pytest.mark.parametrize("field", ["title", "value"])
def test_language_count_boundary(field):
    twenty = {lang: lang for lang in TWENTY}
    assert getattr(validate_badge(body(**{field: twenty})), field) == twenty
    assert errors_of(body(**{field: {**twenty, "ar": "ar"}})) == {field: MSG_TOO_MANY_LANGUAGES}


@pytest.mark.parametrize("field", ["title", "value"])
@pytest.mark.parametrize("lang", ["xx", "EN", "en-US", "en_US", " en", "", "0", "ua "])
def test_unknown_language_key(field, lang):
    assert errors_of(body(**{field: {"en": "ok", lang: "text"}})) == {f"{field}.{lang}": MSG_UNKNOWN_LANGUAGE}


@pytest.mark.parametrize("field", ["title", "value"])
def test_per_language_text_rules(field):
    assert errors_of(body(**{field: {"en": "ok", "de": ""}})) == {f"{field}.de": MSG_EMPTY}
    assert errors_of(body(**{field: {"en": "ok", "de": "  "}})) == {f"{field}.de": MSG_EMPTY}
    assert errors_of(body(**{field: {"en": "ok", "de": "x" * 256}})) == {f"{field}.de": MSG_TOO_LONG}
    assert errors_of(body(**{field: {"en": "ok", "de": "a\nb"}})) == {f"{field}.de": MSG_CONTROL}
    assert getattr(validate_badge(body(**{field: {"en": " ok ", "de": "x" * 255}})), field) == {
        "en": "ok", "de": "x" * 255}


@pytest.mark.parametrize("field", ["title", "value"])
@pytest.mark.parametrize("text", [None, 1, 1.5, True, [], ["x"], {"en": "x"}])
def test_per_language_text_of_wrong_json_type(field, text):
    assert errors_of(body(**{field: {"en": "ok", "ru": text}})) == {f"{field}.ru": MSG_LANG_TEXT_TYPE}


def test_every_bad_language_is_reported():
    assert errors_of(body(title={"xx": "a", "yy": "b", "en": "", "de": "ok"})) == {
        "title.xx": MSG_UNKNOWN_LANGUAGE, "title.yy": MSG_UNKNOWN_LANGUAGE, "title.en": MSG_EMPTY}


def test_huge_language_key_is_clipped_in_the_report():
    (name,) = errors_of(body(title={"q" * 5000: "x"}))
    assert name.startswith("title.qqq") and len(name) <= len("title.") + 33


# --- type ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["", "Failure", "FAILURE", " failure", "danger", "lavender", None, 1, True,
                                  [], ["failure"], {"failure": 1}])
def test_invalid_type(kind):
    assert errors_of(body(type=kind)) == {"type": MSG_TYPE}


# --- display fallback ----------------------------------------------------------------------------

def test_display_plain_string_whatever_the_language():
    assert display_text("Missed", "de") == "Missed"


def test_display_prefers_the_users_language():
    assert display_text({"en": "Missed", "de": "Verpasst"}, "de") == "Verpasst"


def test_display_falls_back_to_english():
    assert display_text({"de": "Verpasst", "en": "Missed"}, "ru") == "Missed"


def test_display_falls_back_to_the_first_entry():
    assert display_text({"de": "Verpasst", "ru": "Пропущен"}, "fr") == "Verpasst"
    assert display_text({"ru": "Пропущен", "de": "Verpasst"}, "fr") == "Пропущен"


def test_display_language_is_case_insensitive():
    assert display_text({"en": "Missed", "de": "Verpasst"}, "DE") == "Verpasst"


def test_display_present_empty_entry_wins_like_php_null_coalescing():
    assert display_text({"en": "Missed", "de": ""}, "de") == ""


def test_display_of_portal_data_we_did_not_write():
    assert display_text({}, "en") == ""
    assert display_text(["Erste", "Second"], "en") == "Erste"  # a PHP list from another app
    assert display_text({"0": "Erste"}, "en") == "Erste"
    assert display_text({"en": None}, "en") == ""
    assert display_text({"en": 5}, "en") == "5"
    assert display_text([], "en") == ""
