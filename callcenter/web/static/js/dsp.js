// dsp.js: the softphone's pure signal processing, shared by the AudioWorklet (worklet.js),
// the main thread (audio.js) and a Node test harness. Owns G.711 µ-law and L16 coding, the
// 8-byte audio frame header of docs/agent-api.md, a streaming polyphase windowed-sinc
// resampler, the adaptive playout buffer, a sample ring and a Goertzel tone probe.
// Must not touch the DOM, Web Audio, sockets or timers: time is "samples read".

export const RATE = 8000; // the wire's sample rate
export const FRAME_SAMPLES = 160; // 20 ms at 8 kHz
export const HEADER_BYTES = 8;
export const CODEC_PCMU = 0;
export const CODEC_L16 = 1;

// --- G.711 µ-law -------------------------------------------------------------------------
//
// Bit-exact with the server (callcenter/media/g711.py, ITU-T G.191): 14-bit magnitude with a
// one's-complement for negatives, bias 33 (0x84 >> 2), clipped at 0x1FFF (i.e. |x| <= 32635),
// segment and mantissa inverted, sign bit set for x >= 0.

function buildUlawEncode() {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) {
    const x = i < 32768 ? i : i - 65536; // index is the uint16 view of the int16 sample
    const magnitude = x < 0 ? ~x : x;
    const biased = Math.min((magnitude >> 2) + 33, 0x1fff);
    let segment = 0;
    while (segment < 7 && biased >= 64 << segment) segment++;
    const mantissa = (biased >> (segment + 1)) & 0x0f;
    const code = 0x7f ^ ((segment << 4) | mantissa);
    table[i] = x >= 0 ? code | 0x80 : code;
  }
  return table;
}

function buildUlawDecode() {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    const inverted = ~code & 0xff;
    const segment = (inverted >> 4) & 0x07;
    const mantissa = inverted & 0x0f;
    const step = 8 << segment;
    const magnitude = (0x80 << segment) + step * mantissa + (step >> 1) - 4 * 33;
    table[code] = code < 0x80 ? -magnitude : magnitude;
  }
  return table;
}

export const ULAW_ENCODE = buildUlawEncode();
export const ULAW_DECODE = buildUlawDecode();

export function ulawEncodeSample(sample) {
  return ULAW_ENCODE[sample & 0xffff];
}

/** Float in [-1, 1) to int16, clipped (the usual ×32768 scale). */
export function floatToInt16(x) {
  const v = Math.round(x * 32768);
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/** Decode µ-law bytes into `out` (Int16Array), returns `out`. */
export function decodeUlaw(codes, out = new Int16Array(codes.length)) {
  for (let i = 0; i < codes.length; i++) out[i] = ULAW_DECODE[codes[i]];
  return out;
}

// --- Frames -------------------------------------------------------------------------------

/** One outgoing frame: header (version 1, PCMU, seq big-endian) + 160 µ-law bytes. */
export function buildUlawFrame(samples, seq) {
  const buffer = new ArrayBuffer(HEADER_BYTES + samples.length);
  const bytes = new Uint8Array(buffer);
  bytes[0] = 1;
  bytes[1] = CODEC_PCMU;
  new DataView(buffer).setUint32(4, seq >>> 0, false);
  for (let i = 0; i < samples.length; i++) bytes[HEADER_BYTES + i] = ULAW_ENCODE[samples[i] & 0xffff];
  return buffer;
}

/**
 * Parse an incoming frame. Returns {codec, seq, samples: Int16Array(160)} or null for anything
 * that is not a version-1 frame of exactly 20 ms (dropped and counted by the caller).
 */
export function parseFrame(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < HEADER_BYTES) return null;
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 1) return null;
  const view = new DataView(buffer);
  const seq = view.getUint32(4, false);
  const codec = bytes[1];
  if (codec === CODEC_PCMU && buffer.byteLength === HEADER_BYTES + FRAME_SAMPLES) {
    return { codec, seq, samples: decodeUlaw(bytes.subarray(HEADER_BYTES)) };
  }
  if (codec === CODEC_L16 && buffer.byteLength === HEADER_BYTES + 2 * FRAME_SAMPLES) {
    const samples = new Int16Array(FRAME_SAMPLES);
    for (let i = 0; i < FRAME_SAMPLES; i++) samples[i] = view.getInt16(HEADER_BYTES + 2 * i, true);
    return { codec, seq, samples };
  }
  return null;
}

