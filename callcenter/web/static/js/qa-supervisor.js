// qa-supervisor.js: the QA page's controls for supervisors (and administrators): the legal
// hold (on with a reason, or released), deleting a recording (a dialog asks why) and the audit
// tab (GET /api/audit for the recording: who listened, downloaded, held or deleted it), per
// docs/qa-api.md. The page hides these for qa reviewers; the server refuses them anyway.

import * as api from "./api.js";
import { formatFull } from "./qa-format.js";
import { byTestId, h, notify, notifyError, setText, show, withBusy } from "./ui.js";

const $ = byTestId;

const ACTIONS = {
  "recording.listen": "Listened",
  "recording.download": "Downloaded",
  "recording.delete": "Deleted",
  "recording.pause": "Paused the recording",
  "recording.resume": "Resumed the recording",
  "legal-hold.set": "Put on legal hold",
  "legal-hold.released": "Released the legal hold",
  erasure: "Erased",
};

export class SupervisorTools {
  /**
   * current(): the open recording (RecordingInfo) or null; onInfo(info) after a hold changed
   * (the server's new RecordingInfo); onDeleted(id) after a deletion.
   */
  constructor({ current, onInfo, onDeleted }) {
    this.current = current;
    this.onInfo = onInfo;
    this.onDeleted = onDeleted;
    $("qa-audit-refresh").addEventListener("click", () => this.loadAudit());
    $("qa-hold-toggle").addEventListener("click", () => this.openHold());
    $("qa-delete").addEventListener("click", () => this.openDelete());
    wireDialog($("qa-hold-dialog"), (dialog, button) => this.submitHold(dialog, button));
    wireDialog($("qa-delete-dialog"), (dialog, button) => this.submitDelete(dialog, button));
  }

  // --- the audit tab ---------------------------------------------------------------------

  async loadAudit() {
    const info = this.current();
    if (!info) return;
    const id = info.id;
    try {
      const subject = encodeURIComponent(`recording:${id}`);
      const entries = await api.get(`/api/audit?subject=${subject}&limit=50`);
      const now = this.current();
      if (!now || now.id !== id) return;
      const list = Array.isArray(entries) ? entries : [];
      $("qa-audit-entries").replaceChildren(
        ...list.map((entry) =>
          h(
            "tr",
            { "data-testid": "qa-audit-entry", dataset: { action: entry.action, actor: entry.actor } },
            h("td", { class: "nowrap" }, formatFull(entry.at)),
            h("td", {}, entry.actor),
            h("td", {}, ACTIONS[entry.action] || entry.action),
            h("td", { class: "muted" }, describeDetail(entry.detail)),
          ),
        ),
      );
      show($("qa-audit-empty"), !list.length);
    } catch (error) {
      if (error.status !== 401) notifyError(error, "Audit log");
    }
  }

  // --- legal hold ------------------------------------------------------------------------

  openHold() {
    const info = this.current();
    if (!info) return;
    const dialog = $("qa-hold-dialog");
    const releasing = Boolean(info.legal_hold);
    setText(dialog.querySelector("h2"), releasing ? "Release the legal hold" : "Put this recording on legal hold");
    setText(
      dialog.querySelector("p.muted"),
      releasing
        ? "Once released, the recording follows its queue's retention again and may be deleted."
        : "While held it cannot be deleted: not by hand, not by retention, not by an erasure request.",
    );
    setText(dialog.querySelector('label[for="hold-reason"]'), releasing ? "Reason (optional)" : "Reason");
    setText($("qa-hold-confirm"), releasing ? "Release" : "Put on hold");
    $("qa-hold-reason-input").value = "";
    $("qa-hold-reason-input").required = !releasing;
    setText($("qa-hold-error"), "");
    dialog.showModal();
    $("qa-hold-reason-input").focus();
  }

  async submitHold(dialog, button) {
    const current = this.current();
    if (!current) return;
    const on = !current.legal_hold;
    const reason = $("qa-hold-reason-input").value.trim();
    if (on && !reason) {
      setText($("qa-hold-error"), "Say why the recording is held.");
      $("qa-hold-reason-input").focus();
      return;
    }
    const id = current.id;
    const info = await withBusy(button, async () => {
      try {
        return await api.put(`/api/recordings/${id}/legal-hold`, { on, reason });
      } catch (error) {
        setText($("qa-hold-error"), error.detail || String(error));
        return undefined;
      }
    });
    if (!info) return;
    dialog.close();
    notify(on ? "The recording is on legal hold." : "The legal hold is released.", { kind: "success", ms: 3000 });
    const now = this.current();
    if (now && now.id === id) this.onInfo(info);
  }

  // --- deletion --------------------------------------------------------------------------

  openDelete() {
    const info = this.current();
    if (!info || info.legal_hold) return;
    $("qa-delete-reason").value = "";
    setText($("qa-delete-error"), "");
    $("qa-delete-dialog").showModal();
    $("qa-delete-reason").focus();
  }

  async submitDelete(dialog, button) {
    const current = this.current();
    if (!current) return;
    const reason = $("qa-delete-reason").value.trim();
    if (!reason) {
      setText($("qa-delete-error"), "Say why the recording is deleted.");
      $("qa-delete-reason").focus();
      return;
    }
    const id = current.id;
    const done = await withBusy(button, async () => {
      try {
        await api.del(`/api/recordings/${id}?reason=${encodeURIComponent(reason)}`);
        return true;
      } catch (error) {
        setText($("qa-delete-error"), error.detail || String(error));
        return undefined;
      }
    });
    if (!done) return;
    dialog.close();
    notify("The recording is deleted.", { kind: "success", ms: 4000 });
    this.onDeleted(id);
  }
}

/** A dialog's form: "cancel" closes it, anything else runs `onConfirm` (which closes it). */
function wireDialog(dialog, onConfirm) {
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const submitter = event.submitter;
    if (submitter && submitter.value === "cancel") {
      dialog.close();
      return;
    }
    await onConfirm(dialog, submitter);
  });
}

function describeDetail(detail) {
  if (!detail) return "";
  if (typeof detail !== "object") return String(detail);
  return Object.entries(detail)
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" · ");
}
