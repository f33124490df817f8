// state.js: the agent page's one state object `S` and how the server's WebSocket events
// change it (docs/agent-api.md: hello first with the whole picture, then agent.state,
// call.*, customer.matched, queue.stats, audio.status). Owns the rules the page follows:
// the ring starts on an offer and stops on answer, withdrawal or end; the microphone's
// frames go on the socket only while a call is connected on this page; a call that ends
// opens its wrap-up; a conference's parties, who is being reached and who owns the call are
// the last `call.parties` (an agent that inherits the call gets the owner's controls). Side
// effects go through the hooks agent.js binds (audio engine, render, list loading); the DOM
// is views.js's.

import { notify } from "./ui.js";
import { ownerName, targetText } from "./views.js";

export const LIVE_CALL_STATES = new Set(["talking", "held", "consulting"]);
export const DEGRADED_HOLD_MS = 5000;
const WITHDRAWN_SHOWN_MS = 2500;

let hooks = {
  engine: null,
  render: () => {},
  loadHistory: () => {},
  loadQueues: () => {},
  loadTransferTargets: () => {},
  refreshCall: () => {},
};

/** agent.js gives the state its side effects once, at boot. */
export function bindState(given) {
  hooks = { ...hooks, ...given };
}

/** Everything the page knows; only the server's answers and events change the call parts. */
export const S = {
  user: null, // {username, role, display_name} from /api/auth/me
  agent: null, // AgentView (without `call`, kept below): state, reason, queues, away_reasons, dispositions
  offer: null, // {call: CallView, deadline, total, withdrawn: reason|null}
  call: null, // CallView of the call connected to this agent (talking / held / consulting),
  //              with its `owner`, `parties` and `reaching` kept up to date by call.parties
  callStartedAt: 0,
  consult: null, // {state: "ringing"|"talking"|"unknown", target: label} while someone is reached
  adding: null, // {target, join, cancelled} while this page's "add to call" request waits
  wrapup: null, // {callId, caller, queue, customers, customerId, deadline|null, talkSeconds}
  queues: [],
  history: [],
  transferTargets: { agents: [], queues: [] },
  socket: "connecting",
  audioStatus: null,
  serverLossUntil: 0,
  localUnderrunUntil: 0,
  lastUnderruns: 0,
  dtmfSent: "",
  hellos: 0,
  focus: null, // data-testid to focus after the next render
  statePending: false,
  reasonDirty: false,
  pending: {},
};

// --- the socket's events ------------------------------------------------------------------

export function applyEvent(event) {
  switch (event.type) {
    case "hello":
      applyHello(event);
      break;
    case "agent.state":
      applyAgentState(event.state, event.reason, event.call_id);
      break;
    case "call.offered":
      offered(event.call, event.ring_timeout_seconds);
      break;
    case "call.offer_withdrawn":
      withdrawn(event.call_id, event.reason);
      break;
    case "call.answered":
      answered(event.call);
      break;
    case "call.held":
      if (S.call && S.call.call_id === event.call_id) {
        S.call.held = Boolean(event.held);
        if (S.call.state !== "consulting") S.call.state = S.call.held ? "held" : "talking";
      }
      break;
    case "call.muted":
      if (S.call && S.call.call_id === event.call_id) S.call.muted = Boolean(event.muted);
      break;
    case "call.recording":
      if (S.call && S.call.call_id === event.call_id) S.call.recording_paused = Boolean(event.paused);
      break;
    case "call.consult":
      consultChanged(event);
      break;
    case "call.parties":
      partiesChanged(event);
      break;
    case "call.transferred":
      if (S.call && S.call.call_id === event.call_id) {
        notify(`Transferred to ${targetText(event.target, S.transferTargets)}${event.kind === "warm" ? " after consulting" : ""}.`, { kind: "success" });
      }
      break;
    case "call.ended":
      ended(event);
      break;
    case "customer.matched":
      customerMatched(event.call_id, event.customer);
      break;
    case "queue.stats":
      S.queues = Array.isArray(event.queues) ? event.queues : [];
      break;
    case "audio.status":
      audioStatus(event);
      break;
    default:
      break; // newer servers may say more; ignore what we do not know
  }
  updateCapture();
  hooks.render();
}

export function applyAgentView(view) {
  if (!view) return;
  const { call, ...rest } = view;
  S.agent = { ...(S.agent || {}), ...rest };
  return call;
}

