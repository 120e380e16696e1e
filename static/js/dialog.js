// An accessible confirmation dialog on the native <dialog> element (modal: focus is trapped, Escape
// cancels, focus returns to the control that opened it). Not window.confirm: it is styled like the
// portal, localized, and can show what went wrong without closing.

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { fitSoon } from "./frame.js";

/**
 * confirmAction({title, message, confirmLabel, busyLabel, run}) → Promise<boolean>
 * `run()` is awaited when the user confirms; if it throws, `describe(error)` (a text, or nodes) is
 * shown inside the dialog (role="alert") and the dialog stays open so the user can read it, retry, or cancel.
 */
export function confirmAction({ title, message, confirmLabel, busyLabel, run, describe }) {
  const opener = document.activeElement;
  const titleId = "confirm-title";
  const messageId = "confirm-message";
  const problem = h("div", { class: "dialog-problem", role: "alert" });
  const cancel = h("button", { type: "button", class: "button", id: "confirm-cancel" }, t("common.cancel"));
  const confirm = h("button", { type: "button", class: "button button-danger", id: "confirm-ok" }, confirmLabel);
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId, "aria-describedby": messageId },
    h("h2", { id: titleId }, title),
    h("p", { id: messageId }, message),
    problem,
    h("div", { class: "dialog-actions" }, cancel, confirm));
  document.body.append(dialog);

  return new Promise((resolve) => {
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      fitSoon();
      resolve(result);
    };
    cancel.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      if (!confirm.disabled) finish(false);
    });
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      confirm.textContent = busyLabel || confirmLabel;
      replace(problem);
      try {
        await run();
        finish(true);
      } catch (error) {
        confirm.disabled = false;
        cancel.disabled = false;
        confirm.textContent = confirmLabel;
        const described = describe ? describe(error) : String(error);
        replace(problem, typeof described === "string" ? h("p", {}, described) : described);
        cancel.focus();
        fitSoon();
      }
    });
    dialog.showModal();
    placeNear(dialog, opener);
    cancel.focus(); // the safe choice first
    fitSoon();
  });
}

/**
 * The portal grows the frame to the page's full height, so a dialog centred in the frame can sit far
 * outside the part of the portal page the user sees. Put it next to the control that opened it (which
 * the user just clicked, so it is in view), kept inside the frame. CSSOM, not a style attribute (CSP).
 */
function placeNear(dialog, opener) {
  const frameHeight = window.innerHeight;
  const height = dialog.offsetHeight;
  if (!opener || !opener.isConnected || !opener.getBoundingClientRect || frameHeight <= height + 64) return;
  const anchor = opener.getBoundingClientRect();
  const top = Math.max(16, Math.min(anchor.top + anchor.height / 2 - height / 2, frameHeight - height - 16));
  dialog.style.margin = `${Math.round(top)}px auto auto`;
}
