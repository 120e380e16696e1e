// The badge form: "Create a badge", "Duplicate as new badge" (the create form prefilled, with a new
// code to choose) and "Replace" (Bitrix24 has no badge update: PUT /api/v1/badges/<code> deletes and
// creates it again, which only works while no deal shows it). Code, type, title and value (each a single
// text or one text per language), a live preview rendered the way Bitrix24 shows the badge, hints that
// mirror the server's rules, and the server's field errors next to the field they name (`title.de` →
// the German row).

import { h, replace } from "./dom.js";
import { t, lang, serverMessage } from "./i18n.js";
import { newIdempotencyKey } from "./api.js";
import { BADGE_TYPES, MAX_CODE_LENGTH, MAX_TEXT_LENGTH, codeRoom, displayText, validateDraft } from "./rules.js";
import { announce, chip, dealsShowing, errorText, notice, typeLabel } from "./ui.js";
import { textEditor } from "./text-editor.js";
import { fitSoon } from "./frame.js";

/**
 * A free code for a copy of `code`: without the app prefix (the form adds it), `_copy`, `_copy2`, …
 * appended and checked against `taken` (full stored codes).
 */
export function copyCode(code, prefix, taken) {
  const base = prefix && code.startsWith(prefix) ? code.slice(prefix.length) : code;
  for (let n = 1; n < 1000; n += 1) {
    const suffix = n === 1 ? "_copy" : `_copy${n}`;
    const candidate = base.slice(0, Math.max(1, MAX_CODE_LENGTH - prefix.length - suffix.length)) + suffix;
    if (!taken.has(candidate) && !taken.has(prefix + candidate)) return candidate;
  }
  return "";
}

/**
 * createBadgeForm({api, prefix, takenCodes, onSaved, onActivity, onPortalUnavailable}) →
 *   {element, duplicate(badge), replace(badge), cancel()}
 * onSaved(badge, "created" | "replaced") after a write; onActivity() whenever the user starts something
 * in the form (so the page can drop stale messages elsewhere).
 */
