// worklet.js: the softphone's AudioWorkletProcessor ("softphone"), on the audio thread.
// Owns both real-time paths. Capture: microphone at the context rate → low-pass and resample
// to 8 kHz → 160-sample frames → G.711 µ-law with the 8-byte header → posted (transferred)
// to the main thread, only while capture is on. Playback: decoded 8 kHz frames posted by the
// main thread → adaptive playout buffer → resample to the context rate → the output (plus the
// speaker-test tone, mixed in at 8 kHz so it takes the same path). Reports the mic level ten
// times a second and buffer statistics once a second. Knows nothing of sockets or the DOM.

import { FRAME_SAMPLES, PlayoutBuffer, RATE, Resampler, buildUlawFrame, floatToInt16 } from "./dsp.js";

const LEVEL_EVERY_S = 0.1;
const STATS_EVERY_S = 1;

class SoftphoneProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.rate = sampleRate; // AudioWorkletGlobalScope global
    this.down = new Resampler(this.rate, RATE);
    this.up = new Resampler(RATE, this.rate);
    this.playout = new PlayoutBuffer();
    this.capturing = false;
    this.seq = 0;
    this.framesOut = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.frameLen = 0;
    this.captured = new Float32Array(256);
    this.silence = new Float32Array(128);
    this.wire = new Float32Array(256); // 8 kHz samples to play this quantum
    this.incoming = new Float32Array(FRAME_SAMPLES);
    this.tone = null; // {step, phase, left, amp}
    this.levelSum = 0;
    this.levelPeak = 0;
    this.levelCount = 0;
    this.levelDue = Math.round(this.rate * LEVEL_EVERY_S);
    this.statsDue = Math.round(this.rate * STATS_EVERY_S);
    this.sinceLevel = 0;
    this.sinceStats = 0;
    this.hasInput = false;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    switch (message.type) {
      case "audio": {
        // An Int16Array(160) of 8 kHz samples (already decoded by the main thread).
        const samples = message.samples;
        const incoming = this.incoming.length === samples.length ? this.incoming : new Float32Array(samples.length);
        for (let i = 0; i < samples.length; i++) incoming[i] = samples[i] / 32768;
        this.playout.push(incoming);
        break;
      }
      case "capture":
        if (message.on && !this.capturing) {
          this.down.reset();
          this.frameLen = 0;
        }
        this.capturing = Boolean(message.on);
        break;
      case "reset": // a new call: empty buffer, target back to 40 ms
        this.playout.reset();
        this.up.reset();
        break;
      case "stop": // the call's audio ended on purpose: no underrun
        this.playout.stop();
        break;
      case "tone":
        this.tone = {
          step: (2 * Math.PI * message.freq) / RATE,
          phase: 0,
          left: Math.round((message.ms * RATE) / 1000),
          total: Math.round((message.ms * RATE) / 1000),
          amp: message.amp ?? 0.25,
        };
        break;
      default:
        break;
    }
  }

  process(inputs, outputs) {
    const channels = inputs[0];
    const input = channels && channels.length ? channels[0] : null;
    const output = outputs[0];
    const quantum = output[0] ? output[0].length : 128;
    this.hasInput = input !== null;

    // Level meter: RMS and peak of the raw microphone.
    if (input) {
      for (let i = 0; i < input.length; i++) {
        const v = input[i];
        this.levelSum += v * v;
        const a = v < 0 ? -v : v;
        if (a > this.levelPeak) this.levelPeak = a;
      }
      this.levelCount += input.length;
    }

    // Capture.
    if (this.capturing) {
      let src = input;
      if (!src) {
        if (this.silence.length !== quantum) this.silence = new Float32Array(quantum);
        src = this.silence; // no microphone: send silence so the far end's clock stays fed
      }
      const n = this.down.process(src, this.captured);
      for (let i = 0; i < n; i++) {
        this.frame[this.frameLen++] = floatToInt16(this.captured[i]);
        if (this.frameLen === FRAME_SAMPLES) {
          const buffer = buildUlawFrame(this.frame, this.seq);
          this.seq = (this.seq + 1) >>> 0;
          this.framesOut++;
          this.frameLen = 0;
          this.port.postMessage({ type: "frame", buffer }, [buffer]);
        }
      }
    }

    // Playback.
    if (output.length) {
      const need = this.up.inputNeeded(quantum);
      if (this.wire.length < need) this.wire = new Float32Array(need * 2);
      const wire = this.wire.subarray(0, need);
      this.playout.read(wire, need);
      const tone = this.tone;
      if (tone) {
        for (let i = 0; i < need && tone.left > 0; i++, tone.left--) {
          // 10 ms fade in and out: no clicks.
          const edge = Math.min(tone.total - tone.left, tone.left, 80) / 80;
          wire[i] += tone.amp * edge * Math.sin(tone.phase);
          tone.phase += tone.step;
        }
        if (tone.left <= 0) this.tone = null;
      }
      const main = output[0];
      this.up.process(wire, main, quantum);
      for (let c = 1; c < output.length; c++) output[c].set(main);
    }

    this.sinceLevel += quantum;
    if (this.sinceLevel >= this.levelDue) {
      this.sinceLevel = 0;
      const rms = this.levelCount ? Math.sqrt(this.levelSum / this.levelCount) : 0;
      this.port.postMessage({ type: "level", rms, peak: this.levelPeak, hasInput: this.hasInput });
      this.levelSum = 0;
      this.levelPeak = 0;
      this.levelCount = 0;
    }
    this.sinceStats += quantum;
    if (this.sinceStats >= this.statsDue) {
      this.sinceStats = 0;
      const p = this.playout;
      this.port.postMessage({
        type: "stats",
        underruns: p.underruns,
        overruns: p.overruns,
        bufferMs: p.bufferMs,
        depthMs: (p.depth * 1000) / RATE,
        targetMs: p.targetMs,
        playing: p.playing,
        dropped: p.dropped,
        inserted: p.inserted,
        framesCaptured: this.framesOut,
        rate: this.rate,
      });
    }
    return true;
  }
}

registerProcessor("softphone", SoftphoneProcessor);
