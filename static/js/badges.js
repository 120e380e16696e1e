// The app page (DEFAULT placement): the portal's badges as Bitrix24 shows them, with create, import
// and delete for administrators; everything read-only for other users.

import { h, replace } from "./dom.js";
import { t, lang } from "./i18n.js";
import { displayText, languagesOf } from "./rules.js";
import { announce, chip, errorText, notice, typeLabel } from "./ui.js";
import { confirmAction } from "./dialog.js";
import { createBadgeForm } from "./badge-form.js";
import { createImporter } from "./badge-import.js";
import { fitSoon } from "./frame.js";

export function badgeManager({ api, config, onPortalUnavailable }) {
  let badges = [];
  const listBody = h("div", { class: "list-body", id: "badge-list", "aria-live": "polite", "aria-busy": "true" });
  const count = h("span", { class: "count", id: "badge-count" });
  const refresh = h("button", { type: "button", class: "button", id: "badges-refresh", onclick: () => load() },
    t("list.refresh"));

  const root = h("div", { class: "manager" },
    config.isAdmin ? null : notice("info", h("strong", {}, t("readonly.title")), " ", t("readonly.badges")),
    h("section", { class: "panel", "aria-labelledby": "list-title" },
      h("div", { class: "panel-head" }, h("h2", { id: "list-title" }, t("list.heading"), " ", count), refresh),
      listBody));

  if (config.isAdmin) {
    const form = createBadgeForm({ api, prefix: config.prefix, onCreated: () => load(), onPortalUnavailable });
    const importer = createImporter({ api, onImported: () => load(), onPortalUnavailable });
    root.append(h("div", { class: "columns" }, h("section", { class: "panel" }, form), importer));
  }

  async function load() {
    listBody.setAttribute("aria-busy", "true");
    refresh.disabled = true;
    if (!badges.length) replace(listBody, h("p", { class: "muted loading", id: "badges-loading" }, t("list.loading")));
    try {
      const data = await api.get("/badges");
      badges = Array.isArray(data.badges) ? data.badges : [];
      render();
    } catch (error) {
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      replace(listBody, notice("error", h("p", {}, t("list.loadFailed"), " ", errorText(error)),
        h("button", { type: "button", class: "button", id: "badges-retry", onclick: () => load() }, t("common.retry"))));
    } finally {
      listBody.setAttribute("aria-busy", "false");
      refresh.disabled = false;
      fitSoon();
    }
  }

  function render() {
    count.textContent = `(${badges.length})`;
    if (!badges.length) {
      replace(listBody, h("div", { class: "empty", id: "badges-empty" },
        h("p", {}, t("list.empty")),
        h("p", { class: "muted" }, config.isAdmin ? t("list.emptyAdmin") : t("list.emptyReader"))));
      return;
    }
    const rows = badges.map((badge) => {
      const languages = [...new Set([...languagesOf(badge.title), ...languagesOf(badge.value)])];
      return h("tr", { dataset: { code: String(badge.code) } },
        h("td", {}, chip(badge)),
        h("td", { class: "title-cell" }, displayText(badge.title, lang()),
          languages.length ? h("span", { class: "langs muted" }, ` ${languages.join(" · ")}`) : null),
        h("td", {}, h("code", {}, String(badge.code))),
        h("td", {}, typeLabel(badge.type)),
        config.isAdmin ? h("td", { class: "actions" }, h("button", { type: "button", class: "button button-small",
          onclick: () => remove(badge) }, t("list.delete"),
        h("span", { class: "sr-only" }, ` ${String(badge.code)}`))) : null);
    });
    replace(listBody, h("table", { class: "table badge-table" },
      h("caption", { class: "sr-only" }, t("list.caption", { count: badges.length })),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("list.badge")),
        h("th", { scope: "col" }, t("list.title")),
        h("th", { scope: "col" }, t("list.code")),
        h("th", { scope: "col" }, t("list.type")),
        config.isAdmin ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("list.actions"))) : null)),
      h("tbody", {}, rows)));
  }

  async function remove(badge) {
    const code = String(badge.code);
    const deleted = await confirmAction({
      title: t("delete.title"),
      message: t("delete.message", { code, title: displayText(badge.title, lang()) }),
      confirmLabel: t("delete.confirm"),
      busyLabel: t("delete.busy"),
      run: () => api.delete(`/badges/${encodeURIComponent(code)}`).catch((error) => {
        if (error.code === "NOT_FOUND") return null; // already gone: that is what the user wanted
        if (error.isPortalUnavailable) onPortalUnavailable(error);
        throw error;
      }),
      describe: (error) => (error.code === "ENTITY_WITH_BADGE_EXISTS" ? t("delete.inUse") : errorText(error)),
    });
    if (deleted) {
      announce(t("delete.done", { code }));
      badges = badges.filter((item) => item.code !== badge.code);
      render();
      document.getElementById("list-title").setAttribute("tabindex", "-1");
      document.getElementById("list-title").focus();
      load();
    }
  }

  load();
  return root;
}
