"""Badge domain rules: what a valid `crm.activity.badge.add` request is, checked before any portal call.

The portal validates too, but it answers only the *first* error, with codes that differ per field
(`REQUIRED_ARG_MISSING`, `0`, `WRONG_TYPE_VALUE`, `BX_INVALID_VALUE`; docs/bitrix24-protocol.md §5.2), and every call
burns the portal's rate budget. So we check everything here, report every offending field at once,
and the portal only ever sees input it would accept (unknown-per-portal languages aside).

Pure: no I/O, no configuration lookups (the app prefix is passed in).

Field names in `BadgeValidationError.fields`:
- `code`, `title`, `value`, `type` — an error about the field as a whole (missing, wrong JSON type,
  empty, too many languages, bad code);
- `title.<lang>` / `value.<lang>` — an error about one entry of a `{lang: text}` map, `<lang>` being
  the key exactly as sent (cut to 32 characters), e.g. `title.de` or `value.xx` (unknown language);
- `<key>` — an unknown top-level key (cut to 64 characters), message "Unknown field.".

App prefix (`B24_BADGE_PREFIX`): badges are portal-global and shared by every app (docs/bitrix24-protocol.md §5.1),
so the stored code is `prefix + code`. A code that already starts with the prefix (case-sensitive)
is taken as already prefixed and not doubled. The code as given must itself match
`[A-Za-z][A-Za-z0-9_]*` (so the UI can check it without knowing the prefix); the length limit applies
to the full stored code; a code that is only the prefix is rejected.

Code length: the docs state no limit, one core version refuses more than 30 characters and the official
SDK's live test creates 36-character codes (docs/bitrix24-protocol.md §5.2). So the app does not decide a
disputed limit: up to MAX_CODE_LENGTH (255, the column's size) goes to the portal, and a portal's refusal
comes back as a validation error naming `code` (docs/DESIGN.md §10).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

BADGE_TYPES = ("success", "failure", "warning", "primary", "secondary")
# In the order Bitrix24 lists them; used for messages. LANGUAGES is the lookup set.
LANGUAGE_IDS = ("en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it", "tr",
                "ja", "sc", "tc", "vn", "id", "ms", "th", "ar")
LANGUAGES = frozenset(LANGUAGE_IDS)

FIELDS = ("code", "title", "value", "type")
MAX_CODE_LENGTH = 255
MAX_TEXT_LENGTH = 255
MAX_LANGUAGES = 20
# Bounds on what an error report may echo back, so a hostile body cannot make it huge.
MAX_UNKNOWN_FIELDS_REPORTED = 10
_MAX_FIELD_NAME = 64
_MAX_LANG_NAME = 32

_CODE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FIELD_NAMES = "|".join(FIELDS)
_NAMED_FIELD_RE = re.compile(rf"`({_FIELD_NAMES})`|'({_FIELD_NAMES})'|(?:parameter|field|argument) ({_FIELD_NAMES})\b",
                             re.IGNORECASE)
_ANY_FIELD_RE = re.compile(rf"\b({_FIELD_NAMES})\b")

MSG_REQUIRED = "Required."
MSG_NOT_STRING = "Must be a string."
MSG_UNKNOWN_FIELD = "Unknown field."
MSG_TEXT_TYPE = "Use a text or a {language: text} map."
MSG_EMPTY = "Must not be empty."
MSG_EMPTY_MAP = "Give a text for at least one language."
MSG_TOO_MANY_LANGUAGES = f"Use at most {MAX_LANGUAGES} languages."
MSG_TOO_LONG = f"Use at most {MAX_TEXT_LENGTH} characters."
MSG_CONTROL = "Remove control characters (line breaks, tabs and other invisible characters)."
MSG_BIDI = "Remove text-direction control characters (U+202A–U+202E, U+2066–U+2069): they can disguise the text."
# Bidirectional embeddings, overrides and isolates reorder what follows them: "Paid \u202edeifirev" shows
# as "Paid verified". Marks (U+200E, U+200F, U+061C) only nudge neutral characters and stay allowed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MSG_LANG_TEXT_TYPE = "Must be a non-empty text."
MSG_UNKNOWN_LANGUAGE = "Unknown language; use one of: " + ", ".join(LANGUAGE_IDS) + "."
MSG_TYPE = "Use one of: " + ", ".join(BADGE_TYPES) + "."
MSG_NOT_OBJECT = "The badge must be a JSON object with code, title, value and type."

Text = str | dict[str, str]


class BadgeValidationError(InvalidInput):
    """Invalid badge input: `fields` maps each offending field to one human message (module docstring)."""

    def __init__(self, fields: Mapping[str, str], message: str | None = None) -> None:
        super().__init__(message or _summary(fields), fields=dict(fields))

    @property
    def message(self) -> str:
        return self.description


def portal_refusal(text: str) -> BadgeValidationError:
    """The portal refused input we considered valid (e.g. a language it does not have); its words
    name the field when they mention one: "field `type`", "parameter code", "Argument 'value'"."""
    named = _NAMED_FIELD_RE.search(text) or _ANY_FIELD_RE.search(text)
    field = next(group for group in named.groups() if group) if named else "badge"
    return BadgeValidationError({field: text}, f"The portal refused the badge: {text}")


def _summary(fields: Mapping[str, str]) -> str:
    """One line naming every field, so batch import results are useful without the `fields` map."""
    if not fields:
        return "The badge is invalid."
    return "The badge is invalid: " + "; ".join(f"{name}: {msg}" for name, msg in fields.items())


@dataclass(frozen=True)
class BadgeInput:
    """A validated badge; `code` is the full stored code (prefix included), texts are trimmed."""

    code: str
    title: str | dict[str, str]
    value: str | dict[str, str]
    type: str

    def to_params(self) -> dict[str, Any]:
        """The exact `crm.activity.badge.add` params (without `auth`); maps are copied, not shared."""
        return {"code": self.code, "title": _copy(self.title), "value": _copy(self.value), "type": self.type}


def _copy(text: Text) -> Text:
    return dict(text) if isinstance(text, dict) else text


def code_message(prefix: str = "") -> str:
    """The one message for every malformed code; it states the limit the user actually has."""
    if not prefix:
        return f"Use 1–{MAX_CODE_LENGTH} characters: letters, digits and _, starting with a letter."
    room = MAX_CODE_LENGTH - len(prefix)
    return (f"Use 1–{room} characters after the app prefix `{prefix}` ({MAX_CODE_LENGTH} in all): "
            "letters, digits and _, starting with a letter.")


def _check_prefix(prefix: str) -> None:
    # Configuration validates B24_BADGE_PREFIX; this guards callers passing something else by mistake.
    if prefix and (not _CODE_RE.fullmatch(prefix) or len(prefix) >= MAX_CODE_LENGTH):
        raise ValueError(f"invalid badge code prefix: {prefix!r}")


def _code_error(code: object, prefix: str) -> tuple[str | None, str]:
    """(error message or None, full stored code)."""
    if not isinstance(code, str):
        return MSG_NOT_STRING, ""
    if not _CODE_RE.fullmatch(code):
        return code_message(prefix), ""
    full = code if code.startswith(prefix) else prefix + code
    if len(full) > MAX_CODE_LENGTH or (prefix and full == prefix):
        return code_message(prefix), ""
    return None, full


def validate_code(code: object, *, prefix: str = "") -> str:
    """The full stored code for a code taken from a URL, by the same rule as `validate_badge`."""
    _check_prefix(prefix)
    error, full = _code_error(code, prefix)
    if error is not None:
        raise BadgeValidationError({"code": error})
    return full


def _has_control(text: str) -> bool:
    # C0 (\x00-\x1f), DEL and C1 (\x80-\x9f) are category Cc; lone surrogates (Cs) are not text at all.
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _text_error(text: object, *, not_text: str) -> tuple[str | None, str]:
    """(error message or None, trimmed text) for one string. Control characters are checked before
    trimming: a tab or line break anywhere is an error, not something we silently drop."""
    if not isinstance(text, str):
        return not_text, ""
    if _has_control(text):
        return MSG_CONTROL, ""
    if not BIDI_CONTROLS.isdisjoint(text):
        return MSG_BIDI, ""
    trimmed = text.strip()
    if not trimmed:
        return MSG_EMPTY, ""
    if len(trimmed) > MAX_TEXT_LENGTH:
        return MSG_TOO_LONG, ""
    return None, trimmed


def _clip(name: object, limit: int) -> str:
    text = name if isinstance(name, str) else repr(name)
    return text if len(text) <= limit else text[:limit] + "…"


def _validate_text(name: str, raw: object, errors: dict[str, str]) -> Text:
    """A string or a {lang: text} map; adds `name` / `name.<lang>` errors, returns the trimmed text."""
    if isinstance(raw, str):
        error, text = _text_error(raw, not_text=MSG_TEXT_TYPE)
        if error:
            errors[name] = error
        return text
    if not isinstance(raw, dict):
        errors[name] = MSG_TEXT_TYPE
        return ""
    if not raw:
        errors[name] = MSG_EMPTY_MAP
        return {}
    if len(raw) > MAX_LANGUAGES:
        # The map is rejected as a whole; per-language checks would only bury this message.
        errors[name] = MSG_TOO_MANY_LANGUAGES
        return {}
    result: dict[str, str] = {}
    for lang, text in raw.items():
        field = f"{name}.{_clip(lang, _MAX_LANG_NAME)}"
        if lang not in LANGUAGES:
            errors[field] = MSG_UNKNOWN_LANGUAGE
            continue
        error, trimmed = _text_error(text, not_text=MSG_LANG_TEXT_TYPE)
        if error:
            errors[field] = error
        else:
            result[lang] = trimmed
    return result


def validate_badge(payload: object, *, prefix: str = "") -> BadgeInput:
    """Check a `{code, title, value, type}` body completely; raise with every field error at once."""
    _check_prefix(prefix)
    if not isinstance(payload, dict):
        raise BadgeValidationError({}, MSG_NOT_OBJECT)
    errors: dict[str, str] = {}
    present = {name: payload[name] for name in FIELDS if name in payload}
    for name in FIELDS:
        if name not in present:
            errors[name] = MSG_REQUIRED

    code = ""
    if "code" in present:
        code_error, code = _code_error(present["code"], prefix)
        if code_error:
            errors["code"] = code_error
    title = _validate_text("title", present["title"], errors) if "title" in present else ""
    value = _validate_text("value", present["value"], errors) if "value" in present else ""
    kind = present.get("type")
    if "type" in present and (not isinstance(kind, str) or kind not in BADGE_TYPES):
        errors["type"] = MSG_TYPE

    unknown = [key for key in payload if key not in FIELDS]
    for key in unknown[:MAX_UNKNOWN_FIELDS_REPORTED]:
        errors[_clip(key, _MAX_FIELD_NAME)] = MSG_UNKNOWN_FIELD
    if errors:
        message = _summary(errors)
        if len(unknown) > MAX_UNKNOWN_FIELDS_REPORTED:
            message += f" (and {len(unknown) - MAX_UNKNOWN_FIELDS_REPORTED} more unknown fields)"
        raise BadgeValidationError(errors, message)
    assert isinstance(kind, str)
    return BadgeInput(code=code, title=title, value=value, type=kind)


def display_text(text: object, lang: str) -> str:
    """What Bitrix24 shows for a title/value: the user's language → `en` → the first entry
    (docs/bitrix24-protocol.md §5.2).

    Accepts whatever the portal returns, not only what we validate: badges are portal-global, so
    another app's badge may carry a list (a PHP array with numeric keys) or non-string entries.
    """
    if isinstance(text, str):
        return text
    if isinstance(text, Mapping):
        for candidate in (lang, lang.lower(), "en"):
            if candidate in text:
                return _as_display(text[candidate])
        return _as_display(next(iter(text.values()), ""))
    if isinstance(text, Sequence) and not isinstance(text, bytes | bytearray):
        return _as_display(text[0]) if text else ""
    return _as_display(text)


def _as_display(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
