// supervisor-views.js: drawing the supervisor dashboard (supervisor.html) from its state. Owns
// the queue tiles, the live calls table (parties as chips, the Listen / Whisper / Barge
// buttons), the monitoring panel, the agents table, the monitoring log and the live timers
// (every element with data-since). Text only: server data never goes through innerHTML.
// Knows no socket and no request: the actions it wires are given by supervisor.js.

import { byTestId, formatDuration, formatTime, h, icon, secondsSince, setText, show, titleCase } from "./ui.js";

const $ = byTestId;

export const MODES = ["listen", "whisper", "barge"];
const MODE_TEXT = { listen: "Listen", whisper: "Whisper", barge: "Barge" };
const MODE_HELP = {
  listen: "You hear everyone; nobody hears you.",
  whisper: "You hear everyone; only the agent you whisper to hears you.",
  barge: "You are a full party: everyone hears you.",
};
const CALL_STATE_TEXT = { waiting: "Waiting", ringing: "Ringing", talking: "Talking", conference: "Conference" };
const AGENT_STATE_TEXT = {
  available: "Available",
  away: "Away",
  reserved: "Ringing",
  "on-call": "On a call",
  "wrap-up": "Wrap-up",
  "logged-out": "Logged out",
};
const VIA_TEXT = { page: "on this page", phone: "on your phone", number: "on" };
const ACTION_TEXT = {
  "monitor.listen": "Listened",
  "monitor.whisper": "Whispered",
  "monitor.barge": "Barged in",
  "monitor.leave": "Left",
};

/** A call can be joined while it is connected to someone. */
export function monitorable(call) {
  return call.state === "talking" || call.state === "conference";
}

function callerText(call) {
  const caller = call.caller || {};
  if (caller.withheld) return { name: caller.name || "Withheld number", number: "" };
  return { name: caller.name || caller.number || "Unknown caller", number: caller.name ? caller.number : "" };
}

function timer(iso, testId) {
  return h("span", { class: "sv-timer", "data-testid": testId, dataset: { since: iso } }, formatDuration(secondsSince(iso)));
}

// --- queues ------------------------------------------------------------------------------------

function serviceBand(level) {
  if (level === null || level === undefined) return "none";
  if (level >= 80) return "good";
  if (level >= 60) return "fair";
  return "poor";
}

function figure(label, value, testId, className = "") {
  return h("div", { class: className || null }, h("dt", {}, label), h("dd", { "data-testid": testId }, value));
}

export function renderQueues(S) {
  const root = $("sv-queues");
  const tiles = S.queues.map((q) => {
    const waitingBand = q.waiting === 0 ? "none" : q.longest_wait_seconds >= 60 ? "urgent" : "busy";
    const level = q.service_level;
    return h(
      "article",
      { class: "sv-queue", "data-testid": "sv-queue", dataset: { queue: q.queue, sl: serviceBand(level), waiting: waitingBand } },
      h("span", { class: "sv-queue-name" }, titleCase(q.queue)),
      h(
        "div",
        { class: "sv-queue-sl", title: `Answered within ${q.service_level_seconds} s, of calls answered or abandoned` },
        h("strong", { "data-testid": "sv-queue-sl" }, level === null || level === undefined ? "—" : `${Math.round(level)}%`),
        h("small", {}, `service level (${q.service_level_seconds}s)`),
      ),
      h(
        "dl",
        { class: "sv-queue-figures" },
        figure("Waiting", String(q.waiting), "sv-queue-waiting", "sv-waiting"),
        figure("Longest wait", formatDuration(q.longest_wait_seconds), "sv-queue-longest"),
        figure("Agents free", String(q.agents_available), "sv-queue-available"),
        figure("Answered", String(q.answered), "sv-queue-answered"),
        figure("Abandoned", String(q.abandoned), "sv-queue-abandoned"),
      ),
    );
  });
  root.replaceChildren(...tiles);
  show($("sv-queues-empty"), !S.queues.length);
}

// --- live calls --------------------------------------------------------------------------------

function partyChip(party) {
  const name = party.name || party.label;
  const mode = party.role === "monitor" ? MODE_TEXT[party.mode] || party.mode : party.mode === "muted" ? "muted" : "";
  const title = party.whisper_to ? `${name}, whispering to ${party.whisper_to.split(":").pop()}` : name;
  return h(
    "span",
    { class: "sv-party", "data-testid": "sv-party", dataset: { role: party.role, mode: party.mode, label: party.label }, title },
    name,
    mode ? h("span", { class: "sv-party-mode" }, mode) : null,
  );
}

