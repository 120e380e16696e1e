// "Import badges" from a JSON or CSV file: parse in the browser, send in chunks of 50 (one portal
// `batch` each) with a progress bar, then one result line per file row. createImporter() →
// {element, clearStale()}: the page calls clearStale() when the user moves on to something else.

import { h, replace } from "./dom.js";
import { t, serverMessage } from "./i18n.js";
import { newIdempotencyKey, retrying } from "./api.js";
import { ImportFileError, MAX_IMPORT, parseImport } from "./import-parse.js";
import { announce, errorText } from "./ui.js";
import { fitSoon } from "./frame.js";

const CHUNK = 50;
const MAX_ATTEMPTS = 3;

export function createImporter({ api, onImported, onPortalUnavailable }) {
  let items = null;
  let running = false;

  const file = h("input", { type: "file", id: "import-file", accept: ".json,.csv,application/json,text/csv",
    "aria-describedby": "import-help", onchange: () => load() });
  const found = h("p", { class: "import-found", id: "import-found", role: "status" });
  const problem = h("div", { class: "form-problem", id: "import-problem", role: "alert" });
  const start = h("button", { type: "button", class: "button button-primary", id: "import-start", disabled: true,
    onclick: () => run() }, t("import.start"));
  const bar = h("progress", { id: "import-progress-bar", max: "1", value: "0" });
  const progressText = h("span", { class: "progress-text", id: "import-progress-text" });
  const progress = h("div", { class: "import-progress", id: "import-progress", hidden: true },
    h("label", { for: "import-progress-bar" }, t("import.progressLabel")), " ", bar, " ", progressText);
  const results = h("div", { class: "import-results", id: "import-results" });

  const section = h("section", { class: "panel import", "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, t("import.heading")),
    h("div", { class: "hint", id: "import-help" },
      h("p", {}, t("import.helpJson")),
      h("p", {}, t("import.helpCsv")),
      h("pre", { class: "example", id: "import-example", tabindex: "0", "aria-label": t("import.example") },
        h("code", {}, "code,title,value,type,title_de,value_de\nlate_payment,Payment,Overdue,failure,Zahlung,Überfällig")),
      h("p", {}, t("import.helpLimit", { max: MAX_IMPORT }))),
    h("div", { class: "field" }, h("label", { for: "import-file" }, t("import.file")), file),
    found, problem, h("div", { class: "form-actions" }, start), progress, results);

  async function load() {
    items = null;
    start.disabled = true;
    replace(found);
    replace(problem);
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    try {
      items = parseImport(chosen.name, await chosen.text());
      replace(found, t("import.found", { count: items.length, name: chosen.name }));
      start.disabled = running;
    } catch (error) {
      const text = error instanceof ImportFileError ? t(error.key, error.params) : String(error);
      replace(problem, h("p", {}, t("import.unreadable", { name: chosen.name, detail: text })));
    }
    fitSoon();
  }

  async function sendChunk(chunk) {
    const key = newIdempotencyKey(); // the same key for every attempt at this chunk
    const answer = await retrying(() => api.post("/badges/import", { badges: chunk.map((item) => item.badge) }, key), {
      attempts: MAX_ATTEMPTS,
      onWait: (seconds) => {
        progressText.textContent = t("import.waiting", { seconds });
      },
    });
    return answer.results;
  }

  async function run() {
    if (!items || running) return;
    running = true;
    start.disabled = true;
    file.disabled = true;
    replace(problem);
    const todo = items;
    const outcome = [];
    bar.max = todo.length;
    bar.value = 0;
    progress.hidden = false;
    replace(results);
    let stop = null;
    announce(t("import.started", { count: todo.length }));
    for (let offset = 0; offset < todo.length; offset += CHUNK) {
      const chunk = todo.slice(offset, offset + CHUNK);
      if (stop) {
        chunk.forEach((item) => outcome.push({ item, ok: false, text: t("import.notSent") }));
      } else {
        try {
          const answer = await sendChunk(chunk);
          chunk.forEach((item, index) => outcome.push({ item, ...describe(answer[index]) }));
        } catch (error) {
          if (error.isPortalUnavailable) onPortalUnavailable(error);
          stop = error;
          chunk.forEach((item) => outcome.push({ item, ok: false, text: errorText(error) }));
        }
      }
      bar.value = Math.min(todo.length, offset + chunk.length);
      progressText.textContent = t("import.progress", { done: bar.value, total: todo.length });
      fitSoon();
    }
    const created = outcome.filter((entry) => entry.ok).length;
    const summary = t("import.summary", { created, failed: outcome.length - created });
    renderResults(outcome, summary);
    announce(summary);
    running = false;
    file.disabled = false;
    start.disabled = false;
    if (created) onImported();
    fitSoon();
  }

  function describe(result) {
    if (!result) return { ok: false, text: t("import.noAnswer") };
    if (result.ok) return { ok: true, text: t("import.created") };
    let text = serverMessage(result.error_description || result.error || "");
    if (result.fields && Object.keys(result.fields).length) {
      text = Object.entries(result.fields).map(([name, message]) => `${name}: ${serverMessage(message)}`).join("; ");
    } else if (result.error === "BADGE_EXISTS") {
      text = t("error.badgeExists");
    }
    return { ok: false, text: t("import.failed", { detail: text }) };
  }

  function renderResults(outcome, summary) {
    replace(results,
      h("p", { class: "import-summary", id: "import-summary" }, summary),
      h("table", { class: "table results-table" },
        h("caption", { class: "sr-only" }, t("import.resultsCaption")),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, t("import.row")),
          h("th", { scope: "col" }, t("list.code")),
          h("th", { scope: "col" }, t("import.result")))),
        h("tbody", {}, outcome.map(({ item, ok, text }) => h("tr", { class: ok ? "result-ok" : "result-failed",
          dataset: { row: item.row, ok: String(ok) } },
        h("td", {}, String(item.row)),
        h("td", {}, h("code", {}, codeOf(item.badge))),
        h("td", {}, h("span", { class: ok ? "result-mark ok" : "result-mark failed", "aria-hidden": "true" }, ok ? "✓" : "✕"),
          " ", text))))));
  }

  /**
   * Drop what an earlier attempt left (an unreadable file's message, the results of a finished import)
   * once the user does something else; a file that is read and waiting to be imported stays.
   */
  function clearStale() {
    if (running) return;
    replace(problem);
    replace(results);
    progress.hidden = true;
    if (!items) {
      file.value = "";
      replace(found);
    }
    fitSoon();
  }

  return { element: section, clearStale };
}

function codeOf(badge) {
  return badge && typeof badge === "object" && typeof badge.code === "string" ? badge.code : "—";
}
