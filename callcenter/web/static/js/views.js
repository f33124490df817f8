// views.js: draws the agent desk from the page's state (agent.js owns the state and the
// actions). Owns the header (name, state selector, status pill), the queue strip, the idle
// panel, the incoming-call toast, the call panel (caller line, timer, controls, consult box),
// the conference's parties and the "add to call" panel, the wrap-up panel, recent calls, the
// transfer target lists and the audio panel. Every function is an idempotent "make the DOM
// say this" so it can run after any event; inputs the agent is typing into are never
// overwritten, and rows that stay keep their elements (and so the keyboard's focus).

import { renderCustomerPanel, toastCustomerLine } from "./customer.js";
import { byTestId, formatDuration, formatWhen, h, initials, secondsSince, setText, show, titleCase } from "./ui.js";

const $ = byTestId;

const STATE_LABELS = {
  available: "Available",
  away: "Away",
  "logged-out": "Logged out of queues",
  reserved: "Ringing",
  "on-call": "On a call",
  "wrap-up": "Wrap-up",
};

const CALL_STATE_LABELS = {
  ringing: "Ringing",
  talking: "Talking",
  held: "On hold",
  consulting: "Consulting",
  "wrap-up": "Wrap-up",
};

const WITHDRAWN_REASONS = {
  "answered-elsewhere": "Answered by another agent",
  "caller-left": "The caller hung up",
  "no-answer": "Not answered in time",
  rejected: "Rejected",
};

export function withdrawnText(reason) {
  return WITHDRAWN_REASONS[reason] || titleCase(reason || "Withdrawn");
}

export function callerText(caller) {
  if (!caller) return "Unknown number";
  if (typeof caller === "string") return caller || "Unknown number";
  if (caller.withheld) return "Withheld number";
  return caller.number || caller.name || "Unknown number";
}

/** "kind:value" (agent:ben, queue:sales, number:+15550100, phone:desk7, supervisor:sam). */
export function parseLabel(label) {
  const match = /^(agent|queue|number|phone|supervisor):(.*)$/.exec(String(label || ""));
  return match ? { kind: match[1], value: match[2] } : null;
}

export function targetText(target, targets) {
  if (!target) return "the target";
  if (typeof target === "string") {
    const parsed = parseLabel(target);
    if (!parsed) return target;
    target = parsed;
  }
  const value = target.value ?? "";
  if ((target.kind === "agent" || target.kind === "supervisor") && targets) {
    const agent = (targets.agents || []).find((a) => a.username === value);
    if (agent) return agent.display_name || agent.username;
  }
  if (target.kind === "queue") return `queue ${value}`;
  if (target.kind === "phone") return `phone ${value}`;
  return String(value) || "the target";
}

/** Whether this agent controls the call (false: a party in someone else's conference). */
export function isOwner(call) {
  return Boolean(call) && call.owner !== false;
}

/** The name of the agent who owns a conference this agent is a party of (id 0 in its list). */
export function ownerName(call) {
  const owner = call && (call.parties || []).find((p) => p.id === 0);
  return owner ? owner.name || targetText(owner.label) : "";
}

// --- header --------------------------------------------------------------------------------

export function renderHeader(S) {
  const name = (S.agent && (S.agent.display_name || S.agent.username)) || (S.user && (S.user.display_name || S.user.username)) || "";
  setText($("agent-name"), name);
  setText($("agent-initials"), initials(name));

  const state = S.agent && S.agent.state;
  const control = $("state-control");
  control.dataset.state = state || "logged-out";
  const select = $("state-select");
  // While a change is in flight the agent's pick stays; the answer or an event decides.
  if (state && !S.statePending && select.value !== state && document.activeElement !== select) select.value = state;
  select.disabled = !state;
  select.setAttribute("aria-busy", S.statePending ? "true" : "false");
  select.title = state ? `Status: ${STATE_LABELS[state] || state}` : "";

  const reasonInput = $("away-reason");
  if (state === "away" && document.activeElement !== reasonInput && !S.reasonDirty) reasonInput.value = S.agent.reason || "";
  const reasons = (S.agent && S.agent.away_reasons) || [];
  const list = document.getElementById("away-reasons");
  const signature = reasons.join("\u0000");
  if (list.dataset.signature !== signature) {
    list.dataset.signature = signature;
    list.replaceChildren(...reasons.map((r) => h("option", { value: r })));
  }

  renderHeaderClock(S);
}