// --- Resampling ---------------------------------------------------------------------------
//
// Band-limited interpolation (Smith, "Digital Audio Resampling"): output n sits at input
// position n·M/L for the reduced ratio L/M = outRate/inRate, so there are L fractional phases,
// each a precomputed FIR of 2·W taps. The kernel is a Kaiser-windowed sinc whose cutoff is a
// fraction of the lower Nyquist frequency, stretched by inRate/outRate when decimating (so
// 48 kHz → 8 kHz low-passes at ~3.7 kHz before it picks every 6th sample). Streaming: the
// input history is kept between calls; the delay is W input samples.

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

const MAX_PHASES = 4096; // beyond this (odd rates) the nearest phase is used

export class Resampler {
  /**
   * @param {number} inRate
   * @param {number} outRate
   * @param {{halfWidth?: number, cutoff?: number, beta?: number}} options
   *   halfWidth: kernel half-width in samples of the lower rate; cutoff: cycles per sample of
   *   the lower rate (0.5 = its Nyquist); beta: the Kaiser window's shape (6 ≈ 63 dB).
   */
  constructor(inRate, outRate, { halfWidth = 20, cutoff = 0.46, beta = 6 } = {}) {
    inRate = Math.round(inRate);
    outRate = Math.round(outRate);
    const g = gcd(inRate, outRate);
    this.L = outRate / g;
    this.M = inRate / g;
    this.inRate = inRate;
    this.outRate = outRate;
    const scale = Math.min(1, outRate / inRate); // kernel stretch when decimating
    this.W = Math.ceil(halfWidth / scale); // taps each side, in input samples
    const taps = 2 * this.W;
    this.phaseCount = Math.min(this.L, MAX_PHASES);
    this.phases = [];
    const i0beta = besselI0(beta);
    for (let p = 0; p < this.phaseCount; p++) {
      const frac = p / this.phaseCount; // output position = pos + frac
      const coeffs = new Float32Array(taps);
      let sum = 0;
      for (let j = 0; j < taps; j++) {
        // tap j reads input index pos - W + 1 + j; its distance from the output position:
        const d = (this.W - 1 - j + frac) * scale; // in lower-rate samples
        const x = d / halfWidth;
        let h = 0;
        if (Math.abs(x) < 1) {
          const arg = 2 * cutoff * d;
          const sinc = arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
          h = sinc * (besselI0(beta * Math.sqrt(1 - x * x)) / i0beta);
        }
        coeffs[j] = h;
        sum += h;
      }
      for (let j = 0; j < taps; j++) coeffs[j] /= sum; // unity gain at DC for every phase
      this.phases.push(coeffs);
    }
    this.buf = new Float32Array(taps + 8192);
    this.reset();
  }

  reset() {
    this.buf.fill(0);
    this.len = this.W; // W zeros of history: output 0 is centred on the first real sample
    this.num = this.W * this.L; // position of the next output, in 1/L input samples
  }

  /** Input samples still to be pushed before `n` more outputs can be produced. */
  inputNeeded(n) {
    const last = this.num + (n - 1) * this.M;
    const pos = Math.floor(last / this.L);
    return Math.max(0, pos + this.W + 1 - this.len);
  }

