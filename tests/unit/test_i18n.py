"""The UI texts (static/js/i18n.js): English, German and Russian have the same keys and the same
placeholders, and every key the UI code asks for exists. Node runs once for the whole module."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "static" / "js"
LANGUAGES = ("en", "de", "ru")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Keys that are not literal in the source: `type.${id}` (badge types), `scope.*`, `placement.*`, `event.*`
# (install.json), `rule.*` (the server's messages, checked by test_rules_agree.py).
COMPUTED = re.compile(r"^(type|scope|placement|event|rule)\.")


@pytest.fixture(scope="module")
def catalogues() -> dict[str, dict[str, str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = ("import(process.argv[1]).then((m) => process.stdout.write(JSON.stringify("
              f"Object.fromEntries({json.dumps(list(LANGUAGES))}.map((id) => [id, m.catalogue(id)])))))")
    out = subprocess.run([node, "--input-type=module", "-e", script, (JS / "i18n.js").as_uri()],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_every_language_has_every_key(catalogues: dict[str, dict[str, str]]) -> None:
    english = set(catalogues["en"])
    assert len(english) > 200
    for language in LANGUAGES[1:]:
        assert set(catalogues[language]) == english, language


def test_placeholders_agree(catalogues: dict[str, dict[str, str]]) -> None:
    for key, text in catalogues["en"].items():
        expected = set(PLACEHOLDER.findall(text))
        for language in LANGUAGES[1:]:
            assert set(PLACEHOLDER.findall(catalogues[language][key])) == expected, (language, key)


def test_the_code_asks_only_for_keys_that_exist(catalogues: dict[str, dict[str, str]]) -> None:
    used: set[str] = set()
    for path in JS.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text(encoding="utf-8")))
    templates = (JS.parents[1] / "b24app" / "templates").glob("*.html")
    for path in templates:
        used |= set(re.findall(r'data-i18n="([\w.]+)"', path.read_text(encoding="utf-8")))
    missing = sorted(key for key in used if key not in catalogues["en"] and not COMPUTED.match(key))
    assert missing == []
    assert {"bulk.summary", "pager.range", "deal.accessDenied", "form.noEdit"} <= used
