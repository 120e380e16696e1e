// "Create a badge": code, type, title and value (each a single text or one text per language),
// a live preview rendered the way Bitrix24 shows the badge, hints that mirror the server's rules,
// and the server's field errors shown next to the field they name (`title.de` → the German row).

import { h, replace } from "./dom.js";
import { t, lang, serverMessage } from "./i18n.js";
import { newIdempotencyKey } from "./api.js";
import { BADGE_TYPES, MAX_TEXT_LENGTH, codeRoom, displayText, validateDraft } from "./rules.js";
import { announce, chip, errorText, typeLabel } from "./ui.js";
import { textEditor } from "./text-editor.js";
import { fitSoon } from "./frame.js";

export function createBadgeForm({ api, prefix, onCreated, onPortalUnavailable }) {
  let attempted = false; // after the first submit, hints update while typing
  let pendingKey = null; // the Idempotency-Key of the last unfinished attempt, and the body it was for
  let pendingBody = null;

  const problem = h("div", { class: "form-problem", id: "create-problem", role: "alert" });
  const codeHint = prefix ? t("form.codeHintPrefixed", { room: codeRoom(prefix), prefix }) : t("form.codeHint", { room: codeRoom(prefix) });
  const code = h("input", { id: "badge-code", name: "code", type: "text", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "badge-code-hint badge-code-error", oninput: update });
  const type = h("select", { id: "badge-type", name: "type", "aria-describedby": "badge-type-error", onchange: update },
    BADGE_TYPES.map((id) => h("option", { value: id }, typeLabel(id))));
  const title = textEditor({ name: "title", label: t("form.title"), hint: t("form.textHint", { max: MAX_TEXT_LENGTH }), onChange: update });
  const value = textEditor({ name: "value", label: t("form.value"), hint: t("form.valueHint", { max: MAX_TEXT_LENGTH }), onChange: update });
  const preview = h("div", { class: "preview-body" });
  const submit = h("button", { type: "submit", class: "button button-primary", id: "badge-create" }, t("form.create"));

  const form = h("form", { class: "badge-form", id: "create-form", novalidate: true, "aria-labelledby": "create-title",
    onsubmit: (event) => {
      event.preventDefault();
      create();
    } },
  h("h2", { id: "create-title" }, t("form.heading")),
  h("div", { class: "form-grid" },
    h("div", { class: "form-fields" },
      h("div", { class: "field", dataset: { field: "code" } },
        h("label", { for: "badge-code" }, t("form.code")),
        code,
        h("p", { class: "hint", id: "badge-code-hint" }, codeHint),
        h("p", { class: "field-error", id: "badge-code-error", dataset: { errorFor: "code" } })),
      h("div", { class: "field", dataset: { field: "type" } },
        h("label", { for: "badge-type" }, t("form.type")),
        type,
        h("p", { class: "field-error", id: "badge-type-error", dataset: { errorFor: "type" } })),
      title.element,
      value.element),
    h("section", { class: "preview", "aria-labelledby": "preview-title" },
      h("h3", { id: "preview-title" }, t("form.preview")),
      preview,
      h("p", { class: "hint" }, t("form.previewHint")))),
  problem,
  h("div", { class: "form-actions" }, submit));

  function draft() {
    return { code: code.value, type: type.value, title: title.read(), value: value.read() };
  }

  function update() {
    renderPreview();
    if (attempted) showErrors(validateDraft(draft(), prefix).fields, false);
  }

  function renderPreview() {
    const { badge } = validateDraft(draft(), prefix);
    const shown = badge;
    const perLanguage = [];
    for (const [key, text] of [["title", badge.title], ["value", badge.value]]) {
      if (text && typeof text === "object") Object.keys(text).forEach((id) => perLanguage.includes(id) || perLanguage.push(id));
    }
    const placeholder = (text, fallback) => (displayText(text, lang()).trim() ? text : fallback);
    replace(preview,
      h("div", { class: "kanban-preview", id: "badge-preview" },
        h("span", { class: "kanban-preview-deal", "aria-hidden": "true" }, t("form.previewDeal")),
        h("span", { class: "badge-line" },
          chip({ ...shown, value: placeholder(shown.value, t("form.value")) }),
          " ",
          h("span", { class: "badge-title" }, displayText(placeholder(shown.title, t("form.title")), lang())))),
      perLanguage.length > 1
        ? h("ul", { class: "preview-languages", "aria-label": t("form.previewLanguages") },
          perLanguage.map((id) => h("li", {}, h("span", { class: "lang-code" }, id), " ",
            chip({ ...shown, value: placeholder(shown.value, "…") }, id), " ",
            h("span", { class: "badge-title" }, displayText(shown.title, id)))))
        : null);
    fitSoon();
  }

  function slotFor(name) {
    if (name === "code" || name === "type") return form.querySelector(`[data-error-for="${name}"]`);
    if (name.startsWith("title")) return title.errorSlot(name);
    if (name.startsWith("value")) return value.errorSlot(name);
    return null;
  }

  function controlFor(name) {
    if (name === "code") return code;
    if (name === "type") return type;
    if (name.startsWith("title")) return title.control(name);
    if (name.startsWith("value")) return value.control(name);
    return null;
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach((el) => replace(el));
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    replace(problem);
  }

  /**
   * Show {field: message} next to each field. Messages are {key, params} (our hints) or strings
   * (the server's; translated when they are one of the rule messages we know). Returns the first control.
   */
  function showErrors(fields, focus) {
    clearErrors();
    const unplaced = [];
    let first = null;
    for (const [name, message] of Object.entries(fields || {})) {
      const text = typeof message === "string" ? serverMessage(message) : t(message.key, message.params);
      const slot = slotFor(name);
      if (!slot) {
        unplaced.push(`${name}: ${text}`);
        continue;
      }
      slot.append(slot.childNodes.length ? " " : "", text);
      const control = controlFor(name);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        first = first || control;
      }
    }
    if (unplaced.length) replace(problem, h("p", {}, unplaced.join("; ")));
    if (focus && first) first.focus();
    fitSoon();
    return first;
  }

  async function create() {
    attempted = true;
    const { fields, badge } = validateDraft(draft(), prefix);
    if (Object.keys(fields).length) {
      showErrors(fields, true);
      replace(problem, h("p", {}, t("form.fixFields", { count: Object.keys(fields).length })));
      return;
    }
    clearErrors();
    const body = JSON.stringify(badge);
    if (body !== pendingBody) {
      pendingBody = body;
      pendingKey = newIdempotencyKey();
    }
    submit.disabled = true;
    submit.textContent = t("form.creating");
    form.setAttribute("aria-busy", "true");
    try {
      const answer = await api.post("/badges", badge, pendingKey);
      pendingKey = pendingBody = null;
      attempted = false;
      code.value = "";
      title.reset();
      value.reset();
      renderPreview();
      announce(t("form.created", { code: answer.badge.code }));
      onCreated(answer.badge);
      code.focus();
    } catch (error) {
      if (error.status && error.status < 500 && error.code !== "NETWORK_ERROR") pendingKey = pendingBody = null;
      if (error.isPortalUnavailable) {
        onPortalUnavailable(error);
        return;
      }
      if (error.code === "VALIDATION_ERROR" && error.fields) {
        showErrors(error.fields, true);
        if (!problem.childNodes.length) {
          replace(problem, h("p", {}, t("form.fixFields", { count: Object.keys(error.fields).length })));
        }
      } else if (error.code === "BADGE_EXISTS") {
        showErrors({ code: { key: "error.badgeExists" } }, true);
      } else {
        replace(problem, h("p", {}, errorText(error)));
      }
    } finally {
      submit.disabled = false;
      submit.textContent = t("form.create");
      form.removeAttribute("aria-busy");
      fitSoon();
    }
  }

  renderPreview();
  return form;
}
