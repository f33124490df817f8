// qa-scorecard.js: the scorecard panel of the QA page. Owns choosing among the active
// scorecards, one control per question (yes/no/N/A, or a scale 0..max and N/A), the live score
// (the server's formula, docs/qa-api.md: 100 × Σ weight × answer/top ÷ Σ weight over the
// answered questions), saving the reviewer's evaluation (PUT) or removing it (DELETE), and the
// list of everyone's evaluations of the recording. Knows nothing of the player or comments.

import * as api from "./api.js";
import { byTestId, formatWhen, h, notify, setText, show, withBusy } from "./ui.js";

const NA = "na";

/** {score: 0..100 or null, answered, applicable, total} for `answers` ({id: value|null}). */
export function scoreOf(card, answers) {
  let weighted = 0;
  let weights = 0;
  let answered = 0;
  let applicable = 0;
  const questions = (card && card.questions) || [];
  for (const q of questions) {
    if (!(q.id in answers)) continue;
    answered += 1;
    const value = answers[q.id];
    if (value === null) continue;
    applicable += 1;
    const top = q.kind === "scale" ? Number(q.max) || 1 : 1;
    const weight = Number(q.weight) || 1;
    weighted += weight * (Number(value) / top);
    weights += weight;
  }
  return { score: weights ? (100 * weighted) / weights : null, answered, applicable, total: questions.length };
}

export function formatScore(score) {
  return score === null || score === undefined || !Number.isFinite(Number(score)) ? "—" : Number(score).toFixed(1);
}

/** "good" (80+), "fair" (60..80), "poor" (under 60): how a score is coloured. */
export function scoreBand(score) {
  if (score === null || score === undefined) return "";
  return score >= 80 ? "good" : score >= 60 ? "fair" : "poor";
}

export class ScorecardPanel {
  /** root: the panel; onSaved(evaluation|null) after a save or a removal. */
  constructor(root, { onSaved = () => {} } = {}) {
    const $ = (id) => byTestId(id, root);
    this.el = {
      select: $("qa-scorecard-select"),
      description: $("qa-scorecard-description"),
      form: $("qa-score-form"),
      questions: $("qa-questions"),
      preview: $("qa-score-preview"),
      answered: $("qa-score-answered"),
      bar: root.querySelector(".score-bar-fill"),
      saved: $("qa-score-value"),
      savedAt: $("qa-score-saved-at"),
      notes: $("qa-score-notes"),
      error: $("qa-score-error"),
      save: $("qa-score-save"),
      remove: $("qa-score-delete"),
      list: $("qa-evaluations"),
      empty: $("qa-evaluations-empty"),
    };
    this.onSaved = onSaved;
    this.cards = [];
    this.recording = null;
    this.me = "";
    this.answers = {};
    this.el.select.addEventListener("change", () => this.chooseCard(Number(this.el.select.value)));
    this.el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.el.remove.addEventListener("click", () => this.removeOwn());
  }

  setCards(cards) {
    this.cards = (Array.isArray(cards) ? cards : []).filter((card) => card.active !== false);
    const options = this.cards.map((card) => h("option", { value: String(card.id) }, card.name));
    if (!options.length) options.push(h("option", { value: "" }, "No active scorecard"));
    this.el.select.replaceChildren(...options);
    this.el.select.disabled = !this.cards.length;
    if (this.recording) this.show(this.recording, this.me);
  }

  get card() {
    return this.cards.find((card) => card.id === Number(this.el.select.value)) || null;
  }

  own(cardId) {
    const evaluations = (this.recording && this.recording.evaluations) || [];
    return evaluations.find((e) => e.reviewer === this.me && e.scorecard_id === cardId) || null;
  }

  /** A recording was opened (or refreshed): pick the card the reviewer used, else the first. */
  show(recording, me) {
    const sameRecording = this.recording && this.recording.id === recording.id;
    this.recording = recording;
    this.me = me;
    let cardId = sameRecording && this.card ? this.card.id : null;
    if (cardId === null) {
      const mine = (recording.evaluations || []).find(
        (e) => e.reviewer === me && this.cards.some((card) => card.id === e.scorecard_id),
      );
      cardId = mine ? mine.scorecard_id : this.cards.length ? this.cards[0].id : null;
    }
    if (cardId !== null) this.el.select.value = String(cardId);
    if (sameRecording) {
      this.renderSaved();
      this.renderList();
    } else {
      this.chooseCard(cardId);
    }
  }

  chooseCard(cardId) {
    const card = this.cards.find((c) => c.id === cardId) || null;
    const mine = card ? this.own(card.id) : null;
    this.answers = mine ? { ...mine.answers } : {};
    this.el.notes.value = mine ? mine.notes || "" : "";
    setText(this.el.error, "");
    setText(this.el.description, card ? card.description : "");
    this.renderQuestions(card);
    this.renderPreview();
    this.renderSaved();
    this.renderList();
  }

