// Reading an import file into badge objects for POST /api/v1/badges/import. Pure functions.
//
// JSON: an array of badges, or {"badges": [...]} — each item is sent as it is (the server checks it).
// CSV:  a header row `code,title,value,type`; optional `title_<lang>` / `value_<lang>` columns turn the
//       text into a {lang: text} map (a plain `title` then fills in `en` unless `title_en` is given).
//       `type` is case-insensitive. Comma or semicolon separated (the header decides), quotes as in RFC 4180, UTF-8 (BOM allowed).
// Every item keeps the row it came from (`row`: 1-based item number for JSON, line number for CSV).

import { LANGUAGE_IDS } from "./rules.js";

export const MAX_IMPORT = 500;

export class ImportFileError extends Error {
  constructor(key, params) {
    super(key);
    this.key = key;
    this.params = params || {};
  }
}

/** → [{row, badge}] or throws ImportFileError. */
export function parseImport(name, text) {
  const clean = text.replace(/^\uFEFF/, "");
  const isJson = /\.json$/i.test(name) || /^\s*[[{]/.test(clean);
  const items = isJson ? parseJson(clean) : parseCsv(clean);
  if (!items.length) throw new ImportFileError("import.noRows");
  if (items.length > MAX_IMPORT) throw new ImportFileError("import.tooMany", { max: MAX_IMPORT, count: items.length });
  return items;
}

export function parseJson(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ImportFileError("import.badJson", { detail: error.message });
  }
  const list = Array.isArray(data) ? data : data && Array.isArray(data.badges) ? data.badges : null;
  if (!list) throw new ImportFileError("import.jsonShape");
  return list.map((badge, index) => ({ row: index + 1, badge }));
}

/** RFC 4180 records: [{line, cells}] (line = the 1-based line the record starts on). */
export function csvRecords(text, separator) {
  const records = [];
  let cells = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') {
        quoted = false;
      } else {
        if (ch === "\n") line += 1;
        cell += ch;
      }
    } else if (ch === '"' && cell === "") {
      quoted = true;
    } else if (ch === separator) {
      cells.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i += 1;
      cells.push(cell);
      records.push({ line: start, cells });
      cells = [];
      cell = "";
      line += 1;
      start = line;
    } else {
      cell += ch;
    }
  }
  if (quoted) throw new ImportFileError("import.csvQuote", { line: start });
  if (cell !== "" || cells.length) {
    cells.push(cell);
    records.push({ line: start, cells });
  }
  return records.filter((record) => record.cells.some((value) => value.trim() !== ""));
}

export function parseCsv(text) {
  const firstLine = text.split(/\r?\n/, 1)[0] || "";
  const separator = firstLine.includes(";") && !firstLine.includes(",") ? ";" : ",";
  const records = csvRecords(text, separator);
  if (!records.length) throw new ImportFileError("import.noRows");
  const header = records[0].cells.map((name) => name.trim().toLowerCase());
  const columns = header.map(describeColumn);
  const unknown = header.filter((name, index) => !columns[index]);
  if (unknown.length) throw new ImportFileError("import.csvUnknownColumns", { columns: unknown.join(", ") });
  const names = new Set(header);
  if (names.size !== header.length) throw new ImportFileError("import.csvDuplicateColumns");
  const missing = ["code", "type"].filter((name) => !names.has(name));
  for (const field of ["title", "value"]) {
    if (!header.some((name) => name === field || name.startsWith(`${field}_`))) missing.push(field);
  }
  if (missing.length) throw new ImportFileError("import.csvMissingColumns", { columns: missing.join(", ") });
  return records.slice(1).map(({ line, cells }) => ({ row: line, badge: rowToBadge(columns, cells) }));
}

function describeColumn(name) {
  if (["code", "title", "value", "type"].includes(name)) return { field: name, lang: null };
  const match = /^(title|value)_([a-z]{2})$/.exec(name);
  return match && LANGUAGE_IDS.includes(match[2]) ? { field: match[1], lang: match[2] } : null;
}

function rowToBadge(columns, cells) {
  const plain = {};
  const maps = { title: {}, value: {} };
  columns.forEach((column, index) => {
    const cell = cells[index] === undefined ? "" : cells[index];
    if (column.lang) {
      if (cell.trim() !== "") maps[column.field][column.lang] = cell;
    } else {
      if (column.field === "code") plain.code = cell.trim();
      else if (column.field === "type") plain.type = cell.trim().toLowerCase();
      else plain[column.field] = cell;
    }
  });
  const badge = { code: plain.code || "", title: "", value: "", type: plain.type || "" };
  for (const field of ["title", "value"]) {
    const map = maps[field];
    const text = plain[field] || "";
    if (Object.keys(map).length) {
      badge[field] = text.trim() !== "" && !("en" in map) ? { en: text, ...map } : map;
    } else {
      badge[field] = text;
    }
  }
  return badge;
}
