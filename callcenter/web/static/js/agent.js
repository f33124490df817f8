// agent.js: the agent desk's entry point. Owns boot (session check, audio engine, socket),
// the actions behind every control (REST calls per docs/agent-api.md; the page then waits
// for the event that tells what really happened, it never shows a click as a fact), the
// lists loaded over REST (history, queues, transfer targets), adding parties to the call and
// the owner's mute/remove of each, keyboard wiring and render scheduling. The state and the events' effects are state.js; drawing views.js; the screen
// pop customer.js; audio audio.js.

import * as api from "./api.js";
import { AudioEngine, socketSender } from "./audio.js";
import { AgentSocket } from "./socket.js";
import {
  DEGRADED_HOLD_MS,
  LIVE_CALL_STATES,
  S,
  applyAgentView,
  applyEvent,
  bindState,
  customerMatched,
  stopRinging,
  updateCapture,
} from "./state.js";
import { byTestId, notify, notifyError, withBusy } from "./ui.js";
import { addKind, isOwner, renderAll, renderAudio, renderMeter, renderStatus, renderTimers, renderTransferTargets, targetText } from "./views.js";

const $ = byTestId;

let engine = null;
let socket = null;
let renderQueued = false;

function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderAll(S, engine, customerActions);
    if (S.focus) {
      // Move the keyboard to the next thing to do, unless the agent is typing somewhere.
      const target = $(S.focus);
      S.focus = null;
      if (target && !target.closest("[hidden]") && !isTypingText(document.activeElement)) target.focus({ preventScroll: true });
    }
  });
}

function isTypingText(el) {
  if (!(el instanceof Element)) return false;
  if (el.closest("textarea, [contenteditable]")) return true;
  return el.tagName === "INPUT" && !["button", "checkbox", "radio", "submit", "reset"].includes(el.type);
}

function goLogin() {
  location.assign(api.LOGIN_PAGE);
}

// --- loading lists ---------------------------------------------------------------------------

async function loadHistory() {
  try {
    const history = await api.get("/api/calls/history?limit=20");
    S.history = Array.isArray(history) ? history : [];
    render();
  } catch (error) {
    if (error.status !== 401) console.warn("history:", error.detail || error);
  }
}

async function loadQueues() {
  try {
    const queues = await api.get("/api/queues");
    if (Array.isArray(queues)) S.queues = queues;
    render();
  } catch (error) {
    if (error.status !== 401) console.warn("queues:", error.detail || error);
  }
}

async function loadTransferTargets() {
  try {
    const targets = await api.get("/api/transfer-targets");
    S.transferTargets = { agents: targets.agents || [], queues: targets.queues || [] };
    renderTransferTargets(S);
  } catch (error) {
    if (error.status !== 401) notifyError(error, "Transfer targets");
  }
}

/** The call as the server has it now (after this agent inherited a conference: hold, mute
 * and the recording as its owner sees them). Where the call is (`on`) stays the page's. */
async function refreshCall() {
  try {
    const view = await api.get("/api/agent");
    const call = applyAgentView(view);
    if (call && S.call && call.call_id === S.call.call_id && LIVE_CALL_STATES.has(call.state)) {
      S.call = { ...S.call, ...call, on: S.call.on || call.on };
    }
    render();
  } catch (error) {
    if (error.status !== 401) console.warn("agent view:", error.detail || error);
  }
}

// --- actions -------------------------------------------------------------------------------

/** POST/PUT for the current call (or offer): marks `key` pending so the button shows busy. */
async function callAction(key, button, method, action, body, errorPrefix) {
  const callId = key === "answer" || key === "reject" ? S.offer && S.offer.call.call_id : S.call && S.call.call_id;
  if (!callId || S.pending[key]) return false;
  S.pending[key] = true;
  render();
  try {
    const done = await withBusy(button, () => api.request(method, api.callPath(callId, action), body).then(() => true), errorPrefix);
    return Boolean(done);
  } finally {
    S.pending[key] = false;
    render();
  }
}

function answer() {
  engine.resume(); // the click is the gesture the browser wants before sound
  return callAction("answer", $("answer"), "POST", "answer", undefined, "Could not answer");
}

function reject() {
  engine.resume();
  return callAction("reject", $("reject"), "POST", "reject", undefined, "Could not reject");
}

