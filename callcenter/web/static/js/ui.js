// ui.js: small DOM and formatting helpers shared by the agent page's views. Owns element
// creation (text only: server data never goes through innerHTML), lookups by data-testid,
// time and duration formats, the transient notices at the bottom of the page, and button
// "busy" handling for requests in flight. Knows nothing of calls, agents or the server.

export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/**
 * h("div", {class: "x", dataset: {a: 1}, onclick: fn, hidden: true}, "text", child, [more])
 * Strings become text nodes; null/false children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
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

export function icon(name, extraClass = "") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", `icon ${extraClass}`.trim());
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el && el.textContent !== value) el.textContent = value;
}

export function show(el, visible) {
  if (el && el.hidden === Boolean(visible)) el.hidden = !visible;
}

// --- formats -------------------------------------------------------------------------------

export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(Number(totalSeconds) || 0));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : new Date(t);
}

export function formatTime(iso) {
  const d = parseTime(iso);
  return d ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

/** "14:05" today, "Mon 14:05" this week, "12 Nov" before. */
export function formatWhen(iso) {
  const d = parseTime(iso);
  if (!d) return "";
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return time;
  if (now - d < 6 * 86400 * 1000) return `${d.toLocaleDateString([], { weekday: "short" })} ${time}`;
  return d.toLocaleDateString([], { day: "numeric", month: "short" });
}

export function secondsSince(iso, now = Date.now()) {
  const d = parseTime(iso);
  return d ? Math.max(0, (now - d.getTime()) / 1000) : 0;
}

export function initials(name) {
  const words = String(name || "").trim().split(/\s+/).filter(Boolean);
  if (!words.length) return "";
  const letters = words.length === 1 ? words[0].slice(0, 2) : words[0][0] + words[words.length - 1][0];
  return letters.toUpperCase();
}

export function titleCase(text) {
  const s = String(text || "").replace(/[-_]/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// --- notices -------------------------------------------------------------------------------

/** A short message at the bottom of the page (role=status region), gone after `ms`. */
export function notify(message, { kind = "info", ms = 5000 } = {}) {
  const region = byTestId("notices");
  if (!region || !message) return;
  const close = h("button", { type: "button", "aria-label": "Dismiss" }, icon("x"));
  const note = h("div", { class: "notice", "data-testid": "notice", dataset: { kind }, role: kind === "error" ? "alert" : null },
    h("span", { class: "notice-text" }, message), close);
  const remove = () => note.remove();
  close.addEventListener("click", remove);
  region.append(note);
  while (region.children.length > 4) region.firstElementChild.remove();
  if (ms) setTimeout(remove, ms);
}

export function notifyError(error, prefix = "") {
  const detail = (error && (error.detail || error.message)) || String(error);
  notify(prefix ? `${prefix}: ${detail}` : detail, { kind: "error", ms: 8000 });
}

/**
 * Run `action` with `button` marked busy (disabled, aria-busy) so a double click sends one
 * request; errors become a notice. Returns the action's result, or undefined on error.
 */
export async function withBusy(button, action, errorPrefix = "") {
  if (button && button.getAttribute("aria-busy") === "true") return undefined;
  if (button) {
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
  }
  try {
    return await action();
  } catch (error) {
    notifyError(error, errorPrefix);
    return undefined;
  } finally {
    if (button) {
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }
}