  renderQuestions(card) {
    const nodes = ((card && card.questions) || []).map((q, index) => {
      const name = `q-${q.id}`;
      const values =
        q.kind === "scale"
          ? Array.from({ length: (Number(q.max) || 1) + 1 }, (_, n) => ({ value: String(n), text: String(n) }))
          : [
              { value: "1", text: "Yes" },
              { value: "0", text: "No" },
            ];
      values.push({ value: NA, text: "N/A", title: "Not applicable: left out of the score" });
      const current = q.id in this.answers ? (this.answers[q.id] === null ? NA : String(this.answers[q.id])) : null;
      const choices = values.map((choice) => {
        const id = `${name}-${choice.value}`;
        return [
          h("input", {
            type: "radio",
            class: "seg-input",
            id,
            name,
            value: choice.value,
            checked: current === choice.value,
            onchange: () => {
              this.answers[q.id] = choice.value === NA ? null : Number(choice.value);
              this.renderPreview();
            },
          }),
          h(
            "label",
            {
              for: id,
              class: `seg${choice.value === NA ? " seg-na" : ""}`,
              "data-testid": `qa-answer-${q.id}-${choice.value}`,
              title: choice.title || null,
            },
            choice.text,
          ),
        ];
      });
      const scale = q.kind === "scale" ? ` (0–${q.max})` : "";
      const textId = `${name}-text`;
      return h(
        "div",
        {
          class: "question",
          role: "radiogroup",
          "aria-labelledby": textId,
          "data-testid": "qa-question",
          dataset: { questionId: q.id, kind: q.kind },
        },
        h(
          "div",
          { class: "question-text", id: textId },
          h("span", { class: "question-n" }, `${index + 1}.`),
          h("span", { class: "question-words" }, `${q.text}${scale}`),
          h("span", { class: "question-weight", title: `Weight ${q.weight}` }, `×${q.weight}`),
        ),
        h("div", { class: `segmented${q.kind === "scale" ? " segmented-scale" : ""}` }, choices),
      );
    });
    this.el.questions.replaceChildren(...nodes);
    const usable = Boolean(card) && !!this.recording;
    this.el.save.disabled = !usable;
    this.el.notes.disabled = !usable;
  }

  renderPreview() {
    const card = this.card;
    const result = scoreOf(card, this.answers);
    setText(this.el.preview, formatScore(result.score));
    this.el.preview.dataset.band = scoreBand(result.score);
    this.el.bar.style.width = `${result.score === null ? 0 : result.score}%`;
    this.el.bar.dataset.band = scoreBand(result.score);
    setText(this.el.answered, card ? `${result.answered} of ${result.total} answered` : "");
  }

  renderSaved() {
    const card = this.card;
    const mine = card ? this.own(card.id) : null;
    setText(this.el.saved, mine ? formatScore(mine.score) : "—");
    this.el.saved.dataset.band = mine ? scoreBand(mine.score) : "";
    setText(this.el.savedAt, mine ? `by you, ${formatWhen(mine.updated_at)}` : "not saved yet");
    show(this.el.remove, Boolean(mine));
  }

  renderList() {
    const evaluations = [...((this.recording && this.recording.evaluations) || [])].sort((a, b) =>
      String(b.updated_at || "").localeCompare(String(a.updated_at || "")),
    );
    const items = evaluations.map((e) =>
      h(
        "li",
        { class: "evaluation", "data-testid": "qa-evaluation", dataset: { reviewer: e.reviewer } },
        h("span", { class: "eval-score", dataset: { band: scoreBand(e.score) } }, formatScore(e.score)),
        h(
          "div",
          { class: "eval-main" },
          h(
            "span",
            { class: "eval-who" },
            e.reviewer === this.me ? `${e.reviewer} (you)` : e.reviewer,
            h("span", { class: "muted" }, ` · ${e.scorecard || "scorecard"} · ${formatWhen(e.updated_at)}`),
          ),
          e.notes ? h("span", { class: "eval-notes" }, e.notes) : null,
        ),
      ),
    );
    this.el.list.replaceChildren(...items);
    show(this.el.empty, !items.length);
  }

  async save() {
    const card = this.card;
    if (!card || !this.recording) return;
    const missing = card.questions.filter((q) => !(q.id in this.answers));
    if (missing.length) {
      setText(this.el.error, `Answer every question (N/A where it does not apply): ${missing.length} left.`);
      const first = this.el.questions.querySelector(`[data-question-id="${CSS.escape(missing[0].id)}"] input`);
      if (first) first.focus();
      return;
    }
    if (scoreOf(card, this.answers).score === null) {
      setText(this.el.error, "Every answer is N/A: there is nothing to score.");
      return;
    }
    setText(this.el.error, "");
    const id = this.recording.id;
    const body = { answers: { ...this.answers }, notes: this.el.notes.value.trim() };
    const saved = await withBusy(this.el.save, async () => {
      try {
        return await api.put(`/api/recordings/${id}/evaluations/${card.id}`, body);
      } catch (error) {
        setText(this.el.error, error.detail || String(error));
        return undefined;
      }
    });
    if (!saved || !this.recording || this.recording.id !== id) return;
    const others = (this.recording.evaluations || []).filter(
      (e) => !(e.reviewer === saved.reviewer && e.scorecard_id === saved.scorecard_id),
    );
    this.recording.evaluations = [...others, saved];
    this.renderSaved();
    this.renderList();
    notify(`Saved: ${formatScore(saved.score)}`, { kind: "success", ms: 3000 });
    this.onSaved(saved);
  }

  async removeOwn() {
    const card = this.card;
    if (!card || !this.recording) return;
    const id = this.recording.id;
    const done = await withBusy(
      this.el.remove,
      async () => {
        await api.del(`/api/recordings/${id}/evaluations/${card.id}`);
        return true;
      },
      "Could not remove the score",
    );
    if (!done || !this.recording || this.recording.id !== id) return;
    this.recording.evaluations = (this.recording.evaluations || []).filter(
      (e) => !(e.reviewer === this.me && e.scorecard_id === card.id),
    );
    this.chooseCard(card.id);
    this.onSaved(null);
  }
}
