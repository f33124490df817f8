// supervisor.js: the supervisor dashboard's entry point (supervisor.html, served at
// /supervisor). Owns boot (the session: a 401 goes to the sign-in page, an agent to the desk,
// a qa reviewer to /qa), the state (the picture the socket pushes: calls, agents, queues, and
// this supervisor's monitoring), the actions (monitor, switch mode, leave: REST per
// docs/supervisor-api.md; the page then shows what the server says, never a click as a fact),
// the monitoring log (GET /api/audit) and the page's audio: while monitoring from this page
// the call's audio plays through audio.js and, in whisper or barge, the microphone is sent.
// Drawing is supervisor-views.js.

import * as api from "./api.js";
import { AudioEngine, socketSender } from "./audio.js";
import { AgentSocket } from "./socket.js";
import {
  renderAgents,
  renderAudit,
  renderCalls,
  renderMeter,
  renderMonitor,
  renderQueues,
  renderStatus,
  renderTimers,
} from "./supervisor-views.js";
import { byTestId, initials, notify, notifyError, setText, titleCase } from "./ui.js";

const $ = byTestId;
const OVERSEERS = ["supervisor", "admin"];
const ENDED_TEXT = {
  "call-ended": "The call ended.",
  "hung-up": "Your phone hung up: monitoring ended.",
  "page-closed": "The page was away too long: monitoring ended.",
};

const S = {
  me: null,
  calls: [],
  agents: [],
  queues: [],
  monitoring: null, // the server's Monitoring, or null
  socket: "connecting",
  pending: false, // a monitor/switch/leave request in flight
  audit: [],
  callers: new Map(), // call id -> the caller's name as last shown (for the log)
};

let engine = null;
let socket = null;

// --- drawing ------------------------------------------------------------------------------------

function renderAll() {
  renderQueues(S);
  renderCalls(S, actions);
  renderAgents(S);
  renderMonitor(S);
  renderStatus(S);
}

/** Audio from this page only while monitoring from it; the microphone only when heard. */
function updateAudio() {
  const m = S.monitoring;
  const onPage = Boolean(m && m.via === "page");
  engine.setCapture(onPage && m.mode !== "listen" && S.socket === "open");
}

function setMonitoring(monitoring) {
  const before = S.monitoring;
  const wasOnPage = Boolean(before && before.via === "page");
  const onPage = Boolean(monitoring && monitoring.via === "page");
  S.monitoring = monitoring;
  if (onPage && (!wasOnPage || before.party_id !== monitoring.party_id || before.call_id !== monitoring.call_id)) {
    engine.callStarted();
  } else if (wasOnPage && !onPage) {
    engine.callEnded();
  }
  updateAudio();
}

// --- events from the socket --------------------------------------------------------------------

function applyEvent(event) {
  switch (event.type) {
    case "supervisor.hello": {
      const live = event.live;
      S.calls = live.calls;
      S.agents = live.agents;
      S.queues = live.queues;
      setMonitoring(live.monitoring);
      renderAll();
      loadAudit();
      break;
    }
    case "supervisor.calls":
      S.calls = event.calls;
      for (const call of S.calls) S.callers.set(call.call_id, call.caller.name || call.caller.number || "a caller");
      if (S.callers.size > 500) S.callers.delete(S.callers.keys().next().value);
      renderCalls(S, actions);
      renderMonitor(S);
      break;
    case "supervisor.agents":
      S.agents = event.agents;
      renderAgents(S);
      break;
    case "queue.stats":
      S.queues = event.queues;
      renderQueues(S);
      break;
    case "monitor.changed":
      setMonitoring(event.monitoring);
      if (!event.monitoring && ENDED_TEXT[event.change]) notify(ENDED_TEXT[event.change]);
      renderCalls(S, actions);
      renderMonitor(S);
      renderStatus(S);
      loadAudit();
      break;
    default:
      break;
  }
}

// --- actions ------------------------------------------------------------------------------------

async function act(request, errorPrefix) {
  if (S.pending) return undefined;
  S.pending = true;
  renderCalls(S, actions);
  renderMonitor(S);
  try {
    return await request();
  } catch (error) {
    notifyError(error, errorPrefix);
    return undefined;
  } finally {
    S.pending = false;
    renderCalls(S, actions);
    renderMonitor(S);
    renderStatus(S);
    loadAudit();
  }
}

function chosenVia() {
  const checked = document.querySelector('input[name="via"]:checked');
  return checked ? checked.value : "page";
}

