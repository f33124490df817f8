// customer.js: the screen pop in the middle column. Owns how a call's customer context is
// shown: the matched customer's card (name, company, tier, phones, email, notes, recent
// calls), a chooser when several customers match the caller's number, and a "new customer"
// form prefilled with the number when none does. The panel is rebuilt only when what it shows
// changes, so typing in the form survives every other redraw. Server calls are the caller's
// (agent.js) `actions`; this module only draws and collects.

import { byTestId, formatDuration, formatWhen, h, icon, initials, titleCase } from "./ui.js";

const TIER_SUGGESTIONS = ["regular", "silver", "gold", "vip"]; // the server's tiers (db.models.TIERS)

let shownKey = null;
let view = { callId: null, mode: null }; // mode: null (automatic) | "choose" | "create"

/**
 * @param {HTMLElement} root the panel
 * @param {null | {callId, phase, caller: {number, name, withheld}, customers: object[],
 *                 customerId}} ctx  the call, offer or wrap-up the panel is about
 * @param {{choose: (id, button) => Promise<boolean>, create: (fields, button, form) => Promise<boolean>}} actions
 */
export function renderCustomerPanel(root, ctx, actions) {
  if (!ctx) {
    view = { callId: null, mode: null };
    paint(root, "empty", () => emptyState());
    return;
  }
  if (view.callId !== ctx.callId) view = { callId: ctx.callId, mode: null };
  const customers = ctx.customers || [];
  let selected = customers.find((c) => c.id === ctx.customerId) || null;
  if (!selected && customers.length === 1 && ctx.customerId == null) selected = customers[0];
  let mode = view.mode;
  if (!mode) mode = selected ? "card" : customers.length > 1 ? "choose" : "create";
  if (mode === "choose" && customers.length < 2 && !selected) mode = "create";
  if (mode === "card" && !selected) mode = customers.length > 1 ? "choose" : "create";

  const key = JSON.stringify([ctx.callId, mode, mode === "card" ? selected : customers.map((c) => c.id)]);
  paint(root, key, () => {
    if (mode === "card") return card(selected, ctx, customers.length > 1);
    if (mode === "choose") return chooser(ctx, customers, actions);
    return createForm(ctx, customers.length > 0, actions);
  });
}

function paint(root, key, build) {
  if (key === shownKey && root.firstElementChild) return;
  // Keep an unsubmitted form's values when the same form would be drawn again.
  shownKey = key;
  root.replaceChildren(build());
}

function setMode(mode) {
  view.mode = mode;
  shownKey = null;
  document.dispatchEvent(new CustomEvent("softphone:redraw"));
}

function emptyState() {
  return h(
    "div",
    { class: "customer-empty", "data-testid": "customer-empty" },
    icon("user"),
    h("h2", {}, "No caller"),
    h("p", {}, "The caller's customer record opens here when a call comes in."),
  );
}

function tierBadge(tier, testid = "customer-tier") {
  if (!tier) return null;
  const value = String(tier);
  return h("span", { class: "tier", "data-testid": testid, dataset: { tier: value.toLowerCase() } }, titleCase(value));
}

function card(customer, ctx, canChange) {
  const callerNumber = ctx.caller && ctx.caller.number;
  const phones = (customer.phones || []).map((p) =>
    h("li", { class: `phone${p === callerNumber ? " is-caller" : ""}` }, p),
  );
  const facts = h(
    "dl",
    { class: "customer-facts" },
    h("div", {}, h("dt", {}, "Phone"), h("dd", {}, phones.length ? h("ul", { "data-testid": "customer-phones" }, phones) : "—")),
    h("div", {}, h("dt", {}, "Email"), h("dd", { "data-testid": "customer-email" }, customer.email || "—")),
  );
  const notes = (customer.notes || []).slice().reverse();
  const recent = customer.recent_calls || [];
  return h(
    "article",
    { class: "customer", "data-testid": "customer-card", dataset: { customerId: String(customer.id) } },
    h(
      "div",
      { class: "customer-head" },
      h("div", { class: "customer-avatar", "aria-hidden": "true" }, initials(customer.name)),
      h(
        "div",
        { class: "customer-title" },
        h("h2", { class: "customer-name" }, h("span", { "data-testid": "customer-card-name" }, customer.name || "Unnamed customer"), tierBadge(customer.tier)),
        customer.company ? h("p", { class: "customer-company", "data-testid": "customer-company" }, customer.company) : null,
      ),
      canChange
        ? h("button", { type: "button", class: "btn btn-small", "data-testid": "customer-change", onclick: () => setMode("choose") }, "Not this customer?")
        : null,
    ),
    facts,
    h("h3", { class: "section-title" }, `Notes${notes.length ? ` (${notes.length})` : ""}`),
    notes.length
      ? h("ul", { class: "notes", "data-testid": "customer-notes" }, notes.map((n) =>
          h("li", {}, h("div", { class: "note-meta" }, [n.kind && n.kind !== "note" ? titleCase(n.kind) : null, n.author, formatWhen(n.at)].filter(Boolean).join(" · ")), h("div", { class: "note-text" }, n.text || "")),
        ))
      : h("p", { class: "muted", "data-testid": "customer-notes" }, "No notes yet."),
    h("h3", { class: "section-title" }, "Recent calls"),
    recent.length
      ? h("ul", { class: "recent", "data-testid": "customer-recent" }, recent.map((c) => recentRow(c)))
      : h("p", { class: "muted", "data-testid": "customer-recent" }, "No earlier calls."),
  );
}