export function renderCalls(S, actions) {
  const monitoring = S.monitoring;
  const rows = S.calls.map((call) => {
    const who = callerText(call);
    const mine = Boolean(monitoring && monitoring.call_id === call.call_id);
    const can = monitorable(call) && !S.pending && (!monitoring || mine);
    const buttons = MODES.map((mode) =>
      h(
        "button",
        {
          type: "button",
          class: `btn btn-small${mine && monitoring.mode === mode ? " btn-accent" : ""}`,
          "data-testid": `sv-${mode}`,
          "aria-pressed": mine ? String(monitoring.mode === mode) : null,
          disabled: !can,
          title: monitorable(call) ? MODE_HELP[mode] : "Only a call connected to an agent can be joined",
          onclick: () => (mine ? actions.switchMode(mode) : actions.monitor(call.call_id, mode)),
        },
        icon(mode === "listen" ? "ear" : mode === "whisper" ? "whisper" : "barge"),
        MODE_TEXT[mode],
      ),
    );
    const state = call.held ? "held" : call.state;
    return h(
      "tr",
      { "data-testid": "sv-call", dataset: { callId: call.call_id, state: call.state, monitored: String(mine) } },
      h(
        "td",
        { "data-testid": "sv-call-caller" },
        h("span", { class: "sv-caller-name" }, who.name, call.recording ? icon("rec", "sv-rec") : null),
        who.number ? h("span", { class: "sv-caller-number" }, who.number) : null,
      ),
      h("td", { "data-testid": "sv-call-queue" }, titleCase(call.queue)),
      h(
        "td",
        {},
        h("span", { class: "sv-state", "data-testid": "sv-call-state", dataset: { state } }, call.held ? "On hold" : CALL_STATE_TEXT[call.state] || call.state),
        call.reaching ? h("span", { class: "sv-agent-detail" }, `reaching ${call.reaching.split(":").pop()}`) : null,
      ),
      h("td", { "data-testid": "sv-call-agent" }, call.agent_name || call.agent || "—"),
      h("td", { class: "num" }, timer(call.since, "sv-call-duration")),
      h("td", {}, h("div", { class: "sv-parties", "data-testid": "sv-call-parties" }, call.parties.map(partyChip))),
      h("td", {}, h("div", { class: "sv-actions" }, buttons)),
    );
  });
  $("sv-calls").replaceChildren(...rows);
  show($("sv-calls-empty"), !S.calls.length);
  const talking = S.calls.filter(monitorable).length;
  setText($("sv-calls-count"), S.calls.length ? `${S.calls.length} · ${talking} connected` : "");
}

// --- monitoring panel --------------------------------------------------------------------------

export function renderMonitor(S) {
  const m = S.monitoring;
  const panel = $("sv-monitor");
  panel.dataset.mode = m ? m.mode : "";
  show($("sv-monitor-idle"), !m);
  show($("sv-monitor-active"), Boolean(m));
  setText($("sv-monitor-state"), m ? "Live" : "");
  if (!m) return;
  const call = S.calls.find((c) => c.call_id === m.call_id);
  setText($("sv-monitor-caller"), call ? callerText(call).name : m.call_id);
  setText($("sv-monitor-where"), call ? `${titleCase(call.queue)} · ${call.agent_name || call.agent || "no agent"}` : "");
  setText($("sv-monitor-via"), m.via === "number" ? `Called on ${m.number}` : `Joined ${VIA_TEXT[m.via]}`);
  const clock = $("sv-monitor-timer");
  clock.dataset.since = m.since;
  setText(clock, formatDuration(secondsSince(m.since)));
  for (const button of document.querySelectorAll(".sv-mode")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === m.mode));
    button.disabled = S.pending;
  }
  $("sv-leave").disabled = S.pending;
  // Whisper to: the owner (the default) or another agent on the call.
  const select = $("sv-whisper-to");
  const agents = call ? call.parties.filter((p) => p.role !== "monitor" && p.label.startsWith("agent:")) : [];
  const options = agents.map((p) => {
    const name = p.label.slice("agent:".length);
    return h("option", { value: p.role === "owner" ? "" : name }, `${p.name || name}${p.role === "owner" ? " (owner)" : ""}`);
  });
  if (!options.length) options.push(h("option", { value: "" }, "The call's owner"));
  const wanted = m.whisper_to || "";
  select.replaceChildren(...options);
  select.value = wanted;
  select.disabled = S.pending || options.length < 2;
  show(select.closest(".field"), m.mode === "whisper");
  setText($("sv-mode-help"), MODE_HELP[m.mode] || "");
}

