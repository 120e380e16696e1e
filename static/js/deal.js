// The deal tab (CRM_DEAL_DETAIL_TAB, deal id from PLACEMENT_OPTIONS.ID): which badge this deal's
// kanban card shows, a picker, Apply and Clear. Read-only for users who are not administrators.

import { h, replace } from "./dom.js";
import { t, lang } from "./i18n.js";
import { newIdempotencyKey } from "./api.js";
import { displayText } from "./rules.js";
import { announce, badgeLine, errorText, notice } from "./ui.js";
import { fitSoon } from "./frame.js";

export function dealTab({ api, config, onPortalUnavailable }) {
  const dealId = String(config.dealId || "");
  if (!/^[1-9][0-9]*$/.test(dealId)) {
    return notice("error", h("p", {}, t("deal.noDeal")));
  }
  const path = `/deals/${dealId}/badge`;
  let badges = [];
  let current = null; // {code, activity_id} or null

  const currentBox = h("div", { class: "deal-current", id: "deal-current", "aria-live": "polite", "aria-busy": "true" },
    h("p", { class: "muted" }, t("list.loading")));
  const select = h("select", { id: "deal-badge", disabled: true, onchange: () => renderChoice() });
  const choice = h("div", { class: "deal-choice", id: "deal-choice", "aria-hidden": "true" });
  const apply = h("button", { type: "button", class: "button button-primary", id: "deal-apply", disabled: true,
    onclick: () => act(applyBadge) }, t("deal.apply"));
  const clear = h("button", { type: "button", class: "button", id: "deal-clear", disabled: true,
    onclick: () => act(clearBadge) }, t("deal.clear"));
  const problem = h("div", { class: "form-problem", id: "deal-problem", role: "alert" });
  const picker = h("div", { class: "deal-picker" },
    h("div", { class: "field" }, h("label", { for: "deal-badge" }, t("deal.pick")), select, choice),
    problem,
    h("div", { class: "form-actions" }, apply, " ", clear));

  const root = h("section", { class: "panel deal", "aria-labelledby": "deal-title" },
    h("h2", { id: "deal-title" }, t("deal.heading", { id: dealId })),
    h("p", { class: "muted" }, t("deal.explain")),
    config.isAdmin ? null : notice("info", h("strong", {}, t("readonly.title")), " ", t("readonly.deal")),
    currentBox,
    picker);

  const byCode = (code) => badges.find((badge) => badge.code === code);

  function renderCurrent() {
    currentBox.setAttribute("aria-busy", "false");
    if (!current) {
      replace(currentBox, h("p", {}, t("deal.none")));
    } else {
      const badge = byCode(current.code);
      replace(currentBox, h("p", {}, h("span", { class: "label" }, t("deal.shown")), " ",
        badge ? badgeLine(badge) : h("code", {}, current.code)));
    }
    clear.disabled = !config.isAdmin || !current;
    fitSoon();
  }

  function renderChoice() {
    const badge = byCode(select.value);
    replace(choice, badge ? badgeLine(badge) : null);
    apply.disabled = !config.isAdmin || !badge || Boolean(current && current.code === badge.code);
    fitSoon();
  }

  function renderPicker() {
    if (!badges.length) {
      replace(select, h("option", { value: "" }, t("deal.noBadges")));
      select.disabled = true;
      apply.disabled = true;
      return;
    }
    replace(select, badges.map((badge) => h("option", { value: String(badge.code),
      selected: current && current.code === badge.code },
    `${displayText(badge.value, lang()).toUpperCase()} — ${displayText(badge.title, lang())} (${badge.code})`)));
    select.disabled = !config.isAdmin;
    renderChoice();
  }

  async function load() {
    try {
      const [list, shown] = await Promise.all([
        api.get("/badges"),
        api.get(path).catch((error) => {
          if (error.code === "NOT_FOUND") return null;
          throw error;
        }),
      ]);
      badges = Array.isArray(list.badges) ? list.badges : [];
      current = shown;
      renderCurrent();
      renderPicker();
    } catch (error) {
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      currentBox.setAttribute("aria-busy", "false");
      replace(currentBox, notice("error", h("p", {}, errorText(error)),
        h("button", { type: "button", class: "button", onclick: () => load() }, t("common.retry"))));
      fitSoon();
    }
  }

  let applyKey = null;
  let applyFor = null;

  async function applyBadge() {
    const code = select.value;
    if (applyFor !== code) {
      applyFor = code;
      applyKey = newIdempotencyKey();
    }
    current = await api.post(path, { code, lang: lang() }, applyKey);
    applyFor = applyKey = null;
    announce(t("deal.applied", { code }));
  }

  async function clearBadge() {
    await api.delete(path);
    current = null;
    announce(t("deal.cleared"));
  }

  async function act(action) {
    replace(problem);
    apply.disabled = clear.disabled = select.disabled = true;
    root.setAttribute("aria-busy", "true");
    try {
      await action();
    } catch (error) {
      if (error.status && error.status < 500) applyFor = applyKey = null;
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      replace(problem, h("p", {}, errorText(error)));
    } finally {
      root.removeAttribute("aria-busy");
      select.disabled = !config.isAdmin || !badges.length;
      renderCurrent();
      renderChoice();
    }
  }

  load();
  return root;
}

