// qa-comments.js: the comments panel of the QA page. Owns the list of a recording's comments
// (ordered by their moment; a click seeks there), adding one pinned to the playhead's
// position (POST) and deleting one's own (a supervisor: any) (DELETE), per docs/qa-api.md.
// The player draws the pins; this module tells it when the list changes.

import * as api from "./api.js";
import { formatPosition } from "./qa-player.js";
import { byTestId, formatWhen, h, icon, setText, show, withBusy } from "./ui.js";

export class CommentsPanel {
  /**
   * root: the panel; player: the Player (its position, seeking, pins); onChange(comments)
   * after a comment is added or deleted.
   */
  constructor(root, player, { onChange = () => {} } = {}) {
    const $ = (id) => byTestId(id, root);
    this.el = {
      list: $("qa-comments"),
      empty: $("qa-comments-empty"),
      count: $("qa-comments-count"),
      form: $("qa-comment-form"),
      text: $("qa-comment-text"),
      at: $("qa-comment-at"),
      add: $("qa-comment-add"),
      error: $("qa-comment-error"),
    };
    this.player = player;
    this.onChange = onChange;
    this.recording = null;
    this.me = "";
    this.mayDeleteAny = false;
    this.el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
    this.el.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.add();
      }
    });
  }

  show(recording, me, { mayDeleteAny = false } = {}) {
    this.recording = recording;
    this.me = me;
    this.mayDeleteAny = mayDeleteAny;
    if (!Array.isArray(recording.comments)) recording.comments = [];
    setText(this.el.error, "");
    this.render();
  }

  /** The playhead moved: the next comment goes there. */
  position(seconds) {
    setText(this.el.at, formatPosition(seconds));
  }

  get comments() {
    return (this.recording && this.recording.comments) || [];
  }

  render() {
    const sorted = [...this.comments].sort(
      (a, b) => Number(a.at_seconds) - Number(b.at_seconds) || Number(a.id) - Number(b.id),
    );
    const items = sorted.map((comment) => {
      const at = Number(comment.at_seconds) || 0;
      const mine = comment.author === this.me;
      const seek = () => this.player.seek(at);
      const remove =
        mine || this.mayDeleteAny
          ? h(
              "button",
              {
                type: "button",
                class: "btn btn-icon comment-delete",
                "data-testid": "qa-comment-delete",
                "aria-label": `Delete the comment at ${formatPosition(at)}`,
                title: "Delete",
                onclick: (event) => {
                  event.stopPropagation();
                  this.remove(comment, event.currentTarget);
                },
              },
              icon("trash"),
            )
          : null;
      return h(
        "li",
        {
          class: `comment${mine ? " mine" : ""}`,
          "data-testid": "qa-comment",
          dataset: { commentId: String(comment.id), at: String(at) },
          onclick: seek,
        },
        h(
          "button",
          {
            type: "button",
            class: "comment-at",
            "data-testid": "qa-comment-seek",
            "aria-label": `Play from ${formatPosition(at)}`,
            onclick: (event) => {
              event.stopPropagation();
              seek();
            },
          },
          formatPosition(at),
        ),
        h(
          "div",
          { class: "comment-main" },
          h(
            "span",
            { class: "comment-meta" },
            h("strong", {}, mine ? "You" : comment.author),
            h("span", { class: "muted" }, ` · ${formatWhen(comment.created_at)}`),
          ),
          h("span", { class: "comment-text" }, comment.text),
        ),
        remove,
      );
    });
    this.el.list.replaceChildren(...items);
    show(this.el.empty, !items.length);
    setText(this.el.count, items.length ? String(items.length) : "");
  }

  /** Highlight a comment (its pin was clicked). */
  focus(comment) {
    const node = this.el.list.querySelector(`[data-comment-id="${CSS.escape(String(comment.id))}"]`);
    if (!node) return;
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
    node.scrollIntoView({ block: "nearest" });
  }

  async add() {
    if (!this.recording) return;
    const text = this.el.text.value.trim();
    if (!text) {
      setText(this.el.error, "Write the comment first.");
      this.el.text.focus();
      return;
    }
    setText(this.el.error, "");
    const id = this.recording.id;
    // The moment is where the playhead is now (a tenth of a second is fine enough).
    let at = Math.round(this.player.currentTime * 10) / 10;
    const duration = Number(this.recording.duration_seconds);
    if (duration > 0) at = Math.min(at, duration);
    const created = await withBusy(this.el.add, async () => {
      try {
        return await api.post(`/api/recordings/${id}/comments`, { at_seconds: at, text });
      } catch (error) {
        setText(this.el.error, error.detail || String(error));
        return undefined;
      }
    });
    if (!created || !this.recording || this.recording.id !== id) return;
    this.recording.comments = [...this.comments, created];
    this.el.text.value = "";
    this.render();
    this.onChange(this.recording.comments);
  }

  async remove(comment, button) {
    if (!this.recording) return;
    const id = this.recording.id;
    const done = await withBusy(
      button,
      async () => {
        await api.del(`/api/recordings/${id}/comments/${comment.id}`);
        return true;
      },
      "Could not delete the comment",
    );
    if (!done || !this.recording || this.recording.id !== id) return;
    this.recording.comments = this.comments.filter((c) => c.id !== comment.id);
    this.render();
    this.onChange(this.recording.comments);
  }
}
