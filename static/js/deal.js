// The deal tab (CRM_DEAL_DETAIL_TAB, deal id from PLACEMENT_OPTIONS.ID): which badge this deal's
// kanban card shows, a searchable picker, Apply and Clear. Any user may try: the server sets the badge
// with the user's own Bitrix24 authorization, so the portal's permissions decide (403 ACCESS_DENIED is
// explained here).

import { h, replace } from "./dom.js";
import { t, lang, serverMessage } from "./i18n.js";
import { newIdempotencyKey } from "./api.js";
import { announce, badgeLine, errorText, notice } from "./ui.js";
import { badgePicker } from "./badge-picker.js";
import { fitSoon } from "./frame.js";

export function dealTab({ api, config, onPortalUnavailable }) {
  const dealId = String(config.dealId || "");
  if (!/^[1-9][0-9]*$/.test(dealId)) {
    return notice("error", h("p", {}, t("deal.noDeal")));
  }
  const path = `/deals/${dealId}/badge`;
  let badges = [];
  let current = null; // {code, activity_id} or null
  let busy = true;

  const currentBox = h("div", { class: "deal-current", id: "deal-current", "aria-live": "polite", "aria-busy": "true" },
    h("p", { class: "muted" }, t("list.loading")));
  const picker = badgePicker({ id: "deal-badge", label: t("deal.pick"), placeholder: t("picker.placeholder"),
    onChange: () => renderChoice() });
  const choice = h("div", { class: "deal-choice", id: "deal-choice", "aria-hidden": "true" });
  const apply = h("button", { type: "button", class: "button button-primary", id: "deal-apply", disabled: true,
    onclick: () => act(applyBadge) }, t("deal.apply"));
  const clear = h("button", { type: "button", class: "button", id: "deal-clear", disabled: true,
    onclick: () => act(clearBadge) }, t("deal.clear"));
  const problem = h("div", { class: "form-problem", id: "deal-problem", role: "alert" });
  const pickerBox = h("div", { class: "deal-picker" },
    h("div", { class: "field" }, picker.element, choice),
    problem,
    h("div", { class: "form-actions" }, apply, " ", clear));

  const root = h("section", { class: "panel deal", "aria-labelledby": "deal-title" },
    h("h2", { id: "deal-title" }, t("deal.heading", { id: dealId })),
    h("p", { class: "muted" }, t("deal.explain")),
    currentBox,
    pickerBox);

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
    clear.disabled = busy || !current;
    fitSoon();
  }

  /** The picked badge's chip under the picker; nothing until the user picks one. */
  function renderChoice() {
    const badge = picker.selected();
    replace(choice, badge ? badgeLine(badge) : null);
    apply.disabled = busy || !badge || Boolean(current && current.code === badge.code);
    fitSoon();
  }

  async function load() {
    try {
      const [list, shown] = await Promise.all([api.get("/badges"), api.get(path)]);
      badges = Array.isArray(list.badges) ? list.badges : [];
      // 200 either way: {"code": null, "badge": null} when this app shows nothing on the deal.
      current = shown && shown.code ? { code: shown.code, activity_id: shown.activity_id } : null;
      busy = false;
      picker.setBadges(badges);
      renderCurrent();
      renderChoice();
    } catch (error) {
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      currentBox.setAttribute("aria-busy", "false");
      replace(currentBox, notice("error", h("p", {}, errorText(error)),
        h("button", { type: "button", class: "button", id: "deal-retry", onclick: () => load() }, t("common.retry"))));
      fitSoon();
    }
  }

  let applyKey = null;
  let applyFor = null;

  async function applyBadge() {
    const badge = picker.selected();
    if (!badge) return;
    const code = String(badge.code);
    if (applyFor !== code) {
      applyFor = code;
      applyKey = newIdempotencyKey();
    }
    const shown = await api.post(path, { code, lang: lang() }, applyKey);
    current = { code: shown.code || code, activity_id: shown.activity_id };
    applyFor = applyKey = null;
    announce(t("deal.applied", { code }));
  }

  async function clearBadge() {
    await api.delete(path);
    current = null;
    picker.select(null);
    announce(t("deal.cleared"));
  }

  /** Bitrix24 refused the user (they may not edit this deal): say so, with the portal's words. */
  function describe(error) {
    if (error.code !== "ACCESS_DENIED") return h("p", {}, errorText(error));
    const detail = serverMessage(error.description || "");
    return [h("p", {}, t("deal.accessDenied")), detail ? h("p", { class: "muted" }, t("deal.portalSaid", { detail })) : null];
  }

  async function act(action) {
    replace(problem);
    busy = true;
    apply.disabled = clear.disabled = true;
    picker.setDisabled(true);
    root.setAttribute("aria-busy", "true");
    try {
      await action();
    } catch (error) {
      if (error.status && error.status < 500) applyFor = applyKey = null;
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      replace(problem, describe(error));
    } finally {
      busy = false;
      root.removeAttribute("aria-busy");
      picker.setDisabled(false);
      renderCurrent();
      renderChoice();
    }
  }

  load();
  return root;
}
