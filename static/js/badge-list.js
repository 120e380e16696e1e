// Search, sort and paging over the portal's badge list (≤ 500 badges, all in the browser). Pure
// functions, shared by the badge manager and the deal tab's picker.

import { BADGE_TYPES, displayText } from "./rules.js";

export const PAGE_SIZE = 25;
export const SORT_KEYS = ["code", "title", "type"];

/** Every text of a title/value: a plain string, or each language's entry of a {lang: text} map. */
function texts(text) {
  if (text && typeof text === "object") return Object.values(text).map((item) => String(item ?? ""));
  return [String(text ?? "")];
}

const fold = (text) => text.toLocaleLowerCase();

/** What a search looks in: the code, and the title and value in every language. */
export function searchText(badge) {
  return fold([String(badge.code), ...texts(badge.title), ...texts(badge.value)].join("\n"));
}

/** Does the badge match the query? Each word of the query must occur (case-insensitive) somewhere. */
export function matches(badge, query, haystack = searchText(badge)) {
  const words = fold(String(query || "")).split(/\s+/).filter(Boolean);
  return words.every((word) => haystack.includes(word));
}

function collator(language) {
  try {
    return new Intl.Collator(language, { numeric: true, sensitivity: "base" });
  } catch {
    return new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  }
}

/** A sorted copy: by code, by the title shown in `language`, or by type (in the order of BADGE_TYPES);
 *  ties go by code. */
export function sortBadges(badges, key = "code", descending = false, language = "en") {
  const compare = collator(language).compare;
  const byCode = (a, b) => compare(String(a.code), String(b.code));
  const rank = (type) => (BADGE_TYPES.includes(type) ? BADGE_TYPES.indexOf(type) : BADGE_TYPES.length);
  const primary = {
    code: () => 0,
    title: (a, b) => compare(displayText(a.title, language), displayText(b.title, language)),
    type: (a, b) => rank(a.type) - rank(b.type),
  }[key] || (() => 0);
  const sign = descending ? -1 : 1;
  return [...badges].sort((a, b) => sign * (primary(a, b) || byCode(a, b)));
}

/** The page `page` (1-based, clamped) of `total` items: {page, pages, start, end} (start/end 0-based, end exclusive). */
export function pageOf(total, page, size = PAGE_SIZE) {
  const pages = Math.max(1, Math.ceil(total / size));
  const current = Math.min(Math.max(1, Math.trunc(page) || 1), pages);
  const start = (current - 1) * size;
  return { page: current, pages, start, end: Math.min(total, start + size) };
}