/** The pill's truth: socket first, then audio problems while they matter. */
export function computeStatus(S, engine, now = Date.now()) {
  if (S.socket === "taken-over") return { status: "taken-over", text: "Open in another tab", detail: "This desk is open in another tab or window. Use this tab to take it back." };
  if (S.socket === "connecting" || S.socket === "closed") return { status: "connecting", text: "Connecting…", detail: "" };
  if (S.socket === "reconnecting") return { status: "reconnecting", text: "Reconnecting…", detail: "The connection to the server dropped; calls and audio resume as soon as it is back." };
  const problems = [];
  if (engine) {
    if (engine.startError) problems.push("audio engine failed");
    if (engine.mic === "denied") problems.push("microphone blocked");
    else if (engine.mic === "missing") problems.push("no microphone");
    else if (engine.mic === "insecure" || engine.mic === "error") problems.push("microphone not available");
  }
  const onPageCall = S.call && S.call.on === "page";
  if (onPageCall) {
    if (S.audioStatus && S.audioStatus.attached === false) problems.push("audio not attached");
    if (now < S.serverLossUntil) problems.push("packet loss");
    if (now < S.localUnderrunUntil) problems.push("playback gaps");
  }
  if (problems.length) return { status: "degraded", text: `Audio degraded: ${problems.join(", ")}`, detail: problems.join(", ") };
  return { status: "connected", text: "Connected", detail: "" };
}

export function renderStatus(S, engine) {
  const pill = $("status-pill");
  const { status, text, detail } = computeStatus(S, engine);
  pill.dataset.status = status;
  setText(pill.querySelector(".pill-text"), text);
  pill.title = detail || text;
  show($("reconnect"), status === "taken-over");
  document.body.classList.toggle("is-stale", status === "taken-over");
  show($("audio-enable"), Boolean(engine && engine.ctx && engine.ctx.state === "suspended"));
}

// --- queue strip ---------------------------------------------------------------------------

export function renderQueues(S) {
  const list = $("queue-stats").querySelector(".queue-list");
  const mine = new Set((S.agent && S.agent.queues) || []);
  const items = (S.queues || []).slice().sort((a, b) => Number(mine.has(b.queue)) - Number(mine.has(a.queue)) || String(a.queue).localeCompare(String(b.queue)));
  const signature = JSON.stringify([items, [...mine]]);
  if (list.dataset.signature === signature) return;
  list.dataset.signature = signature;
  list.replaceChildren(
    ...items.map((q) => {
      const waiting = Number(q.waiting) || 0;
      const longest = Number(q.longest_wait_seconds) || 0;
      const classes = ["queue-stat", mine.has(q.queue) ? "mine" : "", waiting ? "busy" : "", longest >= 60 ? "urgent" : ""].filter(Boolean).join(" ");
      return h(
        "li",
        { class: classes, "data-testid": "queue-stat", dataset: { queue: q.queue }, title: `${q.queue}: ${waiting} waiting, longest ${formatDuration(longest)}, ${q.agents_available} agents available` },
        h("span", { class: "q-name" }, q.queue),
        h("span", { class: "q-waiting", "data-testid": "queue-waiting", "aria-label": `${waiting} waiting` }, String(waiting)),
        h("span", { class: "q-wait", "data-testid": "queue-longest" }, waiting ? `longest ${formatDuration(longest)}` : "none waiting"),
        h("span", { class: "q-wait", "data-testid": "queue-agents" }, `${q.agents_available} free`),
      );
    }),
  );
}

// --- idle, toast, call, wrap-up ---------------------------------------------------------------

