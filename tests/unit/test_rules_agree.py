"""The browser's badge rules (static/js/rules.js) against the server's (b24app/badges/rules.py).

The UI mirrors the server's rules to save a round trip; this proves they agree: same constants, the same
offending field names for every draft in a table, the same trimmed body when both accept, and the same
display text. Node runs once for the whole module.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from b24app.badges import rules
from b24app.badges.rules import BadgeValidationError, display_text, validate_badge, validate_code

RULES_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "rules.js"
CONSTANTS = ("BADGE_TYPES", "LANGUAGE_IDS", "MAX_CODE_LENGTH", "MAX_TEXT_LENGTH", "MAX_LANGUAGES")

# A title/value is a string or a list of [lang, text] rows (the JS editor's shape; Python gets a dict).
Draft = dict[str, Any]
LONG = "x" * rules.MAX_TEXT_LENGTH
ALL_LANGS = [[lang, "Text"] for lang in rules.LANGUAGE_IDS]


def draft(code: str = "missedCall", title: Any = "Call", value: Any = "Missed", type: str = "failure") -> Draft:
    return {"code": code, "title": title, "value": value, "type": type}


# Codes never carry surrounding whitespace: JS trims the code before checking it, the server does not
# (the UI never sends the untrimmed code, so this is not a disagreement).
DRAFTS: dict[str, tuple[Draft, str]] = {
    "valid": (draft(), ""),
    "code-one-letter": (draft(code="a"), ""),
    "code-digits-underscore": (draft(code="call_2_X"), ""),
    "code-empty": (draft(code=""), ""),
    "code-digit-first": (draft(code="2calls"), ""),
    "code-underscore-first": (draft(code="_call"), ""),
    "code-dash": (draft(code="missed-call"), ""),
    "code-e-acute": (draft(code="café"), ""),
    "code-cyrillic": (draft(code="Жук"), ""),
    "code-kelvin-sign": (draft(code="\u212aelvin"), ""),
    "code-inner-space": (draft(code="missed call"), ""),
    "code-max-length": (draft(code="a" * rules.MAX_CODE_LENGTH), ""),
    "code-too-long": (draft(code="a" * (rules.MAX_CODE_LENGTH + 1)), ""),
    "prefix-short-code": (draft(code="x"), "app_"),
    "prefix-already-prefixed": (draft(code="app_x"), "app_"),
    "prefix-only-prefix": (draft(code="app_"), "app_"),
    "prefix-empty-code": (draft(code=""), "app_"),
    "prefix-room-exact": (draft(code="a" * 26), "app_"),
    "prefix-room-exceeded": (draft(code="a" * 27), "app_"),
    "prefix-prefixed-max": (draft(code="app_" + "a" * 26), "app_"),
    "prefix-prefixed-too-long": (draft(code="app_" + "a" * 27), "app_"),
    "prefix-case-sensitive": (draft(code="APP_x"), "app_"),
    "text-surrounding-spaces": (draft(title="  Call  ", value="\tMissed"), ""),
    "text-unicode-spaces": (draft(title="\u3000Call\xa0", value="\u2028Missed\u202f"), ""),
    "text-only-spaces": (draft(title="   "), ""),
    "text-empty-both": (draft(title="", value=""), ""),
    "text-max-length": (draft(title=LONG), ""),
    "text-too-long": (draft(title=LONG + "x"), ""),
    "text-max-length-padded": (draft(title=f"  {LONG}\u3000"), ""),
    "text-emoji-max-length": (draft(value="😀" * rules.MAX_TEXT_LENGTH), ""),
    "text-emoji-too-long": (draft(value="😀" * (rules.MAX_TEXT_LENGTH + 1)), ""),
    "text-tab-inside": (draft(title="Call\tStatus"), ""),
    "text-newline-trailing": (draft(title="Call\n"), ""),
    "text-del": (draft(value="Miss\x7fed"), ""),
    "text-nel": (draft(value="Miss\x85ed"), ""),
    "text-nul": (draft(title="\x00Call"), ""),
    "text-zero-width-space": (draft(title="Call\u200b"), ""),
    "text-right-to-left-override": (draft(title="Paid \u202edeifirev"), ""),
    "text-isolate": (draft(value="\u2066Missed\u2069"), ""),
    "text-left-to-right-mark-allowed": (draft(title="Call\u200e"), ""),
    "map-valid": (draft(title=[["en", "Call"], ["de", " Anruf "]], value=[["ru", "Пропущен"]]), ""),
    "map-unknown-language": (draft(title=[["en", "Call"], ["xx", "?"]]), ""),
    "map-uppercase-language": (draft(value=[["EN", "Missed"]]), ""),
    "map-empty": (draft(title=[]), ""),
    "map-max-languages": (draft(title=ALL_LANGS[: rules.MAX_LANGUAGES]), ""),
    "map-too-many-languages": (draft(value=ALL_LANGS), ""),
    "map-entry-only-spaces": (draft(title=[["en", "Call"], ["de", "  "]]), ""),
    "map-entry-number": (draft(title=[["en", 5]]), ""),
    "map-entry-null": (draft(value=[["de", None]]), ""),
    "map-entry-too-long": (draft(title=[["fr", LONG + "x"]]), ""),
    "map-entry-control": (draft(value=[["en", "Miss\ned"], ["xx", "\n"]]), ""),
    "map-long-unknown-language": (draft(title=[["z" * 40, "?"]]), ""),
    **{f"type-{kind}": (draft(type=kind), "") for kind in rules.BADGE_TYPES},
    "type-unknown": (draft(type="info"), ""),
    "type-empty": (draft(type=""), ""),
    "type-capitalised": (draft(type="Success"), ""),
    "everything-wrong": (draft(code="1-é", title=[], value="\t", type="info"), "app_"),
}
DISPLAY: list[tuple[Any, str]] = [
    ("Hello", "de"),
    ("", "en"),
    ({"en": "Hi", "de": "Hallo"}, "de"),
    ({"en": "Hi", "de": "Hallo"}, "DE"),
    ({"de": "Hallo", "en": "Hi"}, "ru"),
    ({"de": "Hallo", "fr": "Salut"}, "ru"),
    ({}, "en"),
    ({"de": 7}, "de"),
    ({"en": None}, "en"),
    (["Eins", "Zwei"], "de"),
    ([], "de"),
    (None, "en"),
    (42, "en"),
]

NODE_SCRIPT = """
import fs from "node:fs";
import * as rules from %s;
const input = JSON.parse(fs.readFileSync(0, "utf8"));
const constants = Object.fromEntries(input.constants.map((name) => [name, rules[name]]));
const drafts = Object.fromEntries(Object.entries(input.drafts).map(([id, [draft, prefix]]) => {
  try {
    const { fields, badge } = rules.validateDraft(draft, prefix);
    return [id, { fields: Object.keys(fields), badge }];
  } catch (error) {
    return [id, { thrown: String(error) }];
  }
}));
const display = input.display.map(([text, lang]) => rules.displayText(text, lang));
process.stdout.write(JSON.stringify({ constants, drafts, display }));
"""


@pytest.fixture(scope="module")
def js() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: this test runs static/js/rules.js with Node (CI has it)")
    script = NODE_SCRIPT % json.dumps(RULES_JS.as_uri())
    table = {"constants": CONSTANTS, "drafts": DRAFTS, "display": DISPLAY}
    run = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(table),
                         capture_output=True, text=True, encoding="utf-8", timeout=60, check=False)
    assert run.returncode == 0, f"node failed on {RULES_JS}:\n{run.stderr}"
    return json.loads(run.stdout)


def as_python(draft: Draft) -> Draft:
    return {name: dict(raw) if isinstance(raw, list) else raw for name, raw in draft.items()}


@pytest.mark.parametrize("name", CONSTANTS)
def test_constants_agree(js: dict[str, Any], name: str) -> None:
    expected = getattr(rules, name)
    assert js["constants"][name] == (list(expected) if isinstance(expected, tuple) else expected), name


@pytest.mark.parametrize("case", list(DRAFTS))
def test_validation_agrees(js: dict[str, Any], case: str) -> None:
    draft, prefix = DRAFTS[case]
    result = js["drafts"][case]
    assert "thrown" not in result, f"{case}: validateDraft threw {result.get('thrown')}"
    try:
        accepted: dict[str, Any] | None = validate_badge(as_python(draft), prefix=prefix).to_params()
        python_fields: set[str] = set()
    except BadgeValidationError as error:
        accepted, python_fields = None, set(error.fields)
    assert set(result["fields"]) == python_fields, f"{case}: JS fields {sorted(result['fields'])}, " \
                                                   f"Python {sorted(python_fields)}"
    if accepted is None:
        return
    badge = result["badge"]
    assert {**badge, "code": validate_code(badge["code"], prefix=prefix)} == accepted, f"{case}: bodies differ"


@pytest.mark.parametrize("index", range(len(DISPLAY)), ids=[repr(text)[:30] for text, _ in DISPLAY])
def test_display_text_agrees(js: dict[str, Any], index: int) -> None:
    text, lang = DISPLAY[index]
    assert js["display"][index] == display_text(text, lang), f"displayText({text!r}, {lang!r})"