export function createBadgeForm({ api, prefix, takenCodes = () => new Set(), onSaved, onActivity = () => {},
  onPortalUnavailable }) {
  let mode = { kind: "create", badge: null }; // "create" | "duplicate" | "replace"
  let attempted = false; // after the first submit, hints update while typing
  let pendingKey = null; // the Idempotency-Key of the last unfinished attempt, and the request it was for
  let pendingBody = null;

  const heading = h("h2", { id: "create-title" }, t("form.heading"));
  const modeNote = h("div", { class: "form-mode", id: "form-mode-note" });
  const problem = h("div", { class: "form-problem", id: "create-problem", role: "alert" });
  const codeHint = prefix ? t("form.codeHintPrefixed", { room: codeRoom(prefix), prefix }) : t("form.codeHint", { room: codeRoom(prefix) });
  const codeHintEl = h("p", { class: "hint", id: "badge-code-hint" }, codeHint);
  const code = h("input", { id: "badge-code", name: "code", type: "text", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "badge-code-hint badge-code-error", oninput: update });
  const type = h("select", { id: "badge-type", name: "type", "aria-describedby": "badge-type-error", onchange: update },
    BADGE_TYPES.map((id) => h("option", { value: id }, typeLabel(id))));
  const title = textEditor({ name: "title", label: t("form.title"), hint: t("form.textHint", { max: MAX_TEXT_LENGTH }), onChange: update });
  const value = textEditor({ name: "value", label: t("form.value"), hint: t("form.valueHint", { max: MAX_TEXT_LENGTH }), onChange: update });
  const preview = h("div", { class: "preview-body" });
  const submit = h("button", { type: "submit", class: "button button-primary", id: "badge-create" }, t("form.create"));
  const cancel = h("button", { type: "button", class: "button", id: "badge-form-cancel", hidden: true,
    onclick: () => cancelMode() }, t("common.cancel"));

  const form = h("form", { class: "badge-form", id: "create-form", novalidate: true, "aria-labelledby": "create-title",
    dataset: { mode: "create" },
    onsubmit: (event) => {
      event.preventDefault();
      save();
    } },
  heading,
  modeNote,
  h("div", { class: "form-grid" },
    h("div", { class: "form-fields" },
      h("div", { class: "field", dataset: { field: "code" } },
        h("label", { for: "badge-code" }, t("form.code")),
        code,
        codeHintEl,
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
  h("div", { class: "form-actions" }, submit, " ", cancel));

  const submitLabel = () => t(mode.kind === "replace" ? "form.replace" : "form.create");

  function setMode(kind, badge) {
    mode = { kind, badge };
    form.dataset.mode = kind;
    attempted = false;
    pendingKey = pendingBody = null;
    clearErrors();
    const shownCode = badge ? String(badge.code) : "";
    heading.textContent = kind === "replace" ? t("form.replaceHeading", { code: shownCode })
      : kind === "duplicate" ? t("form.duplicateHeading", { code: shownCode }) : t("form.heading");
    replace(modeNote, kind === "create" ? null : notice("info",
      h("p", {}, t("form.noEdit")),
      h("p", {}, t(kind === "replace" ? "form.replaceHint" : "form.duplicateHint"))));
    code.readOnly = kind === "replace";
    if (kind === "replace") code.setAttribute("aria-readonly", "true");
    else code.removeAttribute("aria-readonly");
    codeHintEl.textContent = kind === "replace" ? t("form.codeFixed") : codeHint;
    submit.textContent = submitLabel();
    cancel.hidden = kind === "create";
  }

  function fill(badge, codeValue) {
    code.value = codeValue;
    type.value = BADGE_TYPES.includes(badge.type) ? badge.type : BADGE_TYPES[0];
    title.load(badge.title);
    value.load(badge.value);
    renderPreview();
  }

  function show(focusCode) {
    form.scrollIntoView({ block: "start" });
    if (focusCode) {
      code.focus();
      code.select();
    } else {
      type.focus();
    }
    fitSoon();
  }

  /** "Duplicate as new badge": the form prefilled, with a free code that the user can change. */
  function duplicate(badge) {
    onActivity();
    setMode("duplicate", badge);
    fill(badge, copyCode(String(badge.code), prefix, takenCodes()));
    show(true);
  }

  /** "Replace": the badge's texts and type, its code fixed. */
  function replaceBadge(badge) {
    onActivity();
    setMode("replace", badge);
    fill(badge, String(badge.code));
    show(false);
  }

  function resetFields() {
    code.value = "";
    type.value = BADGE_TYPES[0];
    title.reset();
    value.reset();
    renderPreview();
  }

  function cancelMode() {
    onActivity();
    setMode("create", null);
    resetFields();
    code.focus();
  }

  function draft() {
    return { code: code.value, type: type.value, title: title.read(), value: value.read() };
  }

  /** Hints for the current draft; in Replace mode the code is the existing badge's and not checked. */
  function check() {
    const result = validateDraft(draft(), prefix);
    if (mode.kind === "replace") {
      delete result.fields.code;
      result.badge.code = String(mode.badge.code);
    }
    return result;
  }

  function update() {
    renderPreview();
    if (attempted) showErrors(check().fields, false);
  }

  function renderPreview() {
    const { badge } = validateDraft(draft(), prefix);
    const shown = badge;
    const perLanguage = [];
    for (const [key, text] of [["title", badge.title], ["value", badge.value]]) {
      if (text && typeof text === "object") Object.keys(text).forEach((id) => perLanguage.includes(id) || perLanguage.push(id));
    }
    const placeholder = (text, fallback) => (displayText(text, lang()).trim() ? text : fallback);
    const shownTitle = displayText(placeholder(shown.title, t("form.title")), lang());
    replace(preview,
      h("div", { class: "kanban-preview", id: "badge-preview" },
        h("span", { class: "kanban-preview-deal", "aria-hidden": "true" }, t("form.previewDeal")),
        h("span", { class: "badge-line" },
          chip({ ...shown, value: placeholder(shown.value, t("form.value")) }),
          " ",
          h("span", { class: "badge-title", title: shownTitle }, shownTitle))),
      perLanguage.length > 1
        ? h("ul", { class: "preview-languages", "aria-label": t("form.previewLanguages") },
          perLanguage.map((id) => h("li", {}, h("span", { class: "lang-code" }, id), " ",
            h("span", { class: "badge-line" },
              chip({ ...shown, value: placeholder(shown.value, "…") }, id), " ",
              h("span", { class: "badge-title", title: displayText(shown.title, id) }, displayText(shown.title, id))))))
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

  /** POST (create, duplicate) or PUT (replace; the code is the URL's, so the body leaves it out). */
  function send(badge) {
    if (mode.kind !== "replace") return api.post("/badges", badge, pendingKey);
    const { code: fixed, ...body } = badge;
    return api.put(`/badges/${encodeURIComponent(fixed)}`, body, pendingKey);
  }

  async function save() {
    onActivity();
    attempted = true;
    const { fields, badge } = check();
    if (Object.keys(fields).length) {
      showErrors(fields, true);
      replace(problem, h("p", {}, t("form.fixFields", { count: Object.keys(fields).length })));
      return;
    }
    clearErrors();
    const replacing = mode.kind === "replace";
    const request = JSON.stringify([mode.kind, badge]);
    if (request !== pendingBody) {
      pendingBody = request;
      pendingKey = newIdempotencyKey();
    }
    submit.disabled = true;
    submit.textContent = t(replacing ? "form.replacing" : "form.creating");
    form.setAttribute("aria-busy", "true");
    try {
      const answer = await send(badge);
      const saved = answer && answer.badge ? answer.badge : badge;
      setMode("create", null);
      resetFields();
      announce(t(replacing ? "form.replaced" : "form.created", { code: saved.code }));
      onSaved(saved, replacing ? "replaced" : "created");
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
      } else if (replacing && error.code === "ENTITY_WITH_BADGE_EXISTS") {
        replace(problem, h("p", {}, t("replace.inUse")), dealsShowing(error.deals));
      } else if (replacing && (error.code === "BADGE_NOT_FOUND" || error.code === "NOT_FOUND")) {
        const gone = mode.badge;
        replace(problem, h("p", {}, t("replace.gone", { code: String(gone.code) })),
          h("p", {}, h("button", { type: "button", class: "button button-small", id: "replace-recreate",
            onclick: () => {
              const kept = { ...check().badge, code: String(gone.code) };
              setMode("duplicate", gone);
              fill(kept, String(gone.code));
              show(true);
            } }, t("replace.recreate"))));
      } else {
        replace(problem, h("p", {}, errorText(error)));
      }
    } finally {
      submit.disabled = false;
      submit.textContent = submitLabel();
      form.removeAttribute("aria-busy");
      fitSoon();
    }
  }

  renderPreview();
  return { element: form, duplicate, replace: replaceBadge, cancel: cancelMode };
}