export function renderIdle(S) {
  const panel = $("idle-panel");
  const visible = !S.call && !S.wrapup;
  show(panel, visible);
  if (!visible) return;
  const state = S.agent && S.agent.state;
  panel.dataset.state = state || "";
  const queues = (S.agent && S.agent.queues) || [];
  let title = "Connecting…";
  let text = "";
  if (!S.user) title = "Loading…";
  else if (!state) text = "Getting your desk from the server.";
  else if (state === "available") {
    title = "Ready for calls";
    text = queues.length ? `Calls from ${queues.join(", ")} ring here.` : "You are in no queue yet; calls put through to you ring here.";
  } else if (state === "away") {
    title = S.agent.reason ? `Away: ${S.agent.reason}` : "Away";
    text = "No calls are offered to you. Choose Available when you are back.";
  } else if (state === "logged-out") {
    title = "Logged out of queues";
    text = "Choose Available in the status menu to start taking calls.";
  } else if (state === "reserved") {
    title = "Incoming call";
    text = "Answer or reject it in the call notice.";
  } else if (state === "on-call") {
    title = "On a call";
    text = "The call is not on this page.";
  } else if (state === "wrap-up") {
    title = "Wrap-up";
    text = "";
  }
  setText($("idle-title"), title);
  setText($("idle-text"), text);
}

export function renderToast(S) {
  const toast = $("toast");
  const offer = S.offer;
  show(toast, Boolean(offer));
  if (!offer) {
    toast.dataset.callId = "";
    return;
  }
  const call = offer.call;
  const isNew = toast.dataset.callId !== call.call_id;
  toast.dataset.callId = call.call_id;
  toast.dataset.withdrawn = offer.withdrawn ? "true" : "false";
  // An offer of a call someone else owns: they are bringing this agent into it.
  const by = call.owner === false ? ownerName(call) : "";
  toast.dataset.conference = call.owner === false ? "true" : "false";
  setText($("toast-kind"), offer.withdrawn ? "Call withdrawn" : call.owner === false ? `${by || "An agent"} is bringing you into a call` : "Incoming call");
  setText($("toast-queue"), call.queue || "");
  setText($("toast-caller"), callerText(call.caller));
  const line = toastCustomerLine(call.customers, call.customer_id);
  const callerName = call.caller && !call.caller.withheld && call.caller.name;
  setText($("toast-customer-name"), line.name);
  setText($("toast-customer-extra"), line.name ? line.extra : callerName ? `${callerName} · ${line.extra}` : line.extra);
  const reason = $("toast-reason");
  show(reason, Boolean(offer.withdrawn));
  setText(reason, offer.withdrawn ? withdrawnText(offer.withdrawn) : "");
  $("answer").disabled = Boolean(offer.withdrawn) || S.pending.answer;
  $("reject").disabled = Boolean(offer.withdrawn) || S.pending.reject;
  const bar = toast.querySelector(".toast-bar");
  if (isNew) {
    bar.style.transition = "none";
    bar.style.transform = "scaleX(1)";
    if (offer.deadline) {
      const left = Math.max(0, (offer.deadline - Date.now()) / 1000);
      const total = Math.max(left, offer.total || left);
      bar.style.transform = `scaleX(${total ? left / total : 0})`;
      void bar.offsetWidth; // commit the start before the transition
      bar.style.transition = `transform ${left}s linear`;
      bar.style.transform = "scaleX(0)";
    }
  }
  if (offer.withdrawn) {
    bar.style.transition = "none";
  }
}