  /** Push `input` (any length up to 8192), write up to `maxOut` outputs to `out`; returns the count. */
  process(input, out, maxOut = out.length) {
    if (this.len + input.length > this.buf.length) {
      const grown = new Float32Array(this.len + input.length + 1024);
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
    const { L, M, W, buf, phases, phaseCount } = this;
    const taps = 2 * W;
    let num = this.num;
    let n = 0;
    while (n < maxOut) {
      const pos = Math.floor(num / L);
      if (pos + W >= this.len) break;
      const phase = num - pos * L;
      const coeffs = phases[phaseCount === L ? phase : Math.floor((phase * phaseCount) / L)];
      const base = pos - W + 1;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += coeffs[j] * buf[base + j];
      out[n++] = acc;
      num += M;
    }
    // Drop the history no future output can reach.
    const keepFrom = Math.max(0, Math.floor(num / L) - W + 1);
    if (keepFrom > 0) {
      buf.copyWithin(0, keepFrom, this.len);
      this.len -= keepFrom;
      num -= keepFrom * L;
    }
    this.num = num;
    return n;
  }
}

// --- Adaptive playout buffer (8 kHz, float samples) ---------------------------------------
//
// Holds what the socket delivered until the audio clock reads it. It starts playing once
// `target` is buffered (40 ms = 2 frames at first). Running dry is an underrun, counted when
// the stream resumes (so the natural end of a stream is not one), and each raises the target
// by 20 ms up to 100 ms. Arriving frames make the depth a sawtooth whose low point ("trough",
// the safety margin) sits one frame below the target when the stream is regular. If the trough
// stays above the target for two one-second windows the buffer plays ~2-4 % fast (two
// neighbours averaged into one sample) until it is back at the target; if a window's trough
// falls more than 30 ms below the target it plays 1 % slow (a sample repeated as an average)
// until the trough is back at target - 20 ms, so clock drift between the server and the sound
// card, or a slowly worsening network, never turns into underruns. Above `maxMs` the oldest
// samples are dropped down to the target (an overrun). Twenty seconds without an underrun
// lower the target by one step again.

export class PlayoutBuffer {
  constructor({
    rate = RATE,
    minTargetMs = 40,
    maxTargetMs = 100,
    stepMs = 20,
    maxMs = 300,
    windowMs = 1000,
    calmMs = 20000,
  } = {}) {
    const ms = (v) => Math.round((v * rate) / 1000);
    this.rate = rate;
    this.minTarget = ms(minTargetMs);
    this.maxTarget = ms(maxTargetMs);
    this.step = ms(stepMs);
    this.maxDepth = ms(maxMs);
    this.window = ms(windowMs);
    this.calm = ms(calmMs);
    this.ring = new Float32Array(1 << 14); // 2 s at 8 kHz, power of two
    this.mask = this.ring.length - 1;
    this.underruns = 0;
    this.overruns = 0;
    this.dropped = 0; // samples removed by fast play and overruns
    this.inserted = 0; // samples added by slow play
    this.reset();
  }

  /** Forget the stream (a new call): empty, not playing, target back to its minimum. */
  reset() {
    this.head = 0; // read index (monotonic)
    this.tail = 0; // write index (monotonic)
    this.target = this.minTarget;
    this.playing = false;
    this.starved = false;
    this.mode = 0; // -1 slow, 0 normal, 1 fast
    this.skipCounter = 0;
    this.sinceUnderrun = 0;
    this.aboveWindows = 0;
    this._resetWindow();
    this.lastWindowAvg = 0;
  }

  /** The stream ended on purpose (call over): empty without counting an underrun. */
  stop() {
    this.head = this.tail = 0;
    this.playing = false;
    this.starved = false;
    this.mode = 0;
  }

  get depth() {
    return this.tail - this.head;
  }

  get targetMs() {
    return (this.target * 1000) / this.rate;
  }

  /** Average depth over the last complete window, in ms. */
  get bufferMs() {
    return (this.lastWindowAvg * 1000) / this.rate;
  }

  _resetWindow() {
    this.wRead = 0;
    this.wMin = Infinity;
    this.wMax = 0;
    this.wSum = 0;
    this.wCount = 0;
  }

  push(samples) {
    if (this.starved) {
      // The stream went dry while playing and has come back: that gap was an underrun.
      this.starved = false;
      this.underruns++;
      this.sinceUnderrun = 0;
      this.target = Math.min(this.target + this.step, this.maxTarget);
    }
    const n = samples.length;
    if (this.depth + n > this.maxDepth) {
      const drop = this.depth + n - this.target;
      const fromBuffer = Math.min(drop, this.depth);
      this.head += fromBuffer;
      this.dropped += drop;
      this.overruns++;
      if (drop > fromBuffer) samples = samples.subarray(drop - fromBuffer);
    }
    const ring = this.ring;
    const mask = this.mask;
    for (let i = 0; i < samples.length; i++) ring[(this.tail + i) & mask] = samples[i];
    this.tail += samples.length;
  }

  _pop() {
    return this.ring[this.head++ & this.mask];
  }

