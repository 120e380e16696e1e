// A searchable badge picker: a text input (role="combobox") that filters a listbox of the portal's
// badges (up to 500) by code, title or value in any language. Keyboard: ↓/↑ move through the matches
// (↓ opens the list), Enter picks, Escape closes the list (a second Escape clears the text), Tab leaves.
// The focus stays in the input; the active option is named by aria-activedescendant.

import { h, replace } from "./dom.js";
import { t, lang } from "./i18n.js";
import { displayText, displayValue } from "./rules.js";
import { matches, searchText } from "./badge-list.js";
import { chip } from "./ui.js";
import { fitSoon } from "./frame.js";

/** How a picked badge reads in the input. */
export function badgeLabel(badge) {
  return `${displayValue(badge.value, lang())} — ${displayText(badge.title, lang())} (${badge.code})`;
}

/**
 * badgePicker({id, label, placeholder, onChange}) →
 *   {element, setBadges(badges), selected(), select(code), setDisabled(flag)}
 * onChange(badge | null) when the pick changes (typing after a pick clears it).
 */
export function badgePicker({ id, label, placeholder, onChange = () => {} }) {
  const listId = `${id}-list`;
  let badges = [];
  let haystacks = [];
  let shown = []; // indexes into badges, in list order
  let active = -1; // index into shown
  let picked = null;
  let query = "";
  let disabled = false;

  const input = h("input", { id, type: "text", role: "combobox", autocomplete: "off", spellcheck: "false",
    "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": listId, placeholder,
    "aria-describedby": `${id}-status`, disabled: true,
    oninput: () => {
      query = input.value;
      if (picked) {
        picked = null;
        onChange(null);
      }
      open(query.trim() ? 0 : -1);
    },
    onkeydown: keydown,
    onclick: () => {
      if (!isOpen()) open(picked ? -2 : -1);
    } });
  const toggle = h("button", { type: "button", class: "combo-toggle", tabindex: "-1", "aria-label": t("picker.show"),
    "aria-controls": listId, "aria-expanded": "false", disabled: true,
    onmousedown: (event) => event.preventDefault(),
    onclick: () => {
      if (isOpen()) close();
      else open(picked ? -2 : -1);
      input.focus();
    } }, h("span", { "aria-hidden": "true" }, "▾"));
  const list = h("ul", { id: listId, role: "listbox", class: "combo-list", "aria-label": label, hidden: true,
    onmousedown: (event) => event.preventDefault() });
  const status = h("p", { class: "combo-status sr-only", id: `${id}-status`, "aria-live": "polite" });
  const element = h("div", { class: "combo", dataset: { open: "false" },
    onfocusout: (event) => {
      if (!element.contains(event.relatedTarget)) close();
    } },
  h("label", { for: id }, label),
  h("div", { class: "combo-box" }, input, toggle),
  list,
  status);

  const isOpen = () => !list.hidden;

  function optionId(position) {
    return `${id}-option-${position}`;
  }

  /** Open (or refresh) the list for the current query; `start` is the active position (-1 none,
   *  -2 the picked badge). */
  function open(start) {
    if (disabled) return;
    const text = picked ? "" : query;
    shown = [];
    badges.forEach((badge, index) => {
      if (matches(badge, text, haystacks[index])) shown.push(index);
    });
    replace(list, shown.length
      ? shown.map((index, position) => {
        const badge = badges[index];
        return h("li", { id: optionId(position), role: "option", class: "combo-option", "aria-selected": "false",
          dataset: { code: String(badge.code) },
          onclick: () => choose(position) },
        chip(badge), " ", h("span", { class: "combo-title" }, displayText(badge.title, lang())), " ",
        h("code", {}, String(badge.code)));
      })
      : h("li", { class: "combo-empty", role: "presentation" }, t("picker.noMatch")));
    list.hidden = false;
    element.dataset.open = "true";
    input.setAttribute("aria-expanded", "true");
    toggle.setAttribute("aria-expanded", "true");
    status.textContent = shown.length ? t("picker.matches", { count: shown.length }) : t("picker.noMatch");
    const pickedAt = picked ? shown.findIndex((index) => badges[index] === picked) : -1;
    setActive(start === -2 ? pickedAt : Math.min(start, shown.length - 1));
    fitSoon();
  }

  function close() {
    if (!isOpen()) return;
    list.hidden = true;
    element.dataset.open = "false";
    input.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
    fitSoon();
  }

  function setActive(position) {
    const previous = active >= 0 ? list.querySelector(`#${CSS.escape(optionId(active))}`) : null;
    if (previous) previous.setAttribute("aria-selected", "false");
    active = position;
    const option = active >= 0 ? list.querySelector(`#${CSS.escape(optionId(active))}`) : null;
    if (!option) {
      active = -1;
      input.removeAttribute("aria-activedescendant");
      return;
    }
    option.setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function choose(position) {
    const badge = badges[shown[position]];
    if (!badge) return;
    picked = badge;
    query = "";
    input.value = badgeLabel(badge);
    close();
    onChange(badge);
  }

  function keydown(event) {
    if (disabled) return;
    switch (event.key) {
      case "ArrowDown":
        event.preventDefault();
        if (!isOpen() || event.altKey) open(isOpen() ? active : (picked ? -2 : 0));
        else setActive(Math.min(active + 1, shown.length - 1));
        break;
      case "ArrowUp":
        event.preventDefault();
        if (!isOpen()) open(picked ? -2 : shown.length - 1);
        else if (active > 0) setActive(active - 1);
        break;
      case "Enter":
        if (isOpen() && active >= 0) {
          event.preventDefault();
          choose(active);
        }
        break;
      case "Escape":
        if (isOpen()) {
          event.preventDefault();
          close();
        } else if (input.value) {
          event.preventDefault();
          input.value = "";
          query = "";
          if (picked) {
            picked = null;
            onChange(null);
          }
        }
        break;
      case "Tab":
        close();
        break;
      default:
        break;
    }
  }

  return {
    element,
    /** The badges to pick from; a pick that is no longer among them is dropped. */
    setBadges(list_) {
      badges = Array.isArray(list_) ? list_ : [];
      haystacks = badges.map(searchText);
      if (picked) {
        picked = badges.find((badge) => badge.code === picked.code) || null;
        input.value = picked ? badgeLabel(picked) : "";
      }
      this.setDisabled(!badges.length);
      input.placeholder = badges.length ? placeholder : t("deal.noBadges");
      if (isOpen()) open(active);
    },
    selected: () => picked,
    /** Pick a badge by code (null: none) without calling onChange. */
    select(code) {
      picked = code === null ? null : badges.find((badge) => badge.code === code) || null;
      query = "";
      input.value = picked ? badgeLabel(picked) : "";
    },
    setDisabled(flag) {
      disabled = Boolean(flag) || !badges.length;
      input.disabled = disabled;
      toggle.disabled = disabled;
      if (disabled) close();
    },
  };
}