export function renderCall(S) {
  const panel = $("call-panel");
  const call = S.call;
  show(panel, Boolean(call));
  if (!call) return;
  panel.dataset.callId = call.call_id;
  panel.dataset.state = call.state || "";
  panel.dataset.held = call.held ? "true" : "false";
  panel.dataset.muted = call.muted ? "true" : "false";
  setText($("call-caller"), callerText(call.caller));
  setText($("call-caller-name"), call.caller && !call.caller.withheld ? call.caller.name || "" : "");
  setText($("call-queue"), call.queue ? `Queue ${call.queue}` : "");
  const owner = isOwner(call);
  panel.dataset.owner = owner ? "true" : "false";
  const conference = (call.parties || []).some((p) => p.role === "party");
  let stateLabel = call.held && call.state !== "consulting" ? "On hold" : CALL_STATE_LABELS[call.state] || titleCase(call.state);
  if (!owner || (conference && call.state === "talking" && !call.held)) stateLabel = "Conference";
  setText($("call-state"), call.muted ? `${stateLabel} · muted` : stateLabel);
  const where = $("call-where");
  show(where, call.on === "phone");
  setText(where, call.on === "phone" ? "Answered on your desk phone: the audio is there, the buttons here still work." : "");
  renderTimers(S);

  // A party in someone else's conference can only leave it: the owner's controls go.
  $("call-controls").dataset.owner = owner ? "true" : "false";
  const mute = $("mute");
  show(mute, owner);
  mute.setAttribute("aria-pressed", call.muted ? "true" : "false");
  setText(mute.querySelector(".ctl-label"), call.muted ? "Unmute" : "Mute");
  mute.disabled = S.pending.mute;
  const hold = $("hold");
  show(hold, owner);
  hold.setAttribute("aria-pressed", call.held ? "true" : "false");
  setText(hold.querySelector(".ctl-label"), call.held ? "Resume" : "Hold");
  hold.disabled = S.pending.hold;
  $("hangup").disabled = S.pending.hangup;
  setText($("hangup").querySelector(".ctl-label"), owner ? "Hang up" : "Leave the call");
  show($("call-tools"), owner);
  renderParties(S);
  // The recording's state as the server has it (null: this call is not recorded).
  const recorded = owner && call.recording_paused !== null && call.recording_paused !== undefined;
  const recRow = $("recording-row");
  show(recRow, recorded);
  if (recorded) {
    recRow.dataset.paused = call.recording_paused ? "true" : "false";
    setText($("recording-state"), call.recording_paused ? "Recording paused: silence is recorded" : "Recording");
    const toggle = $("recording-toggle");
    toggle.setAttribute("aria-pressed", call.recording_paused ? "true" : "false");
    setText(toggle, call.recording_paused ? "Resume recording" : "Pause recording");
    toggle.disabled = Boolean(S.pending.recording);
  }

  const consulting = owner && (Boolean(S.consult) || call.state === "consulting");
  const box = $("consult-panel");
  show(box, consulting);
  if (consulting) {
    const c = S.consult || { state: "unknown", target: call.reaching || null };
    box.dataset.state = c.state;
    const who = targetText(c.target || call.reaching, S.transferTargets);
    const text =
      c.state === "ringing" ? `Reaching ${who}… The caller hears music.`
        : c.state === "talking" ? `Talking privately with ${who}. The caller hears music.`
          : c.target || call.reaching ? `Reaching ${who}… The caller hears music.`
            : "Consultation in progress. The caller hears music.";
    setText($("consult-state"), text);
    // Until they answer there is nobody to join in or hand over to: only giving up.
    const answered = c.state !== "ringing";
    show($("consult-join"), answered);
    show($("consult-complete"), answered);
    setText($("consult-cancel"), answered ? "Back to the caller" : "Stop calling");
    $("consult-join").disabled = Boolean(S.pending.consultJoin);
    $("consult-complete").disabled = Boolean(S.pending.consultComplete);
    $("consult-cancel").disabled = Boolean(S.pending.consultCancel);
  }
  $("transfer-blind").disabled = consulting || S.pending.transfer;
  $("consult").disabled = consulting || S.pending.consult;
  renderAddPanel(S, consulting);
  setText($("dtmf-sent"), S.dtmfSent);
}

// --- conference: the parties and adding one -----------------------------------------------

const PARTY_KINDS = {
  agent: "Agent",
  number: "Outside number",
  phone: "Phone",
  supervisor: "Supervisor",
  queue: "Queue",
};

const MODE_BADGES = {
  muted: "Muted",
  whisper: "Whispering",
  barge: "Barged in",
};

/** The call's other parties as the server last told (`call.parties`), with the owner's
 * Mute and Remove on each conference party (a supervisor's whisper or barge is shown, not
 * controlled here). The buttons carry `data-action`; agent.js listens on the list. */