const actions = {
  monitor(callId, mode) {
    engine.resume(); // the click is the gesture the browser wants before sound
    const via = chosenVia();
    const body = { call_id: callId, mode, via };
    if (via === "number") {
      const number = $("sv-number").value.trim();
      if (!number) {
        notify("Type the number to call you on first.", { kind: "error" });
        $("sv-number").focus();
        return undefined;
      }
      body.number = number;
    }
    if (via !== "page") notify(via === "phone" ? "Calling your phone…" : `Calling ${body.number}…`);
    return act(async () => {
      const monitoring = await api.post("/api/supervisor/monitor", body);
      setMonitoring(monitoring);
      return monitoring;
    }, "Could not join the call");
  },

  switchMode(mode) {
    const m = S.monitoring;
    if (!m || mode === m.mode) return undefined;
    engine.resume();
    const body = { mode };
    const whisperTo = $("sv-whisper-to").value;
    if (mode === "whisper" && whisperTo) body.whisper_to = whisperTo;
    return act(async () => {
      const monitoring = await api.put("/api/supervisor/monitor", body);
      setMonitoring(monitoring);
      return monitoring;
    }, `Could not ${mode}`);
  },

  whisperTo(name) {
    const m = S.monitoring;
    if (!m || m.mode !== "whisper" || (m.whisper_to || "") === name) return undefined;
    const body = { mode: "whisper" };
    if (name) body.whisper_to = name;
    return act(async () => {
      const monitoring = await api.put("/api/supervisor/monitor", body);
      setMonitoring(monitoring);
      return monitoring;
    }, "Could not whisper to them");
  },

  leave() {
    if (!S.monitoring) return undefined;
    return act(async () => {
      await api.del("/api/supervisor/monitor");
      setMonitoring(null);
      return true;
    }, "Could not leave the call");
  },
};

// --- the monitoring log ----------------------------------------------------------------------

let auditTimer = null;

function loadAudit() {
  // Coalesced: several changes in a row make one request.
  clearTimeout(auditTimer);
  auditTimer = setTimeout(fetchAudit, 150);
}

async function fetchAudit() {
  if (!S.me) return;
  try {
    const entries = await api.get(`/api/audit?actor=${encodeURIComponent(S.me.username)}&limit=50`);
    S.audit = (Array.isArray(entries) ? entries : []).filter((e) => e.action.startsWith("monitor.")).slice(0, 20);
    renderAudit(S);
  } catch (error) {
    if (error.status !== 401) console.warn("audit:", error.detail || error);
  }
}

// --- boot ---------------------------------------------------------------------------------------

function wire() {
  for (const button of document.querySelectorAll(".sv-mode")) {
    button.addEventListener("click", () => actions.switchMode(button.dataset.mode));
  }
  $("sv-whisper-to").addEventListener("change", () => actions.whisperTo($("sv-whisper-to").value));
  $("sv-leave").addEventListener("click", () => actions.leave());
  $("sv-number").addEventListener("focus", () => {
    $("sv-via-number").checked = true;
  });
  $("sv-audit-refresh").addEventListener("click", fetchAudit);
  // Taken over by another tab: a click on the status takes the dashboard back here.
  $("sv-status").addEventListener("click", () => {
    if (S.socket === "taken-over") socket.connectNow();
  });
  $("logout").addEventListener("click", async () => {
    await api.logout().catch(() => {});
    if (socket) socket.stop();
    location.assign(api.LOGIN_PAGE);
  });
  // Browsers keep audio suspended until the page gets a gesture: any click or key will do.
  const resume = () => engine.resume();
  document.addEventListener("pointerdown", resume, true);
  document.addEventListener("keydown", resume, true);
  setInterval(renderTimers, 500);
  setInterval(() => {
    const m = S.monitoring;
    if (!m || m.via !== "page") return renderMeter(0);
    const samples = engine.rx.last(1600);
    let sum = 0;
    for (const v of samples) sum += v * v;
    renderMeter(samples.length ? Math.sqrt(sum / samples.length) / 32768 : 0);
  }, 200);
}

function onSocketStatus(status, info = {}) {
  S.socket = status;
  if (status === "reconnecting" && info.failures && info.failures % 3 === 0) {
    // A socket that keeps failing may mean the session is gone (the handshake cannot say 401).
    api.me().catch((error) => {
      if (error.status === 401) location.assign(api.LOGIN_PAGE);
    });
  }
  updateAudio();
  renderStatus(S);
}

async function boot() {
  api.setUnauthorizedHandler(() => location.assign(api.LOGIN_PAGE));
  // Made before anything is awaited, so window.softphoneDebug exists as soon as the page has
  // loaded (tests read the received audio from it); it starts nothing yet.
  engine = new AudioEngine({ send: socketSender(() => socket && socket.socket) });
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
  if (!OVERSEERS.includes(user.role)) {
    location.replace(user.role === "agent" ? api.AGENT_PAGE : "/qa");
    return;
  }
  S.me = user;
  const name = user.display_name || user.username;
  setText($("sv-user"), name);
  setText($("sv-user-initials"), initials(name));
  setText($("sv-user-role"), titleCase(user.role));
  window.supervisorDebug = { state: S };
  wire();
  renderAll();
  socket = new AgentSocket({
    path: "/api/supervisor/ws",
    onEvent: applyEvent,
    onBinary: (buffer) => engine.receive(buffer),
    onStatus: onSocketStatus,
  });
  socket.start();
  engine.start();
}

boot();