function applyHello(event) {
  const call = applyAgentView(event.agent);
  if (event.audio && event.audio.codec && event.audio.codec !== "pcmu") {
    console.warn("agent socket: the server announced codec", event.audio.codec, "(frames say their own codec)");
  }
  if (!call) {
    stopRinging();
    S.offer = null;
    if (S.call) {
      // It ended while the socket was away.
      const gone = S.call;
      dropCall();
      if (S.agent.state === "wrap-up") S.wrapup = makeWrapup(gone, null, true);
    }
  } else if (call.state === "ringing") {
    if (!S.offer || S.offer.call.call_id !== call.call_id) offered(call, null);
    else S.offer.call = call;
  } else if (LIVE_CALL_STATES.has(call.state)) {
    if (!S.call || S.call.call_id !== call.call_id) answered(call);
    else S.call = { ...call, on: S.call.on || call.on };
    if (call.state !== "consulting") S.consult = null;
    else if (!S.consult) S.consult = { state: "unknown", target: call.reaching || null };
  } else if (call.state === "wrap-up") {
    stopRinging();
    S.offer = null;
    const seen = S.call && S.call.call_id === call.call_id ? { ...S.call, customers: call.customers, customer_id: call.customer_id } : null;
    if (S.call) dropCall();
    if (!S.wrapup || S.wrapup.callId !== call.call_id) S.wrapup = makeWrapup(seen || call, null, Boolean(seen));
  }
  // After a reconnect, whatever happened while away (a call ended elsewhere, queue
  // changes) is fetched again; the first hello follows boot's own fetch.
  if (S.hellos++ > 0) {
    hooks.loadHistory();
    hooks.loadQueues();
  }
}

function applyAgentState(state, reason, callId) {
  if (!S.agent) S.agent = {};
  S.agent.state = state;
  S.agent.reason = reason ?? null;
  if (state === "wrap-up" && !S.wrapup && callId) {
    const live = Boolean(S.call && S.call.call_id === callId);
    S.wrapup = makeWrapup(live ? S.call : { call_id: callId }, null, live);
  }
}

function offered(call, ringTimeoutSeconds) {
  const total = Number(ringTimeoutSeconds) || 0;
  S.offer = { call: { ...call }, deadline: total ? Date.now() + total * 1000 : null, total, withdrawn: null };
  S.pending.answer = S.pending.reject = false;
  hooks.engine.startRing();
  S.focus = "answer";
}

function withdrawn(callId, reason) {
  if (!S.offer || S.offer.call.call_id !== callId) return;
  stopRinging();
  S.offer.withdrawn = reason || "withdrawn";
  const offer = S.offer;
  setTimeout(() => {
    if (S.offer === offer) {
      S.offer = null;
      hooks.render();
    }
  }, WITHDRAWN_SHOWN_MS);
}

function answered(call) {
  stopRinging();
  if (S.offer && (S.offer.call.call_id === call.call_id || !S.offer.withdrawn)) S.offer = null;
  const fresh = !S.call || S.call.call_id !== call.call_id;
  S.call = { ...call };
  if (fresh) {
    S.callStartedAt = Date.now();
    S.consult = call.state === "consulting" ? { state: "unknown", target: call.reaching || null } : null;
    S.dtmfSent = "";
    S.audioStatus = null;
    S.serverLossUntil = S.localUnderrunUntil = 0;
    if (call.on === "page") hooks.engine.callStarted();
    hooks.loadTransferTargets();
  }
}

function consultChanged(event) {
  if (!S.call || S.call.call_id !== event.call_id) return;
  const who = targetText(event.target, S.transferTargets);
  switch (event.state) {
    case "ringing":
    case "talking":
      S.consult = { state: event.state, target: event.target };
      S.call.state = "consulting";
      break;
    case "failed":
      S.consult = null;
      S.call.state = S.call.held ? "held" : "talking";
      // This page's own request says why (its answer is shown); others are told here.
      if (!S.adding) notify(`The consultation with ${who} failed. You are back with the caller.`, { kind: "error" });
      break;
    case "cancelled":
      S.consult = null;
      S.call.state = S.call.held ? "held" : "talking";
      notify(S.adding && S.adding.cancelled ? `Stopped calling ${who}. You are back with the caller.` : `Consultation with ${who} cancelled. You are back with the caller.`);
      break;
    case "completed":
      S.consult = null;
      notify(`${who} has the caller now.`, { kind: "success" });
      break;
    case "joined":
      S.consult = null;
      S.call.state = S.call.held ? "held" : "talking";
      notify(`${who} joined the call.`, { kind: "success" });
      break;
    default:
      break;
  }
}

/** call.parties: who else is on the call now, who is being reached, and whether this agent
 * runs it (an agent that becomes the owner, because the owner left, gets the controls). */
