// The app page (DEFAULT placement): the portal's badges as Bitrix24 shows them — search, sort and
// pages of 25 over the whole list (≤ 500, read once from the cached GET /api/v1/badges) — with create,
// duplicate, replace, import, delete and bulk delete for administrators; read-only for other users.

import { h, replace } from "./dom.js";
import { t, lang } from "./i18n.js";
import { displayText, languagesOf } from "./rules.js";
import { PAGE_SIZE, matches, pageOf, searchText, sortBadges } from "./badge-list.js";
import { announce, chip, dealsShowing, errorText, notice, typeLabel } from "./ui.js";
import { confirmAction } from "./dialog.js";
import { createBadgeForm } from "./badge-form.js";
import { createImporter } from "./badge-import.js";
import { fitSoon } from "./frame.js";
import { retrying } from "./api.js";

const SORTABLE = [["title", "list.title"], ["code", "list.code"], ["type", "list.type"]];
const LISTED_CODES = 8; // codes named in the bulk confirmation; the rest are counted
const BULK_ATTEMPTS = 5; // a long run meets the portal's rate limit: be patient with busy answers

export function badgeManager({ api, config, onPortalUnavailable }) {
  const isAdmin = config.isAdmin;
  let badges = [];
  let haystacks = new Map(); // badge → its search text
  const view = { query: "", sort: "code", descending: false, page: 1 };
  const selected = new Set(); // codes, kept across pages and searches
  let pageCodes = []; // codes on the page shown
  let bulkRunning = false;

  const listBody = h("div", { class: "list-body", id: "badge-list", "aria-live": "polite", "aria-busy": "true" });
  const count = h("span", { class: "count", id: "badge-count" });
  const refresh = h("button", { type: "button", class: "button", id: "badges-refresh", onclick: () => load() },
    t("list.refresh"));
  const search = h("input", { type: "search", id: "badge-search", autocomplete: "off", spellcheck: "false",
    placeholder: t("list.searchPlaceholder"), "aria-controls": "badge-list",
    oninput: () => {
      view.query = search.value;
      view.page = 1;
      render();
    } });

  // Bulk actions (administrators): how many are selected, delete them, forget the selection.
  const bulkCount = h("span", { class: "bulk-count", id: "bulk-count" });
  const bulkDelete = h("button", { type: "button", class: "button button-small button-danger-outline", id: "bulk-delete",
    onclick: () => deleteSelected() }, t("bulk.delete"));
  const bulkClear = h("button", { type: "button", class: "button button-small button-link", id: "bulk-clear",
    onclick: () => {
      selected.clear();
      syncSelection();
    } }, t("bulk.clear"));
  const bulkBar = isAdmin ? h("div", { class: "bulk-bar", id: "bulk-bar", hidden: true }, bulkCount, bulkDelete, bulkClear)
    : null;
  const bulkResults = h("div", { class: "bulk-results", id: "bulk-results" });

  // Paging: "26–50 of 480" and first / previous / next / last.
  const range = h("span", { class: "range", id: "badge-range", "aria-live": "polite" });
  const pageButton = (id, label, target) => h("button", { type: "button", class: "button button-small", id,
    onclick: (event) => goTo(target(), event.currentTarget) }, label);
  const pageInfo = h("span", { class: "page-info", id: "badge-page" });
  const first = pageButton("page-first", t("pager.first"), () => 1);
  const prev = pageButton("page-prev", t("pager.prev"), () => view.page - 1);
  const next = pageButton("page-next", t("pager.next"), () => view.page + 1);
  const last = pageButton("page-last", t("pager.last"), () => Number.MAX_SAFE_INTEGER);
  const pagerButtons = h("div", { class: "pager-buttons" }, first, prev, pageInfo, next, last);
  const pager = h("nav", { class: "pager", id: "badge-pager", "aria-label": t("pager.label") }, range, pagerButtons);

  const root = h("div", { class: "manager" },
    isAdmin ? null : notice("info", h("strong", {}, t("readonly.title")), " ", t("readonly.badges")),
    h("section", { class: "panel", "aria-labelledby": "list-title" },
      h("div", { class: "panel-head" }, h("h2", { id: "list-title" }, t("list.heading"), " ", count), refresh),
      h("div", { class: "list-tools" },
        h("div", { class: "search-field" }, h("label", { for: "badge-search" }, t("list.search")), search),
        bulkBar),
      bulkResults,
      listBody,
      pager));

  let form = null;
  let importer = null;
  const moveOn = () => importer && importer.clearStale();
  if (isAdmin) {
    form = createBadgeForm({ api, prefix: config.prefix, takenCodes: () => new Set(badges.map((b) => String(b.code))),
      onSaved: () => load(), onActivity: moveOn, onPortalUnavailable });
    importer = createImporter({ api, onImported: () => load(), onPortalUnavailable });
    root.append(h("div", { class: "columns" }, h("section", { class: "panel" }, form.element), importer.element));
  }

  async function load() {
    listBody.setAttribute("aria-busy", "true");
    refresh.disabled = true;
    if (!badges.length) replace(listBody, h("p", { class: "muted loading", id: "badges-loading" }, t("list.loading")));
    try {
      const data = await api.get("/badges");
      badges = Array.isArray(data.badges) ? data.badges : [];
      haystacks = new Map(badges.map((badge) => [badge, searchText(badge)]));
      const codes = new Set(badges.map((badge) => String(badge.code)));
      [...selected].forEach((code) => codes.has(code) || selected.delete(code));
      render();
    } catch (error) {
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      pager.hidden = true;
      replace(listBody, notice("error", h("p", {}, t("list.loadFailed"), " ", errorText(error)),
        h("button", { type: "button", class: "button", id: "badges-retry", onclick: () => load() }, t("common.retry"))));
    } finally {
      listBody.setAttribute("aria-busy", "false");
      refresh.disabled = false;
      fitSoon();
    }
  }

  function goTo(page, button) {
    view.page = page;
    render();
    announce(range.textContent);
    // At the first or last page the button just used is disabled: keep the focus on the way back.
    if (button && button.disabled) (button === next || button === last ? prev : next).focus();
  }

  function sortBy(key) {
    view.descending = view.sort === key ? !view.descending : false;
    view.sort = key;
    view.page = 1;
    render();
    const button = document.getElementById(`sort-${key}`);
    if (button) button.focus();
  }

  function render() {
    count.textContent = `(${badges.length})`;
    if (!badges.length) {
      pager.hidden = true;
      pageCodes = [];
      syncSelection();
      replace(listBody, h("div", { class: "empty", id: "badges-empty" },
        h("p", {}, t("list.empty")),
        h("p", { class: "muted" }, isAdmin ? t("list.emptyAdmin") : t("list.emptyReader"))));
      return;
    }
    const found = badges.filter((badge) => matches(badge, view.query, haystacks.get(badge)));
    const ordered = sortBadges(found, view.sort, view.descending, lang());
    const slice = pageOf(ordered.length, view.page);
    view.page = slice.page;
    const shown = ordered.slice(slice.start, slice.end);
    pageCodes = shown.map((badge) => String(badge.code));
    renderPager(slice, ordered.length);
    if (!found.length) {
      replace(listBody, h("p", { class: "empty", id: "badges-nomatch" }, t("list.noMatch", { query: view.query.trim() })));
      syncSelection();
      fitSoon();
      return;
    }
    const selectPage = isAdmin ? h("input", { type: "checkbox", id: "select-page", class: "row-select",
      title: t("bulk.selectPage"), "aria-label": t("bulk.selectPage"),
      onchange: (event) => {
        pageCodes.forEach((code) => (event.target.checked ? selected.add(code) : selected.delete(code)));
        syncSelection();
      } }) : null;
    const rows = shown.map((badge) => {
      const code = String(badge.code);
      const languages = [...new Set([...languagesOf(badge.title), ...languagesOf(badge.value)])];
      return h("tr", { dataset: { code } },
        isAdmin ? h("td", { class: "select-cell" }, h("input", { type: "checkbox", class: "row-select",
          "aria-label": t("bulk.selectOne", { code }), checked: selected.has(code),
          onchange: (event) => {
            if (event.target.checked) selected.add(code);
            else selected.delete(code);
            syncSelection();
          } })) : null,
        h("td", {}, chip(badge)),
        h("td", { class: "title-cell" }, displayText(badge.title, lang()),
          languages.length ? h("span", { class: "langs muted" }, ` ${languages.join(" · ")}`) : null),
        h("td", {}, h("code", {}, code)),
        h("td", {}, typeLabel(badge.type)),
        isAdmin ? h("td", { class: "actions" },
          rowButton("duplicate", t("list.duplicate"), code, () => form.duplicate(badge), t("list.duplicateTip")),
          rowButton("replace", t("list.replace"), code, () => form.replace(badge), t("list.replaceTip")),
          rowButton("delete", t("list.delete"), code, () => remove(badge))) : null);
    });
    replace(listBody, h("table", { class: "table badge-table" },
      h("caption", { class: "sr-only" }, t("list.caption", { count: badges.length })),
      h("thead", {}, h("tr", {},
        isAdmin ? h("th", { scope: "col", class: "select-cell" }, selectPage) : null,
        h("th", { scope: "col" }, t("list.badge")),
        SORTABLE.map(([key, label]) => h("th", { scope: "col",
          "aria-sort": view.sort === key ? (view.descending ? "descending" : "ascending") : null },
        h("button", { type: "button", class: "sort-button", id: `sort-${key}`, dataset: { sort: key },
          onclick: () => sortBy(key) }, t(label),
        h("span", { class: "sort-mark", "aria-hidden": "true" }, view.sort === key ? (view.descending ? " ▼" : " ▲") : "")))),
        isAdmin ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("list.actions"))) : null)),
      h("tbody", {}, rows)));
    syncSelection();
    fitSoon();
  }

  function rowButton(action, label, code, onclick, tip) {
    return h("button", { type: "button", class: "button button-small", dataset: { action }, title: tip, onclick },
      label, h("span", { class: "sr-only" }, ` ${code}`));
  }

  function renderPager(slice, total) {
    pager.hidden = total === 0;
    const from = total ? slice.start + 1 : 0;
    range.textContent = view.query.trim()
      ? t("pager.rangeFiltered", { from, to: slice.end, total, all: badges.length })
      : t("pager.range", { from, to: slice.end, total });
    pagerButtons.hidden = slice.pages <= 1;
    pageInfo.textContent = t("pager.page", { page: slice.page, pages: slice.pages });
    first.disabled = prev.disabled = slice.page <= 1;
    next.disabled = last.disabled = slice.page >= slice.pages;
  }

  /** Checkboxes, "select all on this page" and the bulk bar after the selection changed. */
  function syncSelection() {
    listBody.querySelectorAll("tbody tr").forEach((row) => {
      const box = row.querySelector(".row-select");
      if (box) box.checked = selected.has(row.dataset.code);
    });
    const pageBox = listBody.querySelector("#select-page");
    if (pageBox) {
      const chosen = pageCodes.filter((code) => selected.has(code)).length;
      pageBox.checked = chosen > 0 && chosen === pageCodes.length;
      pageBox.indeterminate = chosen > 0 && chosen < pageCodes.length;
    }
    if (bulkBar) {
      bulkBar.hidden = selected.size === 0;
      bulkCount.textContent = t("bulk.selected", { count: selected.size });
      bulkDelete.disabled = bulkClear.disabled = bulkRunning;
    }
  }

  function inUseDetails(error) {
    return [h("p", {}, t("delete.inUse")), dealsShowing(error.deals)];
  }

  async function remove(badge) {
    const code = String(badge.code);
    moveOn();
    const deleted = await confirmAction({
      title: t("delete.title"),
      message: t("delete.message", { code, title: displayText(badge.title, lang()) }),
      confirmLabel: t("delete.confirm"),
      busyLabel: t("delete.busy"),
      run: () => api.delete(`/badges/${encodeURIComponent(code)}`).catch((error) => {
        if (error.code === "NOT_FOUND" || error.code === "BADGE_NOT_FOUND") return null; // already gone
        if (error.isPortalUnavailable) onPortalUnavailable(error);
        throw error;
      }),
      describe: (error) => (error.code === "ENTITY_WITH_BADGE_EXISTS" ? inUseDetails(error) : errorText(error)),
    });
    if (deleted) {
      announce(t("delete.done", { code }));
      badges = badges.filter((item) => item.code !== badge.code);
      selected.delete(code);
      render();
      document.getElementById("list-title").setAttribute("tabindex", "-1");
      document.getElementById("list-title").focus();
      load();
    }
  }

  /** Delete the selected badges one by one (DELETE /api/v1/badges/<code>), then say per badge what happened. */
  async function deleteSelected() {
    const codes = badges.map((badge) => String(badge.code)).filter((code) => selected.has(code));
    if (!codes.length || bulkRunning) return;
    moveOn();
    const named = codes.slice(0, LISTED_CODES).join(", ");
    const confirmed = await confirmAction({
      title: t("bulk.title", { count: codes.length }),
      message: codes.length > LISTED_CODES
        ? t("bulk.messageMore", { count: codes.length, codes: named, more: codes.length - LISTED_CODES })
        : t("bulk.message", { count: codes.length, codes: named }),
      confirmLabel: t("bulk.confirm", { count: codes.length }),
      run: async () => {},
    });
    if (!confirmed) return;
    bulkRunning = true;
    syncSelection();
    const progress = h("p", { class: "bulk-progress", id: "bulk-progress" });
    replace(bulkResults, progress);
    announce(t("bulk.started", { count: codes.length }));
    const outcome = [];
    let stopped = null;
    for (const [index, code] of codes.entries()) {
      progress.textContent = t("bulk.progress", { done: index, total: codes.length });
      if (stopped) {
        outcome.push({ code, kind: "failed", text: errorText(stopped) });
        continue;
      }
      try {
        // Bitrix24 allows a portal about 2 requests a second: a busy answer is waited out and tried again.
        await retrying(() => api.delete(`/badges/${encodeURIComponent(code)}`), {
          attempts: BULK_ATTEMPTS,
          onWait: (seconds) => {
            progress.textContent = t("bulk.waiting", { done: index, total: codes.length, seconds });
          },
        });
        outcome.push({ code, kind: "deleted" });
      } catch (error) {
        if (error.code === "NOT_FOUND" || error.code === "BADGE_NOT_FOUND") {
          outcome.push({ code, kind: "deleted" });
        } else if (error.code === "ENTITY_WITH_BADGE_EXISTS") {
          outcome.push({ code, kind: "in-use", deals: error.deals });
        } else {
          if (error.isPortalUnavailable) {
            bulkRunning = false;
            onPortalUnavailable(error);
            return;
          }
          if (error.code === "NETWORK_ERROR" || error.status === 401) stopped = error; // the rest would fail too
          outcome.push({ code, kind: "failed", text: errorText(error) });
        }
      }
    }
    bulkRunning = false;
    outcome.filter((entry) => entry.kind === "deleted").forEach((entry) => selected.delete(entry.code));
    syncSelection();
    const tally = (kind) => outcome.filter((entry) => entry.kind === kind).length;
    const summary = t("bulk.summary", { deleted: tally("deleted"), inUse: tally("in-use"), failed: tally("failed") });
    replace(bulkResults, notice(tally("deleted") === outcome.length ? "ok" : "info",
      h("p", { class: "bulk-summary", id: "bulk-summary" }, summary),
      h("ul", { class: "bulk-list" }, outcome.map((entry) => h("li", { dataset: { code: entry.code, outcome: entry.kind } },
        h("code", {}, entry.code), " ",
        entry.kind === "deleted" ? t("bulk.deleted")
          : entry.kind === "in-use" ? [t("bulk.inUse"), dealsShowing(entry.deals)]
            : t("bulk.failed", { detail: entry.text }))))));
    announce(summary);
    await load();
  }

  load();
  return root;
}
