// qa.js: the QA page's entry point (qa.html, served at /qa). Owns boot (the session: a 401
// goes to the sign-in page, an agent to the desk), the search form and its results table
// (paging on with `before_id`), opening a recording (the player, the scorecard, comments,
// the call's details) and the tabs. Every request is in docs/qa-api.md; the player is
// qa-player.js, the scorecard qa-scorecard.js, the comments qa-comments.js, the supervisor's
// legal hold, deletion and audit tab qa-supervisor.js, formats qa-format.js.

import * as api from "./api.js";
import { CommentsPanel } from "./qa-comments.js";
import { formatBytes, formatClock, formatDay, formatFull, formatHour, formatStart, localToIso } from "./qa-format.js";
import { Player, formatPosition, kindLabel } from "./qa-player.js";
import { ScorecardPanel, formatScore, scoreBand } from "./qa-scorecard.js";
import { SupervisorTools } from "./qa-supervisor.js";
import { byTestId, formatDuration, h, icon, initials, notifyError, setText, show, titleCase } from "./ui.js";

const $ = byTestId;
const PAGE_SIZE = 50;
const SUPERVISORS = ["supervisor", "admin"];

const S = {
  me: null,
  rows: [],
  query: "", // the last search's parameters (without before_id)
  info: null, // the open recording (RecordingInfo)
  searching: false,
};

let player = null;
let scorecard = null;
let comments = null;
let supervisor = null; // SupervisorTools, for supervisors and administrators only

const STATE_TEXT = {
  recording: "Recording now",
  complete: "Complete",
  incomplete: "Incomplete",
  failed: "Failed",
};

function isSupervisor() {
  return Boolean(S.me) && SUPERVISORS.includes(S.me.role);
}

// --- boot --------------------------------------------------------------------------------------

async function boot() {
  api.setUnauthorizedHandler(() => location.assign(api.LOGIN_PAGE));
  let session;
  try {
    session = await api.me();
  } catch (error) {
    if (error.status === 401) location.replace(api.LOGIN_PAGE);
    else notifyError(error, "Cannot start");
    return;
  }
  const user = session && session.user;
  if (!user) {
    location.replace(api.LOGIN_PAGE);
    return;
  }
  if (user.role === "agent") {
    location.replace(api.AGENT_PAGE);
    return;
  }
  S.me = user;
  document.body.dataset.role = user.role;
  const name = user.display_name || user.username;
  setText($("qa-user"), name);
  setText($("qa-user-initials"), initials(name));
  setText($("qa-user-role"), user.role === "qa" ? "QA" : titleCase(user.role));
  for (const node of document.querySelectorAll(".supervisor-only")) show(node, isSupervisor());

  player = new Player(
    {
      audio: $("qa-audio"),
      canvas: $("qa-waveform"),
      markers: $("qa-timeline"),
      pins: $("qa-comment-pins"),
      time: $("qa-playhead"),
    },
    {
      onTime: (seconds) => comments && comments.position(seconds),
      onPin: (comment) => comments && comments.focus(comment),
    },
  );
  scorecard = new ScorecardPanel($("qa-scorecard"), { onSaved: () => refreshInfo() });
  comments = new CommentsPanel(document.querySelector(".qa-comments"), player, {
    onChange: (list) => player.setComments(list),
  });
  if (isSupervisor()) {
    supervisor = new SupervisorTools({
      current: () => S.info,
      onInfo: (info) => applyInfo(info),
      onDeleted: (id) => {
        S.rows = S.rows.filter((row) => row.id !== id);
        renderResults({ more: !$("qa-more").hidden });
        if (S.info && S.info.id === id) closeRecording();
      },
    });
  }

  wire();
  loadScorecards();
  await search();
  openFromHash();
  // A link to another recording on this page (/qa#recording=42) opens it too.
  window.addEventListener("hashchange", openFromHash);
}

function openFromHash() {
  const wanted = /^#recording=(\d+)$/.exec(location.hash);
  if (wanted && (!S.info || S.info.id !== Number(wanted[1]))) openRecording(Number(wanted[1]));
}