export function renderMeter(level) {
  const fill = $("sv-rx-meter");
  if (fill) fill.style.width = `${Math.min(100, Math.round(level * 300))}%`;
}

// --- agents ------------------------------------------------------------------------------------

export function renderAgents(S) {
  const rows = S.agents.map((agent) =>
    h(
      "tr",
      { "data-testid": "sv-agent", dataset: { agent: agent.username, state: agent.state } },
      h(
        "td",
        {},
        h("span", { class: "sv-agent-name" }, agent.display_name || agent.username),
        h("span", { class: "sv-agent-detail" }, agent.queues.map(titleCase).join(", ")),
      ),
      h(
        "td",
        {},
        h("span", { class: "sv-state", "data-testid": "sv-agent-state", dataset: { state: agent.state } }, AGENT_STATE_TEXT[agent.state] || agent.state),
        agent.reason ? h("span", { class: "sv-agent-detail" }, agent.reason) : null,
      ),
      h("td", { class: "num" }, timer(agent.since, "sv-agent-duration")),
    ),
  );
  $("sv-agents").replaceChildren(...rows);
  show($("sv-agents-empty"), !S.agents.length);
  const free = S.agents.filter((a) => a.state === "available").length;
  const busy = S.agents.filter((a) => a.state === "on-call" || a.state === "reserved").length;
  setText($("sv-agents-summary"), S.agents.length ? `${free} free · ${busy} busy` : "");
}

// --- the monitoring log ------------------------------------------------------------------------

function describe(detail) {
  const parts = [];
  if (detail.via) parts.push(detail.via === "number" && detail.number ? `via ${detail.number}` : `via ${detail.via}`);
  if (detail.from) parts.push(`from ${detail.from}`);
  if (detail.whisper_to) parts.push(`to ${detail.whisper_to}`);
  if (detail.why) parts.push(String(detail.why).replace(/-/g, " "));
  return parts.join(", ");
}

/** What a log entry's subject was: the caller as the dashboard knew them, else the call id. */
function subjectText(S, subject) {
  const callId = subject.replace(/^call:/, "");
  const known = S.callers.get(callId);
  return known || (callId.length > 18 ? `call ${callId.slice(0, 16)}…` : `call ${callId}`);
}

export function renderAudit(S) {
  for (const call of S.calls) S.callers.set(call.call_id, callerText(call).name);
  const items = S.audit.map((entry) =>
    h(
      "li",
      { "data-testid": "sv-audit-entry", dataset: { action: entry.action, subject: entry.subject } },
      h("time", { datetime: entry.at }, formatTime(entry.at)),
      h("span", { class: "sv-audit-what" }, `${ACTION_TEXT[entry.action] || entry.action} · ${subjectText(S, entry.subject)}`),
      h("span", { class: "sv-audit-detail", title: entry.subject }, describe(entry.detail || {})),
    ),
  );
  $("sv-audit").replaceChildren(...items);
  show($("sv-audit-empty"), !S.audit.length);
}

/** Every live timer on the page, once (called twice a second). */
export function renderTimers() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-since]")) {
    setText(el, formatDuration(secondsSince(el.dataset.since, now)));
  }
}

export function renderStatus(S) {
  const pill = $("sv-status");
  const monitoring = S.monitoring;
  let status = "connecting";
  let text = "Connecting…";
  if (S.socket === "open") {
    status = "connected";
    text = monitoring ? `Monitoring: ${MODE_TEXT[monitoring.mode]}` : "Live";
  } else if (S.socket === "reconnecting") {
    status = "reconnecting";
    text = "Reconnecting…";
  } else if (S.socket === "taken-over") {
    status = "taken-over";
    text = "Open in another tab";
  } else if (S.socket === "closed") {
    status = "offline";
    text = "Offline";
  }
  pill.dataset.status = status;
  setText(pill.querySelector(".pill-text"), text);
}
