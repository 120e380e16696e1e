// Boot of the app page that POST /app renders (the DEFAULT placement and the deal tab).
// Reads the server's data attributes, localizes, connects to the portal through b24jssdk and
// renders the right view. No inline script anywhere (CSP script-src 'self').

import { setLang, t, translatePage } from "./i18n.js";
import { Api } from "./api.js";
import { replace } from "./dom.js";
import { connect, fitSoon, refreshAuth, setPortalDomain, setTitle, watchSize } from "./frame.js";
import { portalStateView } from "./ui.js";
import { badgeManager } from "./badges.js";
import { dealTab } from "./deal.js";

const main = document.getElementById("app");
const data = main.dataset;
const config = {
  state: data.state,
  isAdmin: data.admin === "true",
  lang: data.lang || "en",
  placement: data.placement || "DEFAULT",
  dealId: data.dealId || "",
  ttl: Number(data.sessionTtl) || 900,
  domain: data.domain || "",
  prefix: data.badgePrefix || "",
  lastError: data.lastError || "",
};

setLang(config.lang, { prefix: config.prefix });
translatePage();
setPortalDomain(config.domain);
connect();
watchSize();

const view = document.getElementById("view");

// Every page carries a session (the portal-state page too: an admin re-authorizes through the API).
const api = new Api({
  ttl: config.ttl,
  domain: config.domain,
  frameAuth: refreshAuth,
  onSession(session) {
    // Renewal never re-renders (the user's input stays); only a changed admin flag does.
    if (Boolean(session.is_admin) !== config.isAdmin) {
      config.isAdmin = Boolean(session.is_admin);
      main.dataset.admin = String(config.isAdmin);
      if (config.state === "active") render();
    }
  },
});

function showPortalState(error) {
  config.state = error && error.code === "APP_UNINSTALLED" ? "uninstalled" : "needs-reauth";
  replace(view, portalStateView(config, api));
  fitSoon();
}

function render() {
  const options = { api, config, onPortalUnavailable: showPortalState };
  const isDealTab = config.placement === "CRM_DEAL_DETAIL_TAB";
  replace(view, isDealTab ? dealTab(options) : badgeManager(options));
  view.removeAttribute("aria-busy");
  fitSoon();
}

if (config.state !== "active") {
  replace(view, portalStateView(config, api));
  view.removeAttribute("aria-busy");
} else {
  render();
}

if (config.placement === "DEFAULT") setTitle(t("app.title")).catch(() => {});