function hangup() {
  const leaving = S.call && !isOwner(S.call);
  return callAction("hangup", $("hangup"), "POST", "hangup", undefined, leaving ? "Could not leave the call" : "Could not hang up");
}

function toggleHold() {
  if (!S.call) return;
  return callAction("hold", $("hold"), "PUT", "hold", { on: !S.call.held }, S.call.held ? "Could not resume" : "Could not hold");
}

function toggleMute() {
  if (!S.call) return;
  return callAction("mute", $("mute"), "PUT", "mute", { on: !S.call.muted }, S.call.muted ? "Could not unmute" : "Could not mute");
}

function toggleRecording() {
  if (!S.call || S.call.recording_paused === null || S.call.recording_paused === undefined) return;
  const paused = Boolean(S.call.recording_paused);
  return callAction("recording", $("recording-toggle"), "PUT", "recording", { paused: !paused }, paused ? "Could not resume the recording" : "Could not pause the recording");
}

// DTMF: digits are sent in order, coalesced while a request is in flight.
const dtmf = { queue: "", busy: false };

function pressDigit(digit) {
  if (!S.call || !/^[0-9*#]$/.test(digit)) return;
  engine.resume();
  engine.dtmf(digit);
  S.dtmfSent = (S.dtmfSent + digit).slice(-40);
  const key = document.querySelector(`.key[data-digit="${CSS.escape(digit)}"]`);
  if (key) {
    key.classList.add("pressed");
    setTimeout(() => key.classList.remove("pressed"), 140);
  }
  dtmf.queue += digit;
  render();
  flushDtmf();
}

async function flushDtmf() {
  if (dtmf.busy || !dtmf.queue || !S.call) return;
  const callId = S.call.call_id;
  const digits = dtmf.queue.slice(0, 32);
  dtmf.queue = dtmf.queue.slice(digits.length);
  dtmf.busy = true;
  try {
    await api.post(api.callPath(callId, "dtmf"), { digits });
  } catch (error) {
    dtmf.queue = "";
    notifyError(error, "Tones not sent");
  } finally {
    dtmf.busy = false;
    flushDtmf();
  }
}

function readTransferTarget() {
  const number = $("transfer-number").value.trim();
  if (number) return { kind: "number", value: number };
  const chosen = $("transfer-target").value;
  if (!chosen) return null;
  const colon = chosen.indexOf(":");
  return { kind: chosen.slice(0, colon), value: chosen.slice(colon + 1) };
}

function transfer(kind) {
  const target = readTransferTarget();
  if (!target) {
    notify("Choose an agent or a queue, or type a number, first.", { kind: "error" });
    $("transfer-target").focus();
    return;
  }
  if (kind === "blind") {
    return callAction("transfer", $("transfer-blind"), "POST", "transfer", { target }, "Transfer failed").then((sent) => {
      if (sent && S.call) notify(`Transferring to ${targetText(target, S.transferTargets)}…`);
    });
  }
  return callAction("consult", $("consult"), "POST", "consult", { target }, "Could not start the consultation");
}

function consultComplete() {
  return callAction("consultComplete", $("consult-complete"), "POST", "consult/complete", undefined, "Could not complete the transfer");
}

function consultCancel() {
  if (S.adding) S.adding.cancelled = true; // its request's 409 is then no news
  return callAction("consultCancel", $("consult-cancel"), "POST", "consult/cancel", undefined, "Could not cancel the consultation");
}

function consultJoin() {
  return callAction("consultJoin", $("consult-join"), "POST", "consult/join", undefined, "Could not join them in");
}

// --- adding parties ----------------------------------------------------------------------------

const ADD_FIELDS = { agent: "add-agent", queue: "add-queue", phone: "add-phone", number: "add-number" };
const ADD_PROMPTS = {
  agent: "Choose an agent to add first.",
  queue: "Choose a queue first.",
  phone: "Type the user name of the registered phone first.",
  number: "Type the number to dial first.",
};

function readAddTarget() {
  const kind = addKind();
  const field = $(ADD_FIELDS[kind]);
  let value = field.value.trim();
  if (kind === "number") value = value.replace(/[\s().-]/g, ""); // "+44 20 7946-0000" dials as digits
  return value ? { kind, value } : null;
}

/** Ring someone for the call (the caller hears music): `join` brings them straight in when
 * they answer, else the agent talks with them first. The request lasts until they answer. */
async function addParty(join) {
  if (!S.call || S.adding || !isOwner(S.call)) return;
  const target = readAddTarget();
  const kind = addKind();
  if (!target) {
    notify(ADD_PROMPTS[kind], { kind: "error" });
    $(ADD_FIELDS[kind]).focus();
    return;
  }
  const callId = S.call.call_id;
  const button = $(join ? "add-join" : "add-consult");
  const adding = { target, join, cancelled: false };
  S.adding = adding;
  button.setAttribute("aria-busy", "true");
  render();
  try {
    await api.post(api.callPath(callId, "parties"), { target, join });
    if (kind === "phone" || kind === "number") $(ADD_FIELDS[kind]).value = "";
  } catch (error) {
    if (!(adding.cancelled && error.status === 409)) notifyError(error, `Could not add ${targetText(target, S.transferTargets)}`);
  } finally {
    button.removeAttribute("aria-busy");
    if (S.adding === adding) S.adding = null;
    render();
  }
}

/** The owner mutes, unmutes or removes a party (the list redraws from `call.parties`). */
async function partyAction(party, action) {
  if (!S.call) return;
  const key = `party-${party.id}`;
  if (S.pending[key]) return;
  const callId = S.call.call_id;
  const who = party.name || targetText(party.label, S.transferTargets);
  S.pending[key] = true;
  render();
  try {
    if (action === "remove") {
      await api.del(api.callPath(callId, `parties/${party.id}`));
    } else {
      const on = party.mode !== "muted";
      await api.put(api.callPath(callId, `parties/${party.id}/mute`), { on });
    }
  } catch (error) {
    notifyError(error, action === "remove" ? `Could not remove ${who}` : `Could not ${party.mode === "muted" ? "unmute" : "mute"} ${who}`);
  } finally {
    S.pending[key] = false;
    render();
  }
}

function onPartyClick(event) {
  const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
  const row = button && button.closest("[data-party-id]");
  if (!row || !S.call) return;
  const party = (S.call.parties || []).find((p) => String(p.id) === row.dataset.partyId);
  if (party) partyAction(party, button.dataset.action);
}

async function saveWrapup(event) {
  event.preventDefault();
  const w = S.wrapup;
  if (!w || S.pending.wrapup) return;
  const error = $("wrapup-error");
  error.textContent = "";
  const disposition = $("wrapup-disposition").value;
  const notes = $("wrapup-notes").value.trim();
  if (!disposition && (S.agent.dispositions || []).length) {
    error.textContent = "Choose a disposition.";
    $("wrapup-disposition").focus();
    return;
  }
  const body = { disposition, notes };
  if (w.customerId != null) body.customer_id = w.customerId;
  S.pending.wrapup = true;
  render();
  try {
    await api.post(api.callPath(w.callId, "wrap-up"), body);
    if (S.wrapup === w) S.wrapup = null;
    $("wrapup-notes").value = "";
    $("wrapup-disposition").value = "";
    notify("Wrap-up saved.", { kind: "success" });
    loadHistory();
  } catch (err) {
    error.textContent = err.detail || String(err);
  } finally {
    S.pending.wrapup = false;
    render();
  }
}

function dismissWrapup() {
  S.wrapup = null;
  $("wrapup-notes").value = "";
  $("wrapup-disposition").value = "";
  $("wrapup-error").textContent = "";
  render();
}

async function changeState(state, reason) {
  if (S.statePending) return;
  S.statePending = true;
  render();
  try {
    const body = { state };
    if (state === "away" && reason) body.reason = reason;
    const view = await api.put("/api/agent/state", body);
    applyAgentView(view);
    S.reasonDirty = false;
  } catch (error) {
    notifyError(error, "Status not changed");
  } finally {
    S.statePending = false;
    // Whatever the outcome, the selector goes back to the server's word.
    if (S.agent && S.agent.state) $("state-select").value = S.agent.state;
    render();
  }
}

function onStateSelect() {
  const select = $("state-select");
  const state = select.value;
  if (!S.agent || state === S.agent.state || S.statePending) return;
  const reason = $("away-reason").value.trim();
  changeState(state, state === "away" ? reason : null);
}

function onReasonCommit() {
  const reason = $("away-reason").value.trim();
  S.reasonDirty = true;
  if (S.agent && S.agent.state === "away" && reason !== (S.agent.reason || "")) changeState("away", reason);
}

const customerActions = {
  async choose(customerId, button) {
    const ctx = currentCustomerCallId();
    if (!ctx) return false;
    const card = await withBusy(button, () => api.post(api.callPath(ctx, "customer"), { customer_id: customerId }), "Could not link the customer");
    if (!card) return false;
    customerMatched(ctx, card);
    render();
    return true;
  },
  async create(fields, button, errorEl) {
    const callId = currentCustomerCallId();
    const body = { ...fields };
    for (const key of ["company", "tier", "email"]) if (body[key] == null) delete body[key];
    if (callId) body.call_id = callId;
    button.disabled = true;
    try {
      const card = await api.post("/api/customers", body);
      if (callId) customerMatched(callId, card);
      notify(`${card.name || "Customer"} added.`, { kind: "success" });
      render();
      return true;
    } catch (error) {
      errorEl.textContent = error.detail || String(error);
      return false;
    } finally {
      button.disabled = false;
    }
  },
};

function currentCustomerCallId() {
  if (S.call) return S.call.call_id;
  if (S.offer && !S.offer.withdrawn) return S.offer.call.call_id;
  if (S.wrapup) return S.wrapup.callId;
  return null;
}

const TABS = ["keypad", "transfer", "add"];
const TAB_PANELS = { keypad: "keypad", transfer: "transfer-panel", add: "add-panel" };

function selectTab(which) {
  for (const name of TABS) {
    const selected = name === which;
    const tab = $(`tab-${name}`);
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(TAB_PANELS[name]).hidden = !selected;
  }
  if (which !== "keypad") loadTransferTargets();
  render();
}

function isTyping(target) {
  return target instanceof Element && Boolean(target.closest("input, textarea, select, [contenteditable]"));
}

// --- wiring ----------------------------------------------------------------------------------

function wire() {
  $("answer").addEventListener("click", answer);
  $("reject").addEventListener("click", reject);
  $("hangup").addEventListener("click", hangup);
  $("hold").addEventListener("click", toggleHold);
  $("mute").addEventListener("click", toggleMute);
  $("recording-toggle").addEventListener("click", toggleRecording);
  for (const key of document.querySelectorAll(".key[data-digit]")) {
    key.addEventListener("click", () => pressDigit(key.dataset.digit));
  }
  TABS.forEach((name, index) => {
    const tab = $(`tab-${name}`);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: TABS.length - 1 };
      if (!(event.key in moves)) return;
      const next = TABS[(moves[event.key] + TABS.length) % TABS.length];
      selectTab(next);
      $(`tab-${next}`).focus();
      event.preventDefault();
    });
  });
  $("transfer-target").addEventListener("change", () => {
    if ($("transfer-target").value) $("transfer-number").value = "";
  });
  $("transfer-number").addEventListener("input", () => {
    if ($("transfer-number").value.trim()) $("transfer-target").value = "";
  });
  $("transfer-number").addEventListener("keydown", (event) => {
    if (event.key === "Enter") transfer("blind");
  });
  $("transfer-refresh").addEventListener("click", loadTransferTargets);
  $("transfer-blind").addEventListener("click", () => transfer("blind"));
  $("consult").addEventListener("click", () => transfer("consult"));
  $("consult-complete").addEventListener("click", consultComplete);
  $("consult-cancel").addEventListener("click", consultCancel);
  $("consult-join").addEventListener("click", consultJoin);
  for (const radio of document.querySelectorAll('input[name="add-kind"]')) {
    radio.addEventListener("change", () => {
      render();
      queueMicrotask(() => $(ADD_FIELDS[addKind()]).focus({ preventScroll: true }));
    });
  }
  for (const id of ["add-phone", "add-number"]) {
    $(id).addEventListener("keydown", (event) => {
      if (event.key === "Enter") addParty(true);
    });
  }
  $("add-refresh").addEventListener("click", loadTransferTargets);
  $("add-join").addEventListener("click", () => addParty(true));
  $("add-consult").addEventListener("click", () => addParty(false));
  $("party-list").addEventListener("click", onPartyClick);
  $("wrapup-form").addEventListener("submit", saveWrapup);
  $("wrapup-dismiss").addEventListener("click", dismissWrapup);
  $("state-select").addEventListener("change", onStateSelect);
  $("away-reason").addEventListener("change", onReasonCommit);
  $("away-reason").addEventListener("input", () => {
    S.reasonDirty = true;
  });
  $("away-reason").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      onReasonCommit();
    }
  });
  $("history-refresh").addEventListener("click", loadHistory);
  $("speaker-test").addEventListener("click", () => {
    if (!engine.speakerTest()) notify("Audio is not running in this browser.", { kind: "error" });
  });
  $("audio-enable").addEventListener("click", () => engine.resume());
  $("reconnect").addEventListener("click", () => socket.connectNow());
  $("logout").addEventListener("click", async () => {
    try {
      await api.logout();
    } catch {
      // gone either way
    }
    socket.stop();
    goLogin();
  });
  // Browsers keep audio suspended until the page gets a gesture: any click or key will do.
  const resume = () => engine.resume();
  document.addEventListener("pointerdown", resume, true);
  document.addEventListener("keydown", resume, true);
  // The keypad from the keyboard, while a call is up and nothing else wants the keys.
  document.addEventListener("keydown", (event) => {
    if (!S.call || !isOwner(S.call) || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (/^[0-9*#]$/.test(event.key)) {
      pressDigit(event.key);
      event.preventDefault();
    }
  });
  document.addEventListener("softphone:redraw", render);
  setInterval(() => {
    renderTimers(S);
    renderStatus(S, engine);
  }, 500);
}

function onAudioChange(what) {
  if (what === "level") {
    renderMeter(engine);
    return;
  }
  if (what === "stats" && engine.stats.underruns > S.lastUnderruns) {
    S.lastUnderruns = engine.stats.underruns;
    if (S.call && S.call.on === "page") S.localUnderrunUntil = Date.now() + DEGRADED_HOLD_MS;
  }
  renderAudio(S, engine);
  renderStatus(S, engine);
}

const AUTH_CLOSE_CODES = new Set([1008, 4401, 4403]);

function onSocketStatus(status, info = {}) {
  S.socket = status;
  if (status === "reconnecting" && ((info.failures && info.failures % 3 === 0) || AUTH_CLOSE_CODES.has(info.code))) {
    // A socket that keeps failing may mean the session is gone (the handshake cannot say 401).
    api.me().catch((error) => {
      if (error.status === 401) goLogin();
    });
  }
  if (status === "taken-over") {
    // The other tab rings and talks now; this one must not keep ringing on stale news.
    stopRinging();
    S.offer = null;
  }
  updateCapture();
  render();
}

async function boot() {
  api.setUnauthorizedHandler(goLogin);
  // Made before anything is awaited, so window.softphoneStats / softphoneDebug exist as soon
  // as the page has loaded (tests read them right after a reload); it starts nothing yet.
  engine = new AudioEngine({ send: socketSender(() => socket && socket.socket), onChange: onAudioChange });
  let session;
  for (;;) {
    try {
      session = await api.me();
      break;
    } catch (error) {
      if (error.status === 401) return goLogin();
      $("idle-title").textContent = "Cannot reach the server";
      $("idle-text").textContent = `${error.detail || error}. Trying again…`;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  S.user = session.user;
  if (!S.user || S.user.role !== "agent") {
    $("idle-title").textContent = "This desk is for agents";
    $("idle-text").textContent = `You are signed in as ${S.user ? S.user.display_name || S.user.username : "someone"} (${S.user ? S.user.role : "no role"}).`;
    $("status-pill").querySelector(".pill-text").textContent = "Not an agent";
    $("logout").addEventListener("click", async () => {
      await api.logout().catch(() => {});
      goLogin();
    });
    return;
  }
  bindState({ engine, render, loadHistory, loadQueues, loadTransferTargets, refreshCall });
  socket = new AgentSocket({
    onEvent: applyEvent,
    onBinary: (buffer) => engine.receive(buffer),
    onStatus: onSocketStatus,
  });
  wire();
  render();
  socket.start();
  engine.start().then(render);
  loadHistory();
  loadQueues();
}

boot();