function wire() {
  $("logout").addEventListener("click", async () => {
    await api.logout().catch(() => {});
    location.assign(api.LOGIN_PAGE);
  });
  const form = $("qa-search-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  form.addEventListener("reset", () => {
    setTimeout(() => search(), 0); // after the fields are cleared
  });
  $("qa-more").addEventListener("click", () => search({ more: true }));

  const tbody = $("qa-results").tBodies[0];
  tbody.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-recording-id]");
    if (row) openRecording(Number(row.dataset.recordingId));
  });
  tbody.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-recording-id]");
    if (!row) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openRecording(Number(row.dataset.recordingId));
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      if (next) next.focus();
    }
  });

  wireTabs();

  // Space plays and pauses anywhere on the page except where one types or presses buttons.
  document.addEventListener("keydown", (event) => {
    if (event.key !== " " || !S.info || event.defaultPrevented) return;
    const el = document.activeElement;
    if (el && el !== document.body && el.closest("input, textarea, select, button, a, audio, [role=slider], tr, dialog")) return;
    event.preventDefault();
    player.toggle();
  });
}

async function loadScorecards() {
  try {
    scorecard.setCards(await api.get("/api/scorecards?retired=false"));
  } catch (error) {
    if (error.status !== 401) notifyError(error, "Scorecards");
  }
}

// --- search ------------------------------------------------------------------------------------

function queryFromForm() {
  const form = $("qa-search-form");
  const params = new URLSearchParams();
  for (const field of form.elements) {
    if (!field.name) continue;
    let value = String(field.value || "").trim();
    if (!value) continue;
    if (field.type === "datetime-local") value = localToIso(value);
    if (field.name === "number") value = value.replace(/[\s().-]/g, "");
    if (value) params.set(field.name, value);
  }
  params.set("limit", String(PAGE_SIZE));
  return params;
}

async function search({ more = false } = {}) {
  if (S.searching) return;
  const params = more ? new URLSearchParams(S.query) : queryFromForm();
  if (!more) S.query = params.toString();
  if (more && S.rows.length) params.set("before_id", String(S.rows[S.rows.length - 1].id));
  const error = $("qa-search-error");
  const button = more ? $("qa-more") : $("qa-search-submit");
  S.searching = true;
  $("qa-results").setAttribute("aria-busy", "true");
  button.setAttribute("aria-busy", "true");
  try {
    const found = await api.get(`/api/recordings?${params}`);
    const rows = Array.isArray(found) ? found : [];
    S.rows = more ? [...S.rows, ...rows] : rows;
    setText(error, "");
    renderResults({ more: rows.length === PAGE_SIZE });
  } catch (failure) {
    if (failure.status === 401) return;
    setText(error, failure.detail || String(failure));
    if (!more) {
      S.rows = [];
      renderResults({ more: false, failed: true });
    }
  } finally {
    S.searching = false;
    $("qa-results").removeAttribute("aria-busy");
    button.removeAttribute("aria-busy");
  }
}

function renderResults({ more, failed = false }) {
  const tbody = $("qa-results").tBodies[0];
  tbody.replaceChildren(...S.rows.map(resultRow));
  show($("qa-results-empty"), !S.rows.length && !failed);
  show($("qa-more"), more);
  setText($("qa-results-count"), S.rows.length ? `${S.rows.length}${more ? "+" : ""}` : "");
}

function resultRow(item) {
  const selected = S.info && S.info.id === item.id;
  const state =
    item.state && item.state !== "complete"
      ? h("span", { class: "badge badge-small", dataset: { state: item.state } }, STATE_TEXT[item.state] || item.state)
      : null;
  const score = item.qa_score === null || item.qa_score === undefined ? null : Number(item.qa_score);
  return h(
    "tr",
    {
      tabindex: "0",
      "data-testid": "qa-result-row",
      dataset: { recordingId: String(item.id), state: item.state || "" },
      "aria-current": selected ? "true" : null,
      "aria-label": `${item.caller || "Unknown caller"}, ${formatStart(item.started_at)}`,
    },
    h(
      "td",
      { class: "when" },
      h("time", { datetime: item.started_at || "", title: formatFull(item.started_at) }, formatDay(item.started_at), h("span", { class: "when-time" }, formatHour(item.started_at))),
    ),
    h("td", { class: "num" }, item.duration_seconds == null ? "—" : formatDuration(item.duration_seconds)),
    h("td", { class: "caller" }, item.caller || "unknown", state),
    h(
      "td",
      { class: "who" },
      h("span", { class: "who-agent" }, item.agent || "—"),
      h("span", { class: "who-queue" }, item.queue || "no queue"),
    ),
    h("td", {}, item.outcome ? h("span", { class: "chip", title: item.outcome }, item.outcome) : h("span", { class: "muted" }, "—")),
    h(
      "td",
      { class: "num" },
      h("span", { class: "score-cell", "data-testid": "qa-result-score", dataset: { band: scoreBand(score) } }, formatScore(score)),
    ),
    h(
      "td",
      { class: "hold-cell" },
      item.legal_hold
        ? h(
            "span",
            { class: "badge badge-hold badge-icon", "data-testid": "qa-result-hold", title: "On legal hold" },
            icon("lock"),
            h("span", { class: "visually-hidden" }, "On legal hold"),
          )
        : null,
    ),
  );
}