function recentRow(call) {
  const what = [call.disposition, call.outcome && call.outcome !== call.disposition ? call.outcome : null].filter(Boolean).join(" · ");
  return h(
    "li",
    {},
    h("span", {}, [formatWhen(call.arrived_at), call.queue, call.agent].filter(Boolean).join(" · ")),
    h("span", { class: "muted" }, call.talk_seconds ? formatDuration(call.talk_seconds) : ""),
    what || call.notes ? h("span", { class: "muted", style: "grid-column: 1 / -1" }, [what, call.notes].filter(Boolean).join(" — ")) : null,
  );
}

function chooser(ctx, customers, actions) {
  const number = (ctx.caller && ctx.caller.number) || "this number";
  const list = h(
    "ul",
    { class: "choices" },
    customers.map((c) => {
      const button = h(
        "button",
        { type: "button", class: "choice", "data-testid": "customer-choice", dataset: { customerId: String(c.id) } },
        h("span", { class: "customer-avatar", "aria-hidden": "true" }, initials(c.name)),
        h(
          "span",
          { class: "choice-main" },
          h("span", { class: "choice-name" }, c.name || "Unnamed"),
          h("span", { class: "choice-sub" }, [c.company, (c.phones || []).join(", ")].filter(Boolean).join(" · ")),
        ),
        tierBadge(c.tier, "customer-choice-tier"),
      );
      button.addEventListener("click", async () => {
        if (await actions.choose(c.id, button)) setMode(null);
      });
      return h("li", {}, button);
    }),
  );
  return h(
    "div",
    { class: "chooser", "data-testid": "customer-chooser" },
    h("h2", {}, `${customers.length} customers use ${number}`),
    h("p", { class: "muted" }, "Ask who is calling, then choose their record."),
    list,
    h("button", { type: "button", class: "btn", "data-testid": "customer-new", onclick: () => setMode("create") }, "Someone else: new customer"),
  );
}

function field(id, label, input, wide = false) {
  return h("div", { class: `field${wide ? " wide" : ""}` }, h("label", { for: id }, label), input);
}

function createForm(ctx, canGoBack, actions) {
  const number = (ctx.caller && ctx.caller.number) || "";
  const name = h("input", { id: "new-customer-name", "data-testid": "new-customer-name", type: "text", required: true, maxlength: "120", autocomplete: "off" });
  if (ctx.caller && ctx.caller.name && !ctx.caller.withheld) name.value = ctx.caller.name;
  const company = h("input", { id: "new-customer-company", "data-testid": "new-customer-company", type: "text", maxlength: "120", autocomplete: "off" });
  const tier = h("input", { id: "new-customer-tier", "data-testid": "new-customer-tier", type: "text", list: "tier-suggestions", maxlength: "40", autocomplete: "off" });
  const tiers = h("datalist", { id: "tier-suggestions" }, TIER_SUGGESTIONS.map((t) => h("option", { value: t })));
  const phone = h("input", { id: "new-customer-phone", "data-testid": "new-customer-phone", type: "tel", required: true, maxlength: "32", autocomplete: "off", inputmode: "tel" });
  phone.value = number;
  const email = h("input", { id: "new-customer-email", "data-testid": "new-customer-email", type: "email", maxlength: "200", autocomplete: "off" });
  const error = h("p", { class: "form-error", "data-testid": "new-customer-error", role: "alert" });
  const save = h("button", { type: "submit", class: "btn btn-accent", "data-testid": "new-customer-save" }, "Create customer");
  const form = h(
    "form",
    { class: "create", "data-testid": "customer-create", novalidate: true },
    h("h2", {}, number ? `New caller: ${number}` : "New caller"),
    h("p", { class: "muted" }, number ? "No customer has this number yet. Add them and this call is linked to the record." : "The caller's number is withheld. Add them and this call is linked to the record."),
    h(
      "div",
      { class: "form-grid" },
      field("new-customer-name", "Name", name, true),
      field("new-customer-company", "Company", company),
      field("new-customer-tier", "Tier", tier),
      field("new-customer-phone", "Phone", phone),
      field("new-customer-email", "Email", email),
    ),
    tiers,
    error,
    h(
      "div",
      { class: "form-actions" },
      save,
      canGoBack ? h("button", { type: "button", class: "btn btn-quiet", "data-testid": "new-customer-cancel", onclick: () => setMode(null) }, "Back to the matches") : null,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const fields = {
      name: name.value.trim(),
      company: company.value.trim() || null,
      tier: tier.value.trim() || null,
      phone: phone.value.trim(),
      email: email.value.trim() || null,
    };
    if (!fields.name) {
      error.textContent = "Enter the customer's name.";
      name.focus();
      return;
    }
    if (!fields.phone) {
      error.textContent = "Enter a phone number.";
      phone.focus();
      return;
    }
    const done = await actions.create(fields, save, error);
    if (done) setMode(null);
  });
  return form;
}

/** For the toast: who the screen pop thinks is calling: {name (only a chosen or single
 * match), extra: company and tier, or what is known instead of a name}. */
export function toastCustomerLine(customers, customerId) {
  const list = customers || [];
  const chosen = list.find((c) => c.id === customerId) || (list.length === 1 ? list[0] : null);
  if (chosen) return { name: chosen.name || "", extra: [chosen.company, chosen.tier ? titleCase(chosen.tier) : null].filter(Boolean).join(" · ") };
  if (list.length > 1) return { name: "", extra: `${list.length} possible customers` };
  return { name: "", extra: "No customer record for this number" };
}

export function resetCustomerPanel() {
  shownKey = null;
  view = { callId: null, mode: null };
  const root = byTestId("customer-panel");
  if (root) root.replaceChildren();
}
