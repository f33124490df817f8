// tones.js: the page's local sounds, made with OscillatorNodes (no audio files): the ring of
// an offered call (North American two-tone 440 + 480 Hz, 2 s on, 4 s off) and the short DTMF
// beep a keypad press gives. Owns nothing but scheduling on a given AudioContext and output
// node; when to ring and which digit was pressed is the caller's business.

const RING_ON_S = 2;
const RING_OFF_S = 4;
const RING_SCHEDULE_S = 180; // cycles scheduled up front; an offer never rings this long
const RAMP_S = 0.015; // fades, so tones start and stop without clicks

export const DTMF_FREQUENCIES = {
  1: [697, 1209], 2: [697, 1336], 3: [697, 1477],
  4: [770, 1209], 5: [770, 1336], 6: [770, 1477],
  7: [852, 1209], 8: [852, 1336], 9: [852, 1477],
  "*": [941, 1209], 0: [941, 1336], "#": [941, 1477],
};

function pair(ctx, destination, [f1, f2]) {
  const gain = ctx.createGain();
  gain.gain.value = 0;
  gain.connect(destination);
  const oscillators = [f1, f2].map((frequency) => {
    const osc = ctx.createOscillator();
    osc.type = "sine";
    osc.frequency.value = frequency;
    osc.connect(gain);
    return osc;
  });
  return { gain, oscillators };
}

export class Ringer {
  constructor(ctx, destination, { level = 0.12 } = {}) {
    this.ctx = ctx;
    this.destination = destination;
    this.level = level;
    this.voice = null;
  }

  get ringing() {
    return this.voice !== null;
  }

  start() {
    if (this.voice) return;
    const ctx = this.ctx;
    const voice = pair(ctx, this.destination, [440, 480]);
    const g = voice.gain.gain;
    const t0 = ctx.currentTime + 0.02;
    for (let t = t0; t < t0 + RING_SCHEDULE_S; t += RING_ON_S + RING_OFF_S) {
      g.setValueAtTime(0, t);
      g.linearRampToValueAtTime(this.level, t + RAMP_S);
      g.setValueAtTime(this.level, t + RING_ON_S - RAMP_S);
      g.linearRampToValueAtTime(0, t + RING_ON_S);
    }
    for (const osc of voice.oscillators) {
      osc.start(t0);
      osc.stop(t0 + RING_SCHEDULE_S);
    }
    this.voice = voice;
  }

  stop() {
    const voice = this.voice;
    if (!voice) return;
    this.voice = null;
    const now = this.ctx.currentTime;
    const g = voice.gain.gain;
    g.cancelScheduledValues(now);
    g.setValueAtTime(g.value, now);
    g.linearRampToValueAtTime(0, now + RAMP_S);
    for (const osc of voice.oscillators) {
      try {
        osc.stop(now + RAMP_S + 0.01);
      } catch {
        // already stopped
      }
    }
    setTimeout(() => voice.gain.disconnect(), 200);
  }
}

/** A short local DTMF beep (feedback only: the digit itself is sent by the server). */
export function playDtmf(ctx, destination, digit, { ms = 120, level = 0.08 } = {}) {
  const freqs = DTMF_FREQUENCIES[digit];
  if (!freqs) return;
  const voice = pair(ctx, destination, freqs);
  const t0 = ctx.currentTime + 0.005;
  const t1 = t0 + ms / 1000;
  const g = voice.gain.gain;
  g.setValueAtTime(0, t0);
  g.linearRampToValueAtTime(level, t0 + 0.005);
  g.setValueAtTime(level, t1 - 0.005);
  g.linearRampToValueAtTime(0, t1);
  for (const osc of voice.oscillators) {
    osc.start(t0);
    osc.stop(t1 + 0.01);
  }
  voice.oscillators[0].onended = () => voice.gain.disconnect();
}
