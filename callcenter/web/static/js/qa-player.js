// qa-player.js: the QA page's player. Owns the <audio> element's source, the waveform canvas
// drawn from the recording's `peaks` (the caller above the middle line, everyone else below),
// the playhead that follows the audio, seeking (click or drag on the waveform, arrow keys),
// the shaded stretches (on hold, recording paused), the timeline event markers under the
// waveform and the comment pins above it. Knows the RecordingInfo shape (docs/qa-api.md),
// nothing of HTTP, scorecards or the rest of the page.

import { formatDuration, h, setText, titleCase } from "./ui.js";

const AXIS = 16; // px under the waves for the time axis
const BAR = 2; // px per bar, plus GAP between bars
const GAP = 1;
const MARKER_ROW = 22; // px per row of event markers
const TICKS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

// Kinds in a recording's timeline (docs/qa-api.md) and how they are shown.
const KIND_LABELS = {
  hold: "Hold",
  resume: "Resume",
  paused: "Rec. paused",
  resumed: "Rec. resumed",
  transferred: "Transfer",
  connected: "Connected",
  consult: "Consult",
  "disk-failed": "Disk failed",
  "disk-recovered": "Disk back",
};
const KIND_TONES = {
  hold: "warn",
  resume: "warn",
  paused: "grey",
  resumed: "grey",
  transferred: "accent",
  connected: "accent",
  consult: "accent",
  "disk-failed": "danger",
  "disk-recovered": "danger",
};

/** Seconds into the file of a timeline event: `at` (docs/qa-api.md), or `at_seconds` as the
 * recorder writes it. */
export function eventAt(event) {
  const at = event && (event.at ?? event.at_seconds);
  return at === null || at === undefined || at === "" ? NaN : Number(at);
}

export function kindLabel(kind) {
  return KIND_LABELS[kind] || titleCase(kind);
}

/** "1:02.5": a position with tenths (comments and markers are finer than a second). */
export function formatPosition(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  const tenths = Math.floor((s % 1) * 10);
  return `${formatDuration(s)}.${tenths}`;
}

/** [{from, to}] stretches between an opening and a closing kind (an open one runs to the end). */
function stretches(timeline, open, close, end) {
  const out = [];
  let from = null;
  for (const event of timeline) {
    if (event.kind === open && from === null) from = event.at;
    else if (event.kind === close && from !== null) {
      out.push({ from, to: event.at });
      from = null;
    }
  }
  if (from !== null) out.push({ from, to: end });
  return out;
}

export class Player {
  /**
   * elements: {audio, canvas, markers, pins, time}; onTime(seconds) is called as the playhead
   * moves; onPin(comment) when a comment pin is clicked (after seeking to it).
   */
  constructor(elements, { onTime = () => {}, onPin = () => {} } = {}) {
    Object.assign(this, elements);
    this.onTime = onTime;
    this.onPin = onPin;
    this.info = null;
    this.peaks = [[], []];
    this.top = 1;
    this.timeline = [];
    this.comments = [];
    this.duration = 0;
    this.hover = null;
    this.scrubbing = false;
    this.frame = 0;
    this.colors = null;
    this.wire();
  }

