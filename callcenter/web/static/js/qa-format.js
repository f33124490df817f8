// qa-format.js: how the QA page writes times, dates and sizes, and how it turns a
// datetime-local field's value into ISO 8601 with the browser's offset (the search's `since`
// and `until` need a zone, docs/qa-api.md). Knows no DOM and no server.

export function parseIso(iso) {
  const t = Date.parse(iso || "");
  return Number.isNaN(t) ? null : new Date(t);
}

/** "23 Nov 10:02" (with the year when it is not this year's). */
export function formatStart(iso) {
  const d = parseIso(iso);
  if (!d) return "";
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString([], {
    day: "numeric",
    month: "short",
    year: sameYear ? undefined : "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** The day of a start: "23 Nov" (with the year when it is not this year's). */
export function formatDay(iso) {
  const d = parseIso(iso);
  if (!d) return "";
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleDateString([], { day: "numeric", month: "short", year: sameYear ? undefined : "numeric" });
}

export function formatHour(iso) {
  const d = parseIso(iso);
  return d ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

export function formatFull(iso) {
  const d = parseIso(iso);
  return d ? d.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }) : "";
}

export function formatClock(iso) {
  const d = parseIso(iso);
  return d ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
}

export function formatBytes(n) {
  if (!Number.isFinite(Number(n))) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

const pad = (n) => String(n).padStart(2, "0");

/** A datetime-local value ("2026-11-23T10:00") as ISO 8601 with this browser's offset then. */
export function localToIso(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const seconds = value.length === 16 ? ":00" : "";
  return `${value}${seconds}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
