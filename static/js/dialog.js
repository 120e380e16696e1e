// An accessible confirmation dialog on the native <dialog> element (modal: focus is trapped, Escape
// cancels, focus returns to the control that opened it). Not window.confirm: it is styled like the
// portal, localized, and can show what went wrong without closing.

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { fitSoon } from "./frame.js";

/**
 * confirmAction({title, message, confirmLabel, busyLabel, run}) → Promise<boolean>
 * `run()` is awaited when the user confirms; if it throws, `describe(error)` is shown inside the
 * dialog (role="alert") and the dialog stays open so the user can read it, retry, or cancel.
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
        replace(problem, h("p", {}, describe ? describe(error) : String(error)));
        cancel.focus();
        fitSoon();
      }
    });
    dialog.showModal();
    cancel.focus(); // the safe choice first
    fitSoon();
  });
}
