"""Validation of a configurable activity's `layout` (LayoutDto, docs/bitrix24-protocol.md §5.6).

The sandbox checks the rules the protocol document lists: required `icon.code`, `header.title`,
`body.logo.code`; 1–20 `body.blocks` whose keys use only Latin letters, digits, `-` and `_`; at
most two header tags of a known type; language keys that exist on the portal. Deeper structures
(block properties, footer buttons) are accepted as given. Error texts are the sandbox's own
wording [assumption]; codes are the real ones.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import RestError
from .models import PORTAL_LANGUAGES

TAG_TYPES = ("warning", "success", "failure", "primary", "secondary")
TOP_LEVEL = ("icon", "header", "body", "footer")
MAX_BLOCKS = 20
MAX_TAGS = 2
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _required(path: str) -> RestError:
    return RestError("FIELD_IS_REQUIRED", f"Field `{path}` is required")


def _as_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return None


def _text_errors(value: Any, path: str) -> list[RestError]:
    if isinstance(value, str):
        return [] if value != "" else [_required(path)]
    texts = _as_dict(value)
    if not texts:
        return [_required(path)]
    return [RestError("WRONG_LANG", f"Language `{lang}` was not found in `{path}`")
            for lang in texts if lang not in PORTAL_LANGUAGES]


def _code_errors(section: Any, path: str) -> list[RestError]:
    obj = _as_dict(section)
    if obj is None:
        return [_required(path)]
    code = obj.get("code")
    if not isinstance(code, str) or code == "":
        return [_required(f"{path}.code")]
    return []


def validate_layout(layout: dict[str, Any]) -> list[RestError]:
    """All layout errors in document order (the caller returns the first)."""
    errors: list[RestError] = []
    for key in layout:
        if key not in TOP_LEVEL:
            errors.append(RestError("FIELD_IS_REDUNDANT", f"Field `{key}` is redundant"))
    errors += _code_errors(layout.get("icon"), "icon")
    header = _as_dict(layout.get("header"))
    if header is None:
        errors.append(_required("header"))
    else:
        errors += _text_errors(header.get("title"), "header.title")
        tags = _as_dict(header.get("tags")) if header.get("tags") is not None else {}
        if tags is None:
            errors.append(RestError("ENUM_FIELD", "Field `header.tags` must be an array"))
        else:
            if len(tags) > MAX_TAGS:
                errors.append(RestError("TOO_MANY_ITEMS", f"Field `header.tags` has more than {MAX_TAGS} items"))
            for name, tag in tags.items():
                kind = tag.get("type") if isinstance(tag, dict) else None
                if kind not in TAG_TYPES:
                    errors.append(RestError("ENUM_FIELD", f"Field `header.tags.{name}.type` has a wrong value"))
    body = _as_dict(layout.get("body"))
    if body is None:
        errors.append(_required("body"))
        return errors
    errors += _code_errors(body.get("logo"), "body.logo")
    blocks = _as_dict(body.get("blocks"))
    if not blocks:
        errors.append(_required("body.blocks"))
        return errors
    if len(blocks) > MAX_BLOCKS:
        errors.append(RestError("TOO_MANY_ITEMS", f"Field `body.blocks` has more than {MAX_BLOCKS} items"))
    for key, block in blocks.items():
        if not _KEY.match(str(key)):
            errors.append(RestError("KEY_CONTAIN_WRONG_SYMBOLS",
                                    f"Key `{key}` of `body.blocks` contains wrong symbols"))
        if not isinstance(block, dict) or not block.get("type"):
            errors.append(_required(f"body.blocks.{key}.type"))
    return errors


def title_text(layout: dict[str, Any], lang: str) -> str:
    """The header title shown to a user of language `lang` (fallback: en, then the first one)."""
    header = layout.get("header")
    return localized(header.get("title", "") if isinstance(header, dict) else "", lang)


def localized(value: Any, lang: str) -> str:
    """Badge/title display fallback (docs/bitrix24-protocol.md §5.2): current language -> `en` -> first element."""
    if isinstance(value, str):
        return value
    texts = _as_dict(value) or {}
    for key in (lang, "en"):
        if isinstance(texts.get(key), str):
            return texts[key]
    for text in texts.values():
        if isinstance(text, str):
            return text
    return ""