  /** Fill out[0..n) with the next samples (silence while priming or dry). */
  read(out, n = out.length) {
    const depth = this.depth;
    this.wMin = Math.min(this.wMin, depth);
    this.wMax = Math.max(this.wMax, depth);
    this.wSum += depth;
    this.wCount++;
    this.wRead += n;
    this.sinceUnderrun += n;
    if (!this.playing && depth >= this.target && depth > 0) {
      this.playing = true;
      this.mode = 0;
    }
    let i = 0;
    if (this.playing) {
      if (this.mode === 1 && this.depth <= this.target) this.mode = 0;
      const fastEvery = this.depth > this.target + 2 * this.step ? 25 : 50;
      for (; i < n; i++) {
        const avail = this.depth;
        if (avail === 0) {
          this.playing = false;
          this.starved = true;
          this.mode = 0;
          break;
        }
        if (this.mode === 1 && avail >= 2 && ++this.skipCounter >= fastEvery) {
          this.skipCounter = 0;
          out[i] = 0.5 * (this._pop() + this._pop());
          this.dropped++;
        } else if (this.mode === -1 && ++this.skipCounter >= 100) {
          this.skipCounter = 0;
          out[i] = 0.5 * (this.ring[(this.head - 1) & this.mask] + this.ring[this.head & this.mask]);
          this.inserted++;
        } else {
          out[i] = this._pop();
        }
      }
    }
    for (; i < n; i++) out[i] = 0;
    if (this.wRead >= this.window) this._endWindow();
  }

  _endWindow() {
    this.lastWindowAvg = this.wCount ? this.wSum / this.wCount : 0;
    if (this.playing) {
      const trough = this.wMin;
      const frame = this.step; // one 20 ms frame
      this.aboveWindows = trough > this.target ? this.aboveWindows + 1 : 0;
      if (this.aboveWindows >= 2) {
        this.mode = 1;
        this.aboveWindows = 0;
      } else if (this.mode === -1 && trough >= this.target - frame) {
        this.mode = 0;
      } else if (this.mode === 0 && trough < this.target - frame - frame / 2) {
        this.mode = -1;
      }
      if (this.sinceUnderrun >= this.calm && this.target > this.minTarget) {
        this.target = Math.max(this.minTarget, this.target - this.step);
        this.sinceUnderrun = 0;
      }
    } else {
      this.aboveWindows = 0;
    }
    this._resetWindow();
  }
}

// --- Analysis -----------------------------------------------------------------------------

/** The last `capacity` int16 samples written, cheaply (one copy per frame). */
export class SampleRing {
  constructor(capacity) {
    this.data = new Int16Array(capacity);
    this.written = 0;
  }

  write(samples) {
    const cap = this.data.length;
    for (let i = 0; i < samples.length; i++) this.data[(this.written + i) % cap] = samples[i];
    this.written += samples.length;
  }

  clear() {
    this.written = 0;
  }

  /** The last `count` samples (default: all kept), oldest first. */
  last(count = this.data.length) {
    const cap = this.data.length;
    const n = Math.min(count, cap, this.written);
    const out = new Int16Array(n);
    const start = this.written - n;
    for (let i = 0; i < n; i++) out[i] = this.data[(start + i) % cap];
    return out;
  }
}

/**
 * How much of `samples` is a tone of `freqHz`: Hann-windowed Goertzel. Returns
 * {amplitude (same unit as the samples), rms, ratio: the tone's share of the energy, 0..1}.
 */
export function toneProbe(samples, freqHz, rate = RATE) {
  const n = samples.length;
  if (n < 2) return { amplitude: 0, rms: 0, ratio: 0 };
  const w = (2 * Math.PI * freqHz) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let wsum = 0;
  let energy = 0;
  for (let i = 0; i < n; i++) {
    const win = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
    const x = samples[i];
    energy += x * x;
    wsum += win;
    const s0 = x * win + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const re = s1 - s2 * Math.cos(w);
  const im = s2 * Math.sin(w);
  const amplitude = (2 * Math.hypot(re, im)) / wsum;
  const rms = Math.sqrt(energy / n);
  const ratio = rms > 0 ? Math.min(1, (amplitude * amplitude) / 2 / (rms * rms)) : 0;
  return { amplitude, rms, ratio };
}
