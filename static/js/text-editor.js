// The editor for one badge text (title or value): a single text for every language by default, or
// one row per language (add/remove rows) — the `{lang: text}` map Bitrix24 accepts.

import { h, replace, uid } from "./dom.js";
import { t, lang, languageName } from "./i18n.js";
import { LANGUAGE_IDS, MAX_LANGUAGES } from "./rules.js";

/**
 * textEditor({name: "title"|"value", label, onChange}) →
 *   {element, read(), reset(), load(text), errorSlot(fieldName), control(fieldName)}
 * read() gives a string (single mode) or [[lang, text], …] (per-language mode).
 */
export function textEditor({ name, label, hint, onChange }) {
  const element = h("div", { class: "field text-field", dataset: { field: name } });
  let rows = null; // null = single text; else [{lang, text}]
  let single = "";

  const changed = () => onChange && onChange();

  function firstLanguage() {
    const mine = lang();
    return LANGUAGE_IDS.includes(mine) ? mine : "en";
  }

  function unusedLanguage() {
    const used = new Set(rows.map((row) => row.lang));
    return [firstLanguage(), "en", ...LANGUAGE_IDS].find((id) => !used.has(id));
  }

  function render(focus) {
    const fieldError = h("p", { class: "field-error", id: `badge-${name}-error`, dataset: { errorFor: name } });
    const hintEl = h("p", { class: "hint", id: `badge-${name}-hint` }, hint);
    if (rows === null) {
      const input = h("input", { id: `badge-${name}`, name, type: "text", value: single, autocomplete: "off",
        "aria-describedby": `badge-${name}-hint badge-${name}-error`, oninput: (event) => {
          single = event.target.value;
          changed();
        } });
      const translate = h("button", { type: "button", class: "button button-link", id: `badge-${name}-translate`,
        onclick: () => {
          rows = [{ lang: firstLanguage(), text: single }];
          rows.push({ lang: unusedLanguage(), text: "" });
          render(rows.length - 1);
          changed();
        } }, t("form.translate"), h("span", { class: "sr-only" }, ` (${label})`));
      replace(element, h("label", { for: input.id }, label), input, hintEl, fieldError, translate);
      if (focus === "input") input.focus();
      return;
    }
    const list = h("div", { class: "lang-rows" });
    rows.forEach((row, index) => list.append(renderRow(row, index)));
    const add = h("button", { type: "button", class: "button button-link", id: `badge-${name}-add-language`,
      disabled: rows.length >= MAX_LANGUAGES || !unusedLanguage(),
      onclick: () => {
        rows.push({ lang: unusedLanguage(), text: "" });
        render(rows.length - 1);
        changed();
      } }, t("form.addLanguage"), h("span", { class: "sr-only" }, ` (${label})`));
    replace(element, h("fieldset", { class: "lang-fieldset", "aria-describedby": `badge-${name}-hint badge-${name}-error` },
      h("legend", {}, label), list, hintEl, fieldError, add));
    if (typeof focus === "number") {
      const target = list.querySelectorAll("input")[focus];
      if (target) target.focus();
    } else if (focus === "add") {
      add.focus();
    }
  }

  function renderRow(row, index) {
    const selectId = uid(`badge-${name}-lang`);
    const inputId = uid(`badge-${name}-text`);
    const errorId = uid(`badge-${name}-row-error`);
    const error = h("p", { class: "field-error", id: errorId, dataset: { errorFor: `${name}.${row.lang}` } });
    const inputLabel = h("label", { for: inputId, class: "sr-only" });
    const removeLabel = h("span", { class: "sr-only" });
    const describe = () => {
      const language = languageName(row.lang);
      inputLabel.textContent = t("form.textIn", { field: label, language });
      removeLabel.textContent = ` ${t("form.removeLanguage", { field: label, language })}`;
    };
    const select = h("select", { id: selectId, class: "lang-select", onchange: (event) => {
      row.lang = event.target.value;
      container.dataset.lang = row.lang;
      input.dataset.lang = row.lang;
      error.dataset.errorFor = `${name}.${row.lang}`;
      describe();
      changed();
    } }, LANGUAGE_IDS.map((id) => h("option", { value: id, selected: id === row.lang }, `${languageName(id)} (${id})`)));
    const input = h("input", { id: inputId, type: "text", value: row.text, autocomplete: "off", dataset: { lang: row.lang },
      "aria-describedby": errorId, oninput: (event) => {
        row.text = event.target.value;
        changed();
      } });
    const remove = h("button", { type: "button", class: "button button-icon", title: t("common.remove"), onclick: () => {
      rows.splice(index, 1);
      if (!rows.length) {
        rows = null;
        single = "";
        render("input");
      } else {
        render("add");
      }
      changed();
    } }, h("span", { "aria-hidden": "true" }, "×"), removeLabel);
    const container = h("div", { class: "lang-row", dataset: { lang: row.lang } },
      h("label", { for: selectId, class: "sr-only" }, t("form.languageOf", { field: label, number: index + 1 })),
      select, inputLabel, input, remove, error);
    describe();
    return container;
  }

  render();
  return {
    element,
    read: () => (rows === null ? single : rows.map((row) => [row.lang, row.text])),
    reset() {
      rows = null;
      single = "";
      render();
    },
    /** Fill in a badge's text: a string → single mode; a {lang: text} map → one row per language. */
    load(text) {
      if (text && typeof text === "object") {
        rows = Object.entries(text).slice(0, MAX_LANGUAGES).map(([id, entry]) => ({ lang: id, text: String(entry ?? "") }));
        if (!rows.length) rows = null;
      } else {
        rows = null;
      }
      single = rows === null ? String(text ?? "") : "";
      render();
    },
    /** The error element for `title`, `title.de`, …; a language without a row falls back to the field's. */
    errorSlot(fieldName) {
      return element.querySelector(`[data-error-for="${CSS.escape(fieldName)}"]`)
        || element.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    },
    /** The control to focus for an error on `fieldName`. */
    control(fieldName) {
      const lang = fieldName.includes(".") ? fieldName.split(".")[1] : null;
      if (lang) {
        const input = element.querySelector(`input[data-lang="${CSS.escape(lang)}"]`);
        if (input) return input;
      }
      return element.querySelector("input, select");
    },
  };
}
