// Client-side hints that mirror the server's badge rules (b24app/badges/rules.py) exactly:
// same limits, same field names (`code`, `title`, `title.<lang>`, …), same messages (as i18n keys
// whose English text is the server's message). The server stays the authority; these only save a
// round trip and show the problem where the user is typing. tests/unit/test_rules_agree.py proves they agree.

export const BADGE_TYPES = ["success", "failure", "warning", "primary", "secondary"];
export const LANGUAGE_IDS = ["en", "de", "ru", "ua", "kz", "by", "pl", "fr", "es", "la", "br", "it", "tr",
  "ja", "sc", "tc", "vn", "id", "ms", "th", "ar"];
export const MAX_CODE_LENGTH = 255;
export const MAX_TEXT_LENGTH = 255;
export const MAX_LANGUAGES = 20;
// An unknown language key is named in an error as its first 32 code points and "…", as on the server.
const MAX_LANG_NAME = 32;

const CODE_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
// Unicode categories Cc (controls) and Cs (lone surrogates), as unicodedata.category() sees them.
const CONTROL_RE = /[\p{Cc}\p{Cs}]/u;
// Bidirectional embeddings, overrides and isolates (they can disguise a text), as the server refuses them.
const BIDI_RE = /[\u202a-\u202e\u2066-\u2069]/u;
// What Python's str.strip() removes (controls are refused before trimming, so they do not matter here).
const EDGE_SPACE_RE = /^[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Python's len(): code points, not UTF-16 units. */
export function length(text) {
  return [...text].length;
}

export function pyStrip(text) {
  return text.replace(EDGE_SPACE_RE, "");
}

/** Characters left for the code after the app's prefix (B24_BADGE_PREFIX). */
export function codeRoom(prefix) {
  return MAX_CODE_LENGTH - (prefix || "").length;
}

/** Error as {key, params} (an i18n message) or null. */
export function checkCode(code, prefix = "") {
  const bad = { key: prefix ? "rule.codePrefixed" : "rule.code", params: { room: codeRoom(prefix), prefix, max: MAX_CODE_LENGTH } };
  if (typeof code !== "string") return { key: "rule.notString" };
  if (!CODE_RE.test(code)) return bad;
  const full = code.startsWith(prefix) ? code : prefix + code;
  if (length(full) > MAX_CODE_LENGTH || (prefix && full === prefix)) return bad;
  return null;
}

/** One text (a plain title/value, or one language's entry). */
export function checkText(text) {
  if (typeof text !== "string") return { key: "rule.textType" };
  if (CONTROL_RE.test(text)) return { key: "rule.control" };
  if (BIDI_RE.test(text)) return { key: "rule.bidi" };
  const trimmed = pyStrip(text);
  if (!trimmed) return { key: "rule.empty" };
  if (length(trimmed) > MAX_TEXT_LENGTH) return { key: "rule.tooLong", params: { max: MAX_TEXT_LENGTH } };
  return null;
}

/**
 * Check a whole draft. `draft.title`/`draft.value` are a string or an array of [lang, text] rows
 * (the editor's order; duplicates are possible while editing). Returns {fields, badge}: `fields`
 * maps field names to {key, params}; `badge` is the request body (texts trimmed, maps as objects).
 */
export function validateDraft(draft, prefix = "") {
  const fields = {};
  const code = draft.code.trim();
  const codeError = checkCode(code, prefix);
  if (codeError) fields.code = codeError;
  if (!BADGE_TYPES.includes(draft.type)) fields.type = { key: "rule.type" };
  const badge = { code, title: textOf("title", draft.title, fields), value: textOf("value", draft.value, fields), type: draft.type };
  return { fields, badge };
}

function textOf(name, raw, fields) {
  if (typeof raw === "string") {
    const error = checkText(raw);
    if (error) fields[name] = error;
    return pyStrip(raw);
  }
  if (!raw.length) {
    fields[name] = { key: "rule.emptyMap" };
    return {};
  }
  if (raw.length > MAX_LANGUAGES) {
    fields[name] = { key: "rule.tooManyLanguages", params: { max: MAX_LANGUAGES } };
    return {};
  }
  const map = {};
  for (const [lang, text] of raw) {
    const field = `${name}.${clip(lang, MAX_LANG_NAME)}`;
    if (!LANGUAGE_IDS.includes(lang)) fields[field] = { key: "rule.unknownLanguage" };
    else if (lang in map) fields[field] = { key: "rule.duplicateLanguage" };
    else {
      const error = checkText(text);
      if (error) fields[field] = error;
      map[lang] = typeof text === "string" ? pyStrip(text) : text;
    }
  }
  return map;
}

function clip(text, limit) {
  const points = [...text];
  return points.length <= limit ? text : points.slice(0, limit).join("") + "…";
}

/** What Bitrix24 shows for a title/value: the user's language → `en` → the first entry (docs/bitrix24-protocol.md §5.2). */
export function displayText(text, lang) {
  if (typeof text === "string") return text;
  if (Array.isArray(text)) return text.length ? asText(text[0]) : "";
  if (text && typeof text === "object") {
    for (const candidate of [lang, String(lang || "").toLowerCase(), "en"]) {
      if (candidate && Object.prototype.hasOwnProperty.call(text, candidate)) return asText(text[candidate]);
    }
    const values = Object.values(text);
    return values.length ? asText(values[0]) : "";
  }
  return asText(text);
}

function asText(value) {
  return value === null || value === undefined ? "" : String(value);
}

/** The value as the kanban card shows it: upper case. */
export function displayValue(value, lang) {
  return displayText(value, lang).toUpperCase();
}

/** Languages a text has ([] for a plain string). */
export function languagesOf(text) {
  return text && typeof text === "object" && !Array.isArray(text) ? Object.keys(text) : [];
}
