// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so nothing a user or
// a program printed can turn into markup.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** h("a", {href: "/x", class: "y", onclick: fn}, "text", child, [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  el.removeAttribute("aria-busy");
  return el;
}

/** Show an error message in `el` (a role=alert element) and point the field it names at it. */
export function showError(el, error, form = null) {
  el.textContent = error.message || String(error);
  el.hidden = false;
  if (!form) return;
  for (const field of $$("[aria-invalid]", form)) field.removeAttribute("aria-invalid");
  // The exact field (e.g. "test_cases[1].stdin"), else the top-level one it belongs to.
  const names = error.field ? [error.field, error.field.split(/[.[]/)[0]] : [];
  const input = names.map((name) => form.querySelector(`[name="${CSS.escape(name)}"]`)).find(Boolean);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), el.id].filter(Boolean).join(" "));
    input.focus();
  }
}

export function hideError(el) {
  el.hidden = true;
  el.textContent = "";
}

/** A message in the page banner (a polite live region), e.g. "Saved". */
export function announce(text, kind = "info") {
  const banner = $("#banner");
  if (!banner) return;
  banner.textContent = text;
  banner.dataset.kind = kind;
  banner.hidden = !text;
}

export function when(value) {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Run `task` while `button` shows it is busy; the button cannot be pressed twice meanwhile. */
export async function busy(button, task) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await task();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/**
 * Where the `next` query parameter leads, when that is a page of this appliance; else `fallback`.
 * The value is resolved the way the browser would resolve it and then compared by origin, so
 * `/\evil.example`, tabs or newlines in `//evil.example`, `https://…` and `javascript:` never
 * leave the appliance. The absolute URL is returned: a path such as `//evil.example` (which
 * `/.//evil.example` normalises to) would be read as another host if assigned on its own.
 */
export function nextPath(fallback = "/") {
  const next = new URLSearchParams(location.search).get("next");
  if (!next) return fallback;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return fallback;
  }
  return url.origin === location.origin ? url.href : fallback;
}

export const pageId = () => Number($("[data-id]")?.dataset.id) || null;

const LANGUAGE_NAMES = { python: "Python", c: "C", cpp: "C++", java: "Java", javascript: "JavaScript" };
export const languageName = (id) => LANGUAGE_NAMES[id] || id;