  wire() {
    const { audio, canvas } = this;
    audio.addEventListener("loadedmetadata", () => {
      if (!this.info || !(this.info.duration_seconds > 0)) {
        if (Number.isFinite(audio.duration)) this.setDuration(audio.duration);
      }
      this.tick();
    });
    audio.addEventListener("timeupdate", () => this.tick());
    audio.addEventListener("seeked", () => this.tick());
    audio.addEventListener("play", () => this.loop());
    audio.addEventListener("pause", () => this.tick());
    audio.addEventListener("ended", () => this.tick());

    canvas.addEventListener("pointerdown", (event) => {
      if (!this.duration || event.button !== 0) return;
      this.scrubbing = true;
      canvas.setPointerCapture(event.pointerId);
      this.seek(this.timeAt(event));
    });
    canvas.addEventListener("pointermove", (event) => {
      this.hover = this.timeAt(event);
      if (this.scrubbing) this.seek(this.hover);
      else this.draw();
    });
    const stop = (event) => {
      this.scrubbing = false;
      if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("pointerleave", () => {
      this.hover = null;
      this.draw();
    });
    canvas.addEventListener("keydown", (event) => this.key(event));

    new ResizeObserver(() => {
      this.draw();
      this.placeMarkers();
    }).observe(canvas);
    const scheme = matchMedia("(prefers-color-scheme: dark)");
    scheme.addEventListener("change", () => {
      this.colors = null;
      this.draw();
    });
  }

  // --- loading ---------------------------------------------------------------------------

  load(info) {
    this.info = info;
    this.peaks = Array.isArray(info.peaks) && info.peaks.length ? info.peaks : [[], []];
    this.top = Math.max(1, ...this.peaks.flat().map(Number).filter(Number.isFinite));
    // Normalised: every event with a numeric `at`, in order.
    this.timeline = (Array.isArray(info.timeline) ? info.timeline : [])
      .map((e) => ({ ...e, at: eventAt(e) }))
      .filter((e) => Number.isFinite(e.at))
      .sort((a, b) => a.at - b.at);
    this.comments = Array.isArray(info.comments) ? info.comments : [];
    this.duration = Number(info.duration_seconds) > 0 ? Number(info.duration_seconds) : 0;
    this.audio.pause();
    this.audio.src = `/api/recordings/${encodeURIComponent(info.id)}/audio`;
    this.audio.load();
    this.canvas.setAttribute("aria-valuemax", String(Math.round(this.duration)));
    this.renderMarkers();
    this.renderPins();
    this.tick();
  }

  /** The recording is gone (deleted, or another one is being opened). */
  unload() {
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    this.info = null;
    this.peaks = [[], []];
    this.timeline = [];
    this.comments = [];
    this.duration = 0;
    this.markers.replaceChildren();
    this.pins.replaceChildren();
    this.draw();
  }

  setDuration(seconds) {
    this.duration = seconds;
    this.canvas.setAttribute("aria-valuemax", String(Math.round(seconds)));
    this.renderMarkers();
    this.renderPins();
  }

  setComments(comments) {
    this.comments = comments;
    this.renderPins();
    this.draw();
  }

  get currentTime() {
    return this.audio.currentTime || 0;
  }

  seek(seconds, { play = false } = {}) {
    const end = this.duration || (Number.isFinite(this.audio.duration) ? this.audio.duration : 0);
    const to = Math.min(Math.max(0, Number(seconds) || 0), end || 0);
    this.audio.currentTime = to;
    this.tick(to);
    if (play) this.audio.play().catch(() => {});
  }

  toggle() {
    if (this.audio.paused) this.audio.play().catch(() => {});
    else this.audio.pause();
  }

  // --- playhead --------------------------------------------------------------------------

  tick(at = this.currentTime) {
    setText(this.time, `${formatDuration(at)} / ${formatDuration(this.duration)}`);
    this.canvas.setAttribute("aria-valuenow", String(Math.round(at)));
    this.canvas.setAttribute("aria-valuetext", `${formatDuration(at)} of ${formatDuration(this.duration)}`);
    this.onTime(at);
    this.draw(at);
  }

  loop() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.draw();
      if (!this.audio.paused && !this.audio.ended) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  timeAt(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = Math.min(Math.max(0, event.clientX - rect.left), rect.width);
    return rect.width ? (x / rect.width) * this.duration : 0;
  }

  key(event) {
    if (!this.duration) return;
    const now = this.currentTime;
    const moves = {
      ArrowLeft: now - 5,
      ArrowRight: now + 5,
      ArrowDown: now - 1,
      ArrowUp: now + 1,
      PageDown: now - 30,
      PageUp: now + 30,
      Home: 0,
      End: this.duration,
    };
    if (event.key in moves) {
      event.preventDefault();
      this.seek(moves[event.key]);
    } else if (event.key === " " || event.key === "Enter" || event.key === "k") {
      event.preventDefault();
      this.toggle();
    }
  }

  // --- markers and pins (DOM, so they are focusable and have tooltips) ---------------------

  renderMarkers() {
    const nodes = this.timeline.map((event) => {
      const at = event.at;
      const label = kindLabel(event.kind);
      const by = event.by ? ` by ${event.by}` : "";
      const title = `${label}${by} at ${formatPosition(at)}`;
      return h(
        "button",
        {
          type: "button",
          class: "marker",
          role: "listitem",
          "data-testid": "qa-timeline-event",
          dataset: { kind: event.kind, tone: KIND_TONES[event.kind] || "grey", at: String(at) },
          title,
          "aria-label": title,
          onclick: () => this.seek(at),
        },
        h("span", { class: "marker-dot", "aria-hidden": "true" }),
        h("span", { class: "marker-label" }, label),
      );
    });
    this.markers.replaceChildren(...nodes);
    this.placeMarkers();
  }

  /** Position the markers along the waveform; ones that would overlap go on another row. */
  placeMarkers() {
    const width = this.canvas.clientWidth;
    const rowsEnd = [];
    for (const node of this.markers.children) {
      const at = Number(node.dataset.at);
      const x = this.duration ? (at / this.duration) * width : 0;
      node.style.left = `${x}px`;
      const size = node.offsetWidth || 80;
      const flip = x + size > width; // near the end: the label goes left of the line
      node.classList.toggle("flip", flip);
      const from = flip ? x - size : x;
      let row = rowsEnd.findIndex((end) => end + 4 <= from);
      if (row === -1) {
        row = rowsEnd.length;
        rowsEnd.push(0);
      }
      rowsEnd[row] = from + size;
      node.style.top = `${row * MARKER_ROW}px`;
    }
    this.markers.style.height = `${Math.max(1, rowsEnd.length) * MARKER_ROW}px`;
  }

  renderPins() {
    const nodes = this.comments.map((comment) => {
      const at = Number(comment.at_seconds) || 0;
      const pct = this.duration ? Math.min(100, (at / this.duration) * 100) : 0;
      const title = `${comment.author} at ${formatPosition(at)}: ${comment.text}`;
      return h(
        "button",
        {
          type: "button",
          class: "pin",
          "data-testid": "qa-comment-pin",
          dataset: { commentId: String(comment.id) },
          style: `left: ${pct}%`,
          title,
          "aria-label": `Comment by ${title}`,
          onclick: () => {
            this.seek(at);
            this.onPin(comment);
          },
        },
        h("span", { class: "pin-head", "aria-hidden": "true" }, String(comment.author || "?").slice(0, 1).toUpperCase()),
      );
    });
    this.pins.replaceChildren(...nodes);
  }

  // --- the canvas ------------------------------------------------------------------------

  palette() {
    if (this.colors) return this.colors;
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    this.colors = {
      bg: v("--surface-2"),
      line: v("--border-strong"),
      text: v("--muted"),
      faint: v("--faint"),
      caller: v("--accent"),
      other: v("--violet"),
      hold: v("--warn"),
      paused: v("--grey"),
      comment: v("--ok"),
      head: v("--text"),
      danger: v("--danger"),
    };
    return this.colors;
  }

  draw(at = this.currentTime) {
    const canvas = this.canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const c = this.palette();
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = c.bg;
    ctx.fillRect(0, 0, width, height);

    const waves = height - AXIS;
    const mid = waves / 2;
    const half = mid - 8;
    const d = this.duration;
    const xOf = (t) => (d ? (t / d) * width : 0);

    // Stretches: on hold (amber), recording paused (grey, hatched).
    const end = d || 0;
    for (const s of stretches(this.timeline, "hold", "resume", end)) {
      ctx.fillStyle = withAlpha(c.hold, 0.13);
      ctx.fillRect(xOf(s.from), 0, Math.max(1, xOf(s.to) - xOf(s.from)), waves);
    }
    for (const s of stretches(this.timeline, "paused", "resumed", end)) {
      const x0 = xOf(s.from);
      const w = Math.max(1, xOf(s.to) - x0);
      ctx.fillStyle = withAlpha(c.paused, 0.2);
      ctx.fillRect(x0, 0, w, waves);
      ctx.save();
      ctx.beginPath();
      ctx.rect(x0, 0, w, waves);
      ctx.clip();
      ctx.strokeStyle = withAlpha(c.paused, 0.45);
      ctx.lineWidth = 1;
      for (let x = x0 - waves; x < x0 + w; x += 7) {
        ctx.moveTo(x, waves);
        ctx.lineTo(x + waves, 0);
      }
      ctx.stroke();
      ctx.restore();
    }

    // The waves: one bar per BAR+GAP px; each the loudest of the peaks it covers.
    const played = xOf(at);
    const [upper, lower] = [this.peaks[0] || [], this.peaks[1] || []];
    const bars = Math.max(1, Math.floor(width / (BAR + GAP)));
    const level = (list, i) => {
      if (!list.length) return 0;
      const from = Math.floor((i * list.length) / bars);
      const to = Math.max(from + 1, Math.floor(((i + 1) * list.length) / bars));
      let top = 0;
      for (let k = from; k < to && k < list.length; k++) top = Math.max(top, Number(list[k]) || 0);
      // A gentle curve: quiet speech stays visible next to a loud tone.
      return Math.pow(top / this.top, 0.7);
    };
    for (let i = 0; i < bars; i++) {
      const x = i * (BAR + GAP);
      const done = x + BAR <= played;
      const a = level(upper, i) * half;
      const b = level(lower, i) * half;
      ctx.fillStyle = withAlpha(c.caller, done ? 1 : 0.5);
      ctx.fillRect(x, mid - Math.max(0.5, a), BAR, Math.max(0.5, a));
      ctx.fillStyle = withAlpha(c.other, done ? 1 : 0.5);
      ctx.fillRect(x, mid, BAR, Math.max(0.5, b));
    }
    ctx.fillStyle = c.line;
    ctx.fillRect(0, Math.round(mid), width, 1);

    // Event lines (thin) and comment lines (dashed).
    for (const event of this.timeline) {
      ctx.fillStyle = withAlpha(toneColor(c, KIND_TONES[event.kind]), 0.8);
      ctx.fillRect(Math.round(xOf(event.at)), 0, 1, waves);
    }
    ctx.save();
    ctx.setLineDash([3, 3]);
    ctx.strokeStyle = c.comment;
    ctx.lineWidth = 1.5;
    for (const comment of this.comments) {
      const x = Math.round(xOf(Number(comment.at_seconds))) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x, waves);
      ctx.stroke();
    }
    ctx.restore();

    // Channel labels.
    ctx.font = "600 11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    label(ctx, "Caller", 8, 6, c.caller, c.bg);
    ctx.textBaseline = "bottom";
    label(ctx, "Agent and others", 8, waves - 6, c.other, c.bg);

    // The time axis.
    ctx.fillStyle = c.line;
    ctx.fillRect(0, waves, width, 1);
    if (d) {
      const step = TICKS.find((t) => (t / d) * width >= 70) || TICKS[TICKS.length - 1];
      ctx.fillStyle = c.faint;
      ctx.font = "10.5px system-ui, sans-serif";
      ctx.textBaseline = "top";
      for (let t = 0; t <= d; t += step) {
        const x = Math.round(xOf(t));
        ctx.fillRect(x, waves, 1, 4);
        ctx.textAlign = t === 0 ? "left" : "center";
        if (x < width - 20) ctx.fillText(formatDuration(t), t === 0 ? x + 2 : x, waves + 4);
      }
      ctx.textAlign = "left";
    }

    // Hover position and the playhead.
    if (this.hover !== null && d) {
      const x = Math.round(xOf(this.hover)) + 0.5;
      ctx.fillStyle = withAlpha(c.head, 0.35);
      ctx.fillRect(x, 0, 1, waves);
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.textBaseline = "top";
      const text = formatDuration(this.hover);
      const tw = ctx.measureText(text).width;
      const tx = Math.min(Math.max(2, x - tw / 2 - 4), width - tw - 10);
      ctx.fillStyle = c.head;
      roundRect(ctx, tx, waves - 24, tw + 8, 17, 4);
      ctx.fill();
      ctx.fillStyle = c.bg;
      ctx.fillText(text, tx + 4, waves - 21);
    }
    if (d) {
      const x = Math.min(width - 1, Math.round(played));
      ctx.fillStyle = c.head;
      ctx.fillRect(x - 1, 0, 2, waves);
      ctx.beginPath();
      ctx.moveTo(x - 5, 0);
      ctx.lineTo(x + 5, 0);
      ctx.lineTo(x, 6);
      ctx.closePath();
      ctx.fill();
    }
  }
}

function toneColor(c, tone) {
  return { warn: c.hold, grey: c.paused, accent: c.caller, danger: c.danger }[tone] || c.paused;
}

function label(ctx, text, x, y, color, bg) {
  const w = ctx.measureText(text).width;
  const top = ctx.textBaseline === "top" ? y - 2 : y - 13;
  ctx.fillStyle = withAlpha(bg, 0.85);
  roundRect(ctx, x - 4, top, w + 8, 16, 4);
  ctx.fill();
  ctx.fillStyle = color;
  ctx.fillText(text, x, y);
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

/** A CSS colour (as custom properties give it: #rgb, #rrggbb or rgb()) with an alpha. */
function withAlpha(color, alpha) {
  if (alpha >= 1) return color;
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
  if (hex) {
    let v = hex[1];
    if (v.length === 3) v = [...v].map((ch) => ch + ch).join("");
    const n = parseInt(v, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  return `color-mix(in srgb, ${color} ${Math.round(alpha * 100)}%, transparent)`;
}
