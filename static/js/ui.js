// Shared view pieces: badge chips, notices, the live status region, error texts, the portal-state
// message. Everything is built with dom.h (textContent only).

import { h, replace } from "./dom.js";
import { t, lang, serverMessage } from "./i18n.js";
import { BADGE_TYPES, displayText, displayValue } from "./rules.js";
import { portalUrl, reloadPortalPage } from "./frame.js";

/** A badge as the kanban card shows it: a chip coloured by type with the value in upper case. */
export function chip(badge, language = lang()) {
  const type = BADGE_TYPES.includes(badge.type) ? badge.type : "secondary";
  return h("span", { class: `badge badge-${type}`, dataset: { badgeType: type } }, displayValue(badge.value, language));
}

/** Chip plus localized title, the way the kanban card lays them out (a long title ends in "…", the
 *  chip keeps its width; the whole title is in the tooltip). */
export function badgeLine(badge, language = lang()) {
  const title = displayText(badge.title, language);
  return h("span", { class: "badge-line" }, chip(badge, language), " ",
    h("span", { class: "badge-title", title }, title));
}

/**
 * The deals that still show a badge (409 ENTITY_WITH_BADGE_EXISTS names those this app put it on), as
 * links that open each deal in the portal. Deals set by others are unknown to the app: an empty list
 * gets a general sentence instead.
 */
export function dealsShowing(deals) {
  const ids = Array.isArray(deals) ? deals : [];
  if (!ids.length) return h("p", { class: "deals-unknown" }, t("inUse.unknownDeals"));
  return h("ul", { class: "deal-links" }, ids.map((id) => h("li", {},
    h("a", { href: portalUrl(`/crm/deal/details/${id}/`), target: "_top", dataset: { dealId: String(id) } },
      t("inUse.deal", { id })))));
}

export function typeLabel(type) {
  return BADGE_TYPES.includes(type) ? t(`type.${type}`) : String(type);
}

/**
 * The page's polite live region for progress and success messages; errors go into role="alert"
 * elements near where they happened.
 */
export function announce(text) {
  const region = document.getElementById("live-status");
  if (!region) return;
  // Clear first so that the same text announced twice is read twice.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}

export function notice(kind, ...children) {
  const role = kind === "error" ? "alert" : "status";
  return h("div", { class: `notice notice-${kind}`, role }, ...children);
}

/** A user-facing sentence for an API error (a retry hint for limits, the server's text otherwise). */
export function errorText(error) {
  switch (error.code) {
    case "NETWORK_ERROR":
      return t("error.network");
    case "ACCESS_DENIED":
      return t("error.accessDenied");
    case "SESSION_RENEWAL_FAILED":
    case "INVALID_SESSION":
    case "UNAUTHORIZED":
      return t("error.session");
    case "ENTITY_WITH_BADGE_EXISTS":
      return t("error.badgeInUse");
    case "BADGE_EXISTS":
      return t("error.badgeExists");
    case "BADGE_NOT_FOUND":
    case "NOT_FOUND":
      return t("error.badgeNotFound");
    case "NEEDS_REAUTH":
    case "APP_UNINSTALLED":
    case "PORTAL_UNKNOWN":
      return t("state.lostShort");
    default:
      break;
  }
  if (error.status === 503 || error.status === 429) {
    return error.retryAfter ? t("error.busyRetry", { seconds: error.retryAfter }) : t("error.busy");
  }
  const detail = serverMessage(error.description) || error.code;
  return t("error.generic", { detail });
}

/** The portal lost the app's authorization (or never finished the setup): a clear message; admins
 *  get a button that starts the OAuth flow in a new top-level window. */
export function portalStateView(config, api, state = config.state) {
  const box = h("section", { class: "state", "aria-labelledby": "state-title" });
  const title = state === "unavailable" ? t("state.unavailableTitle") : t("state.lostTitle");
  const problem = h("p", { role: "alert", class: "reauthorize-problem" });
  replace(box,
    h("h2", { id: "state-title" }, title),
    h("p", { role: "alert" }, state === "unavailable" ? t("state.unavailable") : t("state.lost", { domain: config.domain })),
    config.lastError ? h("p", { class: "muted" }, t("state.lastError", { error: config.lastError })) : null,
    config.isAdmin && state !== "unavailable"
      ? [
        h("p", {}, h("button", { type: "button", class: "button button-primary", id: "reauthorize",
          onclick: () => startReauthorization(api, problem) },
        t("state.reauthorize"), h("span", { class: "sr-only" }, ` (${t("common.newWindow")})`))),
        h("p", { class: "muted" }, t("state.reauthorizeHint")),
        problem,
      ]
      : h("p", {}, t(state === "unavailable" ? "state.askAdminSetup" : "state.askAdmin")),
    h("p", {}, h("button", { type: "button", class: "button", id: "state-reload", onclick: () => reloadPortalPage() },
      t("state.reload"))));
  return box;
}

/**
 * Ask the server for a one-time re-authorization link (valid a minute, admins only) and open it in a
 * new top-level window: the portal's consent page cannot be shown inside its own iframe. The window
 * is opened within the click, so that no popup blocker stops it, and pointed at the link once known.
 */
async function startReauthorization(api, problem) {
  problem.textContent = "";
  const popup = window.open("about:blank", "_blank");
  try {
    const { url } = await api.post("/oauth/authorize");
    if (popup) {
      popup.opener = null;
      popup.location.href = url;
    } else {
      window.open(url, "_blank", "noopener");
    }
  } catch (error) {
    if (popup) popup.close();
    problem.textContent = errorText(error);
  }
}
