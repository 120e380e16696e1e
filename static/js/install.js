// Installer page (POST /install): the server has already stored the portal and bound the events and
// placements of install.json; this tells the portal the setup is done (installFinish), or shows the
// failure with a Retry that reloads the portal page (and so runs the installer again).

import { setLang, t, translatePage } from "./i18n.js";
import { connect, reloadPortalPage, watchSize } from "./frame.js";

const TIMEOUT_MS = 15000;
const root = document.getElementById("install");
const status = document.getElementById("install-status");
const retry = document.getElementById("retry");
const open = document.getElementById("open-app");

setLang(root.dataset.lang);
translatePage();
watchSize();
retry.addEventListener("click", () => reloadPortalPage());
open.addEventListener("click", () => reloadPortalPage());

function show(text, kind) {
  status.textContent = text;
  status.classList.toggle("status-error", kind === "error");
  status.classList.toggle("status-ok", kind === "ok");
  status.setAttribute("role", kind === "error" ? "alert" : "status");
}

function within(promise, ms) {
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(t("install.noPortal"))), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function run() {
  const $b24 = await within(connect(), TIMEOUT_MS);
  if (root.dataset.state === "error") return; // the server's message and the Retry button are shown
  if (!$b24.isInstallMode) {
    show(t("install.already"), "ok");
    open.hidden = false;
    return;
  }
  show(t("install.finishing"));
  await within($b24.installFinish(), TIMEOUT_MS);
  root.dataset.state = "finished";
  show(t("install.done"), "ok"); // the portal now reloads and opens the app
}

const serverError = root.dataset.state === "error";

run().catch((error) => {
  retry.hidden = false;
  if (serverError) return; // keep the server's own explanation
  root.dataset.state = "error";
  show(t("install.failed", { error: error && error.message ? error.message : String(error) }), "error");
  retry.focus();
});