function partiesChanged(event) {
  if (S.offer && S.offer.call.call_id === event.call_id) {
    Object.assign(S.offer.call, { owner: Boolean(event.owner), parties: event.parties || [], reaching: event.reaching || null });
  }
  if (!S.call || S.call.call_id !== event.call_id) return;
  const wasOwner = S.call.owner !== false;
  const previousOwner = ownerName(S.call);
  S.call.owner = Boolean(event.owner);
  S.call.parties = Array.isArray(event.parties) ? event.parties : [];
  S.call.reaching = event.reaching || null;
  if (!S.call.owner) {
    S.consult = null;
  } else if (S.call.reaching) {
    // Someone is being reached (or talked to privately): the caller hears music.
    if (!S.consult) S.consult = { state: "unknown", target: S.call.reaching };
    S.call.state = "consulting";
  } else if (S.consult || S.call.state === "consulting") {
    S.consult = null;
    S.call.state = S.call.held ? "held" : "talking";
  }
  if (!wasOwner && S.call.owner) {
    notify(`${previousOwner || "The agent who ran the call"} left: the call is yours now.`, { kind: "success" });
    hooks.refreshCall(); // hold, mute and the recording as the owner sees them
  }
}

const ENDED_BY = {
  caller: "The caller hung up.",
  agent: "Call ended.",
  transfer: "Call transferred.",
  system: "The call was ended by the system.",
};

function ended(event) {
  if (S.offer && S.offer.call.call_id === event.call_id) {
    stopRinging();
    S.offer = null;
  }
  if (S.call && S.call.call_id === event.call_id) {
    const call = S.call;
    dropCall();
    S.wrapup = makeWrapup(call, event.wrap_up_seconds, true);
    notify(ENDED_BY[event.by] || "Call ended.");
    S.focus = "wrapup-disposition";
    hooks.loadHistory();
  } else if (S.wrapup && S.wrapup.callId === event.call_id && event.wrap_up_seconds != null) {
    S.wrapup.deadline = Date.now() + Number(event.wrap_up_seconds) * 1000;
  } else if (!S.wrapup && event.wrap_up_seconds && S.agent && S.agent.state === "wrap-up") {
    S.wrapup = makeWrapup({ call_id: event.call_id }, event.wrap_up_seconds);
    hooks.loadHistory();
  }
}

function dropCall() {
  S.call = null;
  S.consult = null;
  S.adding = null;
  S.pending = {};
  hooks.engine.setCapture(false);
  hooks.engine.callEnded();
}

/** The wrap-up of `call`; `live` when this page saw it connected (so its talk time is known). */
function makeWrapup(call, seconds, live = false) {
  const since = call.since ? Date.parse(call.since) : NaN;
  const started = Number.isNaN(since) ? S.callStartedAt : since;
  return {
    callId: call.call_id,
    caller: call.caller || null,
    queue: call.queue || null,
    customers: call.customers || [],
    // The screen pop shows a single match as the caller: the wrap-up is about them too.
    customerId: call.customer_id ?? (call.customers && call.customers.length === 1 ? call.customers[0].id : null),
    deadline: seconds != null && Number(seconds) > 0 ? Date.now() + Number(seconds) * 1000 : null,
    talkSeconds: live && started ? (Date.now() - started) / 1000 : null,
  };
}

function upsertCustomer(list, customer) {
  const customers = (list || []).filter((c) => c.id !== customer.id);
  customers.unshift(customer);
  return customers;
}

export function customerMatched(callId, customer) {
  if (!customer) return;
  if (S.offer && S.offer.call.call_id === callId) {
    S.offer.call.customers = upsertCustomer(S.offer.call.customers, customer);
    S.offer.call.customer_id = customer.id;
  }
  if (S.call && S.call.call_id === callId) {
    S.call.customers = upsertCustomer(S.call.customers, customer);
    S.call.customer_id = customer.id;
  }
  if (S.wrapup && S.wrapup.callId === callId) {
    S.wrapup.customers = upsertCustomer(S.wrapup.customers, customer);
    S.wrapup.customerId = customer.id;
  }
}

function audioStatus(event) {
  const previous = S.audioStatus;
  const bad = (s) => (Number(s.lost) || 0) + (Number(s.late) || 0);
  if (previous) {
    const now = bad(event);
    const before = bad(previous);
    // Counters per call; a smaller number means they restarted.
    const delta = now >= before ? now - before : now;
    if (delta > 0) S.serverLossUntil = Date.now() + DEGRADED_HOLD_MS;
  } else if (bad(event) > 0) {
    S.serverLossUntil = Date.now() + DEGRADED_HOLD_MS;
  }
  S.audioStatus = event;
}

export function stopRinging() {
  hooks.engine.stopRing();
}

/** Frames go on the socket only while a call is connected on this page. */
export function updateCapture() {
  const on = Boolean(S.call && S.call.on === "page" && LIVE_CALL_STATES.has(S.call.state) && S.socket === "open");
  hooks.engine.setCapture(on);
}