export function renderParties(S) {
  const call = S.call;
  const section = $("parties");
  const parties = (call && call.parties) || [];
  const owner = isOwner(call);
  show(section, Boolean(call) && (parties.length > 0 || !owner));
  if (!call) return;
  const role = $("call-role");
  show(role, !owner);
  const by = ownerName(call);
  setText(role, owner ? "" : `You are in ${by ? `${by}'s` : "another agent's"} conference: ${by || "they"} run${by ? "s" : ""} the call; you can talk, and leave when you are done.`);
  setText($("parties-count"), parties.length ? String(parties.length) : ""); // the list says it to a reader

  const list = $("party-list");
  const rows = new Map([...list.children].map((li) => [li.dataset.partyId, li]));
  const wanted = [];
  for (const party of parties) {
    const key = String(party.id);
    const li = rows.get(key) || h("li", { class: "party", "data-testid": "party", dataset: { partyId: key } });
    rows.delete(key);
    fillParty(li, party, owner, S.pending);
    wanted.push(li);
  }
  for (const stale of rows.values()) stale.remove();
  wanted.forEach((li, index) => {
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
}

function fillParty(li, party, owner, pending) {
  const parsed = parseLabel(party.label) || { kind: "", value: party.label };
  const name = party.name || parsed.value || party.label;
  const isOwnerRow = party.id === 0;
  const kind = isOwnerRow ? "Agent · runs the call" : PARTY_KINDS[parsed.kind] || titleCase(parsed.kind);
  const signature = JSON.stringify([party, owner, Boolean(pending[`party-${party.id}`])]);
  if (li.dataset.signature === signature) return;
  li.dataset.signature = signature;
  li.dataset.label = party.label;
  li.dataset.kind = parsed.kind;
  li.dataset.mode = party.mode;
  li.dataset.role = party.role;
  // A whisper reaches the owner alone: the owner is told it is for them.
  const badge = party.mode === "whisper" && owner ? "Whispering to you" : MODE_BADGES[party.mode];
  const controllable = owner && party.role === "party" && !isOwnerRow;
  const busy = Boolean(pending[`party-${party.id}`]);
  if (!li.firstChild) {
    li.append(
      h("span", { class: "party-avatar", "aria-hidden": "true" }),
      h("span", { class: "party-who" },
        h("span", { class: "party-name", "data-testid": "party-name" }),
        h("span", { class: "party-sub" },
          h("span", { class: "party-kind", "data-testid": "party-kind" }),
          h("span", { class: "badge", "data-testid": "party-badge" }))),
      h("span", { class: "party-actions" },
        h("button", { type: "button", class: "btn btn-small", "data-testid": "party-mute", dataset: { action: "mute" } }),
        h("button", { type: "button", class: "btn btn-small btn-quiet btn-danger-quiet", "data-testid": "party-remove", dataset: { action: "remove" } }, "Remove")),
    );
  }
  const [avatar, who, actions] = li.children;
  setText(avatar, parsed.kind === "number" || parsed.kind === "phone" ? "#" : initials(name));
  setText(byTestId("party-name", who), name);
  const dialled = (parsed.kind === "number" || parsed.kind === "phone") && name !== parsed.value;
  setText(byTestId("party-kind", who), dialled ? `${kind} · ${parsed.value}` : kind);
  const badgeEl = byTestId("party-badge", who);
  badgeEl.dataset.mode = party.mode;
  setText(badgeEl, badge || "");
  show(badgeEl, Boolean(badge));
  show(actions, controllable);
  const muteButton = byTestId("party-mute", actions);
  const muted = party.mode === "muted";
  muteButton.setAttribute("aria-pressed", muted ? "true" : "false");
  muteButton.setAttribute("aria-label", `${muted ? "Unmute" : "Mute"} ${name}`);
  setText(muteButton, muted ? "Unmute" : "Mute");
  muteButton.disabled = busy;
  const removeButton = byTestId("party-remove", actions);
  removeButton.setAttribute("aria-label", `Remove ${name} from the call`);
  removeButton.disabled = busy;
}

/** The chosen kind of party to add (agent, queue, phone or number) and its field. */
export function addKind() {
  const checked = document.querySelector('input[name="add-kind"]:checked');
  return checked ? checked.value : "agent";
}

export function renderAddPanel(S, consulting) {
  const kind = addKind();
  for (const field of document.querySelectorAll("[data-add-kind]")) show(field, field.dataset.addKind === kind);
  const busy = Boolean(S.adding) || consulting;
  $("add-join").disabled = busy;
  $("add-consult").disabled = busy;
}

export function renderTimers(S) {
  if (S.call) {
    const start = S.call.since ? Date.parse(S.call.since) : NaN;
    const seconds = Number.isNaN(start) ? (Date.now() - S.callStartedAt) / 1000 : secondsSince(S.call.since);
    setText($("call-timer"), formatDuration(seconds));
  }
  if (S.wrapup) setText($("wrapup-remaining"), wrapupRemaining(S));
  renderHeaderClock(S);
}

function renderHeaderClock(S) {
  const state = S.agent && S.agent.state;
  let since = "";
  if (state === "wrap-up" && S.wrapup && S.wrapup.deadline) {
    since = `${formatDuration(Math.ceil(Math.max(0, S.wrapup.deadline - Date.now()) / 1000))} left`;
  }
  setText($("state-since"), since);
}

function wrapupRemaining(S) {
  const w = S.wrapup;
  if (w.deadline) {
    const left = Math.ceil((w.deadline - Date.now()) / 1000);
    return left > 0 ? `${formatDuration(left)} left` : "Time is up";
  }
  return S.agent && S.agent.state === "wrap-up" ? "In wrap-up" : "";
}

export function renderWrapup(S) {
  const panel = $("wrapup-panel");
  const w = S.wrapup;
  show(panel, Boolean(w));
  if (!w) return;
  panel.dataset.callId = w.callId;
  setText($("wrapup-remaining"), wrapupRemaining(S));
  const parts = [callerText(w.caller), w.queue ? `queue ${w.queue}` : null, w.talkSeconds ? formatDuration(w.talkSeconds) : null];
  setText($("wrapup-summary"), `Call with ${parts.filter(Boolean).join(" · ")}`);
  const select = $("wrapup-disposition");
  const dispositions = (S.agent && S.agent.dispositions) || [];
  const signature = dispositions.join("\u0000");
  if (select.dataset.signature !== signature) {
    const current = select.value;
    select.dataset.signature = signature;
    select.replaceChildren(
      h("option", { value: "" }, dispositions.length ? "Choose a disposition…" : "No dispositions configured"),
      ...dispositions.map((d) => h("option", { value: d }, d)),
    );
    if (dispositions.includes(current)) select.value = current;
  }
  $("wrapup-save").disabled = S.pending.wrapup;
}

// --- history ---------------------------------------------------------------------------------

export function renderHistory(S) {
  const list = $("history-list");
  const signature = JSON.stringify(S.history);
  if (list.dataset.signature === signature) return;
  list.dataset.signature = signature;
  list.replaceChildren(
    ...(S.history || []).map((c) => {
      const outcome = c.disposition || c.outcome;
      return h(
        "li",
        { class: "history-row", "data-testid": "history-row", dataset: { callId: String(c.call_id) } },
        h("span", { class: "h-caller", title: c.caller || "" }, c.caller_name || callerText(c.caller)),
        h("span", { class: "h-time" }, formatWhen(c.arrived_at)),
        h("span", { class: "h-sub" }, c.queue || "direct", outcome ? h("span", { class: "h-outcome" }, titleCase(outcome)) : null),
        h("span", { class: "h-dur" }, c.talk_seconds != null ? formatDuration(c.talk_seconds) : ""),
      );
    }),
  );
}

// --- transfer targets ------------------------------------------------------------------------

export function renderTransferTargets(S) {
  const select = $("transfer-target");
  const targets = S.transferTargets || { agents: [], queues: [] };
  const me = S.user && S.user.username;
  const agents = (targets.agents || []).filter((a) => a.username !== me);
  const signature = JSON.stringify([agents, targets.queues]);
  renderAddTargets(agents, targets.queues || [], signature);
  if (select.dataset.signature === signature) return;
  select.dataset.signature = signature;
  const current = select.value;
  const groups = [h("option", { value: "" }, "Choose an agent or a queue…")];
  if (agents.length) {
    groups.push(
      h("optgroup", { label: "Agents" }, agents.map((a) =>
        h("option", { value: `agent:${a.username}` }, `${a.display_name || a.username}${a.state ? ` (${STATE_LABELS[a.state] || a.state})` : ""}`),
      )),
    );
  }
  if ((targets.queues || []).length) {
    groups.push(h("optgroup", { label: "Queues" }, targets.queues.map((q) => h("option", { value: `queue:${q}` }, q))));
  }
  select.replaceChildren(...groups);
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

/** The "add to call" lists: agents (their state as last loaded: only an available agent
 * can be rung, the server says so otherwise) and queues. */
function renderAddTargets(agents, queues, signature) {
  const agentSelect = $("add-agent");
  if (agentSelect.dataset.signature !== signature) {
    agentSelect.dataset.signature = signature;
    const current = agentSelect.value;
    agentSelect.replaceChildren(
      h("option", { value: "" }, agents.length ? "Choose an agent…" : "No other agents"),
      ...agents.map((a) => h("option", { value: a.username }, `${a.display_name || a.username}${a.state ? ` (${STATE_LABELS[a.state] || a.state})` : ""}`)),
    );
    if ([...agentSelect.options].some((o) => o.value === current)) agentSelect.value = current;
  }
  const queueSelect = $("add-queue");
  if (queueSelect.dataset.signature !== signature) {
    queueSelect.dataset.signature = signature;
    const current = queueSelect.value;
    queueSelect.replaceChildren(
      h("option", { value: "" }, queues.length ? "Choose a queue…" : "No queues"),
      ...queues.map((q) => h("option", { value: q }, q)),
    );
    if ([...queueSelect.options].some((o) => o.value === current)) queueSelect.value = current;
  }
}

// --- audio -----------------------------------------------------------------------------------

const MIC_TEXT = {
  pending: "Opening the microphone…",
  denied: "Microphone access was refused. Allow it for this site in the browser, then reload.",
  missing: "No microphone found. Plug in a headset.",
  insecure: "The microphone needs a secure (https) connection to this desk.",
  error: "The microphone could not be opened.",
};

export function renderMeter(engine) {
  const meter = $("mic-meter");
  const rms = engine.stats.micLevel;
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  const pct = Math.max(0, Math.min(100, Math.round(((db + 60) / 60) * 100)));
  if (meter.dataset.level !== String(pct)) {
    meter.dataset.level = String(pct);
    meter.setAttribute("aria-valuenow", String(pct));
    meter.firstElementChild.style.width = `${pct}%`;
  }
}

export function renderAudio(S, engine) {
  if (!engine) return;
  const status = $("mic-status");
  let text = MIC_TEXT[engine.mic] || "";
  if (engine.mic === "ok") {
    const track = engine.micStream && engine.micStream.getAudioTracks()[0];
    text = track && track.label ? `Microphone: ${track.label}` : "Microphone on";
  }
  if (engine.startError) text = engine.startError;
  setText(status, text);
  status.classList.toggle("problem", engine.mic !== "ok" && engine.mic !== "pending");
  const ctxState = engine.ctx ? engine.ctx.state : "none";
  setText($("audio-state"), ctxState === "running" ? "Sound on" : ctxState === "suspended" ? "Sound off: click anywhere" : engine.startError ? "No audio" : "Starting");
  const s = engine.stats;
  const onPageCall = S.call && S.call.on === "page";
  setText($("audio-buffer"), onPageCall ? `${Math.round(s.bufferMs)} ms` : "–");
  setText($("audio-underruns"), String(s.underruns));
  const a = S.audioStatus;
  setText($("audio-lost"), a ? String((Number(a.lost) || 0) + (Number(a.late) || 0)) : "0");
  renderMeter(engine);
}

// --- the whole page --------------------------------------------------------------------------

export function customerContext(S) {
  if (S.call) return { callId: S.call.call_id, phase: "call", caller: S.call.caller, customers: S.call.customers, customerId: S.call.customer_id };
  if (S.offer && !S.offer.withdrawn) {
    const c = S.offer.call;
    return { callId: c.call_id, phase: "offer", caller: c.caller, customers: c.customers, customerId: c.customer_id };
  }
  if (S.wrapup) return { callId: S.wrapup.callId, phase: "wrapup", caller: S.wrapup.caller, customers: S.wrapup.customers, customerId: S.wrapup.customerId };
  return null;
}

export function renderAll(S, engine, customerActions) {
  renderHeader(S);
  renderStatus(S, engine);
  renderQueues(S);
  renderIdle(S);
  renderToast(S);
  renderCall(S);
  renderWrapup(S);
  renderHistory(S);
  renderTransferTargets(S);
  renderAudio(S, engine);
  renderCustomerPanel($("customer-panel"), customerContext(S), customerActions);
}