function markSelected() {
  for (const row of $("qa-results").tBodies[0].rows) {
    if (S.info && Number(row.dataset.recordingId) === S.info.id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

// --- one recording -----------------------------------------------------------------------------

async function openRecording(id) {
  let info;
  try {
    info = await api.get(`/api/recordings/${id}`);
  } catch (error) {
    if (error.status === 401) return;
    notifyError(error, error.status === 404 ? "No such recording" : "Cannot open the recording");
    if (error.status === 404 && location.hash === `#recording=${id}`) history.replaceState(null, "", location.pathname);
    return;
  }
  S.info = info;
  history.replaceState(null, "", `#recording=${info.id}`);
  show($("qa-placeholder"), false);
  show($("qa-detail"), true);
  player.load(info);
  renderHeader();
  renderDetails();
  scorecard.show(info, S.me.username);
  comments.show(info, S.me.username, { mayDeleteAny: isSupervisor() });
  markSelected();
  if (selectedTab() === "audit") loadAudit();
}

/** Fetch the open recording again (a score or hold changed) without touching the player. */
async function refreshInfo() {
  if (!S.info) return;
  const id = S.info.id;
  let info;
  try {
    info = await api.get(`/api/recordings/${id}`);
  } catch (error) {
    if (error.status !== 401) notifyError(error);
    return;
  }
  if (!S.info || S.info.id !== id) return;
  applyInfo(info);
}

function applyInfo(info) {
  // Keep the comments the panel holds in sync with the server's answer.
  S.info = info;
  renderHeader();
  renderDetails();
  scorecard.show(info, S.me.username);
  comments.show(info, S.me.username, { mayDeleteAny: isSupervisor() });
  player.setComments(info.comments || []);
  const row = S.rows.find((r) => r.id === info.id);
  if (row) {
    Object.assign(row, { qa_score: info.qa_score, legal_hold: info.legal_hold, state: info.state });
    const node = $("qa-results").querySelector(`tr[data-recording-id="${info.id}"]`);
    if (node) node.replaceWith(resultRow(row));
  }
  if (selectedTab() === "audit") loadAudit();
}

function renderHeader() {
  const info = S.info;
  setText($("qa-player-caller"), info.caller || "Unknown caller");
  const meta = [
    formatStart(info.started_at),
    info.duration_seconds == null ? null : formatDuration(info.duration_seconds),
    info.agent ? `agent ${info.agent}` : null,
    info.queue ? `queue ${info.queue}` : null,
    info.outcome ? `outcome ${info.outcome}` : null,
  ].filter(Boolean);
  setText($("qa-player-meta"), meta.join(" · "));

  const state = $("qa-player-state");
  setText(state, STATE_TEXT[info.state] || info.state);
  state.dataset.state = info.state;
  const banner = $("qa-state-banner");
  const problem = info.state === "incomplete" || info.state === "failed";
  show(banner, problem || info.state === "recording");
  banner.dataset.state = info.state;
  if (info.state === "incomplete") {
    setText(banner, `Incomplete recording: the service stopped during the call, so the end is missing.${info.failure ? ` ${info.failure}` : ""}`);
  } else if (info.state === "failed") {
    setText(banner, `Recording failed${info.failure ? `: ${info.failure}` : ""}. What was saved is below.`);
  } else if (info.state === "recording") {
    setText(banner, "This call is still being recorded.");
  }

  const held = Boolean(info.legal_hold);
  show($("qa-player-hold"), held);
  const reason = $("qa-hold-reason");
  show(reason, held && Boolean(info.legal_hold_reason));
  setText(reason, held ? `Legal hold: ${info.legal_hold_reason}` : "");
  const toggle = $("qa-hold-toggle");
  toggle.setAttribute("aria-pressed", String(held));
  setText(toggle.querySelector("span"), held ? "Release hold" : "Legal hold");
  $("qa-delete").disabled = held;
  $("qa-delete").title = held ? "Release the legal hold first" : "";

  const score = $("qa-player-score");
  const mean = info.qa_score === null || info.qa_score === undefined ? null : Number(info.qa_score);
  setText(score, mean === null ? "Not scored" : `QA ${formatScore(mean)}`);
  score.dataset.band = scoreBand(mean);

  const download = $("qa-download");
  download.href = `/api/recordings/${encodeURIComponent(info.id)}/audio?download=true`;
  download.setAttribute("download", `recording-${info.id}.wav`);
}

function renderDetails() {
  const info = S.info;
  const sha = info.sha256 || "";
  const facts = [
    ["Caller", info.caller || "unknown"],
    ["Customer", info.customer_id ? `#${info.customer_id}` : "not matched"],
    ["Agent", info.agent || "—"],
    ["Queue", info.queue || "—"],
    ["Call ended", info.disposition ? titleCase(info.disposition) : "—"],
    ["Outcome", info.outcome || "—"],
    ["Started", formatFull(info.started_at)],
    ["Length", info.duration_seconds == null ? "—" : formatDuration(info.duration_seconds)],
    ["State", STATE_TEXT[info.state] || info.state, info.state],
    ["SHA-256", sha ? `${sha.slice(0, 12)}…` : "—", null, sha],
    ["Size", `${formatBytes(info.size_bytes)}${info.compressed ? " · compressed copy kept" : ""}`],
    ["Call id", info.call_id],
  ];
  $("qa-facts").replaceChildren(
    ...facts.map(([term, value, state, title]) =>
      h(
        "div",
        { class: "fact" },
        h("dt", {}, term),
        h("dd", { dataset: state ? { state } : {}, title: title || null, "data-testid": `qa-fact-${term.toLowerCase().replace(/[^a-z0-9]+/g, "-")}` }, value),
      ),
    ),
  );
  const events = Array.isArray(info.call_timeline) ? info.call_timeline : [];
  $("qa-call-timeline").replaceChildren(
    ...events.map((event) => {
      const parts = Object.entries(event)
        .filter(([key]) => key !== "at" && key !== "kind")
        .map(([key, value]) => `${key.replace(/_/g, " ")}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
      // Long values (the routing's candidates) are cut short here; the tooltip has them all.
      const extra = parts.map((part) => (part.length > 70 ? `${part.slice(0, 69)}…` : part)).join(" · ");
      return h(
        "li",
        { class: "ct-event", "data-testid": "qa-call-event", dataset: { kind: event.kind } },
        h("time", { datetime: event.at || "" }, formatClock(event.at)),
        h("span", { class: "ct-kind" }, titleCase(event.kind)),
        extra ? h("span", { class: "ct-extra muted", title: parts.join("\n") }, extra) : null,
      );
    }),
  );
}

// --- tabs --------------------------------------------------------------------------------------

function tabs() {
  return [...document.querySelectorAll('.qa-work [role="tab"]')].filter((tab) => !tab.hidden);
}

function selectedTab() {
  const tab = tabs().find((t) => t.getAttribute("aria-selected") === "true");
  return tab ? tab.id.replace("tab-", "") : "score";
}

function selectTab(tab, focus = false) {
  for (const other of tabs()) {
    const on = other === tab;
    other.setAttribute("aria-selected", String(on));
    other.tabIndex = on ? 0 : -1;
    show(document.getElementById(other.getAttribute("aria-controls")), on);
  }
  if (focus) tab.focus();
  if (tab.id === "tab-audit") loadAudit();
}

function wireTabs() {
  for (const tab of document.querySelectorAll('.qa-work [role="tab"]')) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const list = tabs();
      const at = list.indexOf(tab);
      const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: list.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(list[(moves[event.key] + list.length) % list.length], true);
    });
  }
}

function loadAudit() {
  if (supervisor) supervisor.loadAudit();
}

function closeRecording() {
  S.info = null;
  player.unload();
  history.replaceState(null, "", location.pathname);
  show($("qa-detail"), false);
  show($("qa-placeholder"), true);
  markSelected();
}

// For tests and people at the console: what the page holds.
window.qaDebug = {
  get info() {
    return S.info;
  },
  get rows() {
    return S.rows;
  },
  formatPosition,
  kindLabel,
};

boot();
