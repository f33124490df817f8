// audio.js: the softphone's audio engine on the main thread. Owns the AudioContext, the
// "softphone" AudioWorkletNode (worklet.js), the microphone, the local sounds (tones.js), the
// received-audio ring kept for tests, and window.softphoneStats / window.softphoneDebug.
// It turns socket binary frames into playout and worklet frames into socket sends through
// the `send` function it is given; whether a call is up (capture on) is decided by agent.js.

import { SampleRing, decodeUlaw, HEADER_BYTES, parseFrame, RATE, toneProbe } from "./dsp.js";
import { Ringer, playDtmf } from "./tones.js";

const MAX_SOCKET_BACKLOG = 8 * 1024; // bytes queued on the socket before frames are dropped

export class AudioEngine {
  /**
   * @param {{send: (buffer: ArrayBuffer) => boolean, onChange?: (what: string) => void}} options
   *   send: puts one frame on the socket, false when it could not; onChange: "level",
   *   "stats", "state" (context, microphone) so the page can redraw what depends on it.
   */
  constructor({ send, onChange = () => {} }) {
    this.send = send;
    this.onChange = onChange;
    this.ctx = null;
    this.node = null;
    this.output = null;
    this.analyser = null;
    this.ringer = null;
    this.micStream = null;
    this.micSource = null;
    this.mic = "pending"; // pending | ok | denied | missing | insecure | error
    this.micError = "";
    this.capture = false;
    this.startError = "";
    this.rx = new SampleRing(2 * RATE);
    this.tx = new SampleRing(2 * RATE);
    this.stats = {
      framesIn: 0, // valid audio frames received on the socket
      framesOut: 0, // frames sent on the socket
      underruns: 0,
      overruns: 0,
      bufferMs: 0, // playout buffer depth, average over the last second
      targetMs: 40,
      micLevel: 0, // microphone RMS, 0..1 (full scale sine ≈ 0.71)
      micPeak: 0,
      micAvailable: false,
      invalidFrames: 0, // binary frames of another size or kind (dropped)
      droppedOut: 0, // capture frames not sent (socket closed or backed up)
      audioState: "none", // the AudioContext's state
      sampleRate: 0,
    };
    this._installDebug();
  }

  // --- start-up --------------------------------------------------------------------------

  async start() {
    try {
      try {
        this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
      } catch {
        this.ctx = new AudioContext({ latencyHint: "interactive" });
      }
      this.stats.sampleRate = this.ctx.sampleRate;
      this.ctx.onstatechange = () => {
        this.stats.audioState = this.ctx.state;
        this.onChange("state");
      };
      this.stats.audioState = this.ctx.state;
      this.output = this.ctx.createGain();
      this.output.connect(this.ctx.destination);
      // Read only on demand (softphoneDebug.outputLevel): what the speaker gets, ring included.
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 2048;
      this.output.connect(this.analyser);
      this.ringer = new Ringer(this.ctx, this.output);
      await this.ctx.audioWorklet.addModule(new URL("./worklet.js", import.meta.url));
      this.node = new AudioWorkletNode(this.ctx, "softphone", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        channelCount: 1,
        channelCountMode: "explicit",
        channelInterpretation: "speakers",
      });
      this.node.port.onmessage = (event) => this._fromWorklet(event.data);
      this.node.connect(this.output);
      this.node.port.postMessage({ type: "capture", on: this.capture });
    } catch (error) {
      this.startError = `Audio could not start: ${error.message || error}`;
      console.error(this.startError, error);
    }
    this.onChange("state");
    await this.openMicrophone();
    if (navigator.mediaDevices && "ondevicechange" in navigator.mediaDevices) {
      navigator.mediaDevices.addEventListener("devicechange", () => {
        if (this.mic !== "ok" && this.mic !== "denied") this.openMicrophone();
      });
    }
  }

  async openMicrophone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this._setMic(window.isSecureContext ? "error" : "insecure", "this browser gives no microphone here");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
      this._closeMicrophone();
      this.micStream = stream;
      const [track] = stream.getAudioTracks();
      if (track) {
        track.addEventListener("ended", () => {
          this._closeMicrophone();
          this._setMic("missing", "the microphone was disconnected");
        });
      }
      if (this.ctx && this.node) {
        this.micSource = this.ctx.createMediaStreamSource(stream);
        this.micSource.connect(this.node);
      }
      this._setMic("ok", "");
    } catch (error) {
      const name = error && error.name;
      if (name === "NotAllowedError" || name === "SecurityError") this._setMic("denied", "microphone access was refused");
      else if (name === "NotFoundError" || name === "OverconstrainedError") this._setMic("missing", "no microphone found");
      else this._setMic("error", (error && error.message) || String(error));
    }
  }

  _closeMicrophone() {
    if (this.micSource) this.micSource.disconnect();
    this.micSource = null;
    if (this.micStream) for (const track of this.micStream.getTracks()) track.stop();
    this.micStream = null;
  }

  _setMic(state, message) {
    this.mic = state;
    this.micError = message;
    this.stats.micAvailable = state === "ok";
    this.onChange("state");
  }

  /** Call from a user gesture (click, key): browsers keep a context suspended until one. */
  resume() {
    if (this.ctx && this.ctx.state === "suspended") {
      this.ctx.resume().catch(() => {});
    }
  }

  get running() {
    return Boolean(this.ctx && this.ctx.state === "running");
  }

  // --- the call's audio ------------------------------------------------------------------

  /** Capture is on while a call is connected on this page (frames go to the socket). */
  setCapture(on) {
    on = Boolean(on);
    if (on === this.capture) return;
    this.capture = on;
    if (this.node) this.node.port.postMessage({ type: "capture", on });
  }

  /** A new call's audio begins: empty playout, target back to 40 ms. */
  callStarted() {
    this.rx.clear();
    this.tx.clear();
    if (this.node) this.node.port.postMessage({ type: "reset" });
  }

  /** The call's audio ended on purpose (not an underrun). */
  callEnded() {
    if (this.node) this.node.port.postMessage({ type: "stop" });
  }

  /** One binary frame from the socket. */
  receive(buffer) {
    const frame = parseFrame(buffer);
    if (!frame) {
      this.stats.invalidFrames++;
      return;
    }
    this.stats.framesIn++;
    this.rx.write(frame.samples);
    if (this.node) this.node.port.postMessage({ type: "audio", samples: frame.samples }, [frame.samples.buffer]);
  }

  _fromWorklet(message) {
    switch (message.type) {
      case "frame": {
        if (!this.capture) return;
        if (this.send(message.buffer)) {
          this.stats.framesOut++;
          this.tx.write(decodeUlaw(new Uint8Array(message.buffer, HEADER_BYTES)));
        } else {
          this.stats.droppedOut++;
        }
        break;
      }
      case "level":
        this.stats.micLevel = message.rms;
        this.stats.micPeak = message.peak;
        this.onChange("level");
        break;
      case "stats": {
        const s = this.stats;
        s.underruns = message.underruns;
        s.overruns = message.overruns;
        s.bufferMs = Math.round(message.bufferMs * 10) / 10;
        s.targetMs = message.targetMs;
        s.depthMs = message.depthMs;
        s.playing = message.playing;
        s.framesCaptured = message.framesCaptured;
        s.audioState = this.ctx ? this.ctx.state : "none";
        this.onChange("stats");
        break;
      }
      default:
        break;
    }
  }

  // --- local sounds ----------------------------------------------------------------------

  startRing() {
    if (this.ringer) this.ringer.start();
  }

  stopRing() {
    if (this.ringer) this.ringer.stop();
  }

  get ringing() {
    return Boolean(this.ringer && this.ringer.ringing);
  }

  dtmf(digit) {
    if (this.ctx && this.output) playDtmf(this.ctx, this.output, digit);
  }

  /** 440 Hz for 1.5 s through the playback path (playout → resampler → output). */
  speakerTest(ms = 1500) {
    this.resume();
    if (this.node) this.node.port.postMessage({ type: "tone", freq: 440, ms, amp: 0.25 });
    return Boolean(this.node);
  }

  // --- for tests -------------------------------------------------------------------------

  _installDebug() {
    window.softphoneStats = this.stats;
    // Also reachable from the stats object, but not enumerable: a test that reads
    // window.softphoneStats as JSON gets plain numbers.
    Object.defineProperty(this.stats, "rxTone", {
      value: (freqHz, ms = 500) => toneProbe(this.rx.last(Math.round((ms * RATE) / 1000)), freqHz).ratio,
      enumerable: false,
    });
    window.softphoneDebug = {
      /** The last `ms` (default 2000) of received 8 kHz audio, int16 values, oldest first. */
      lastReceived: (ms = 2000) => Array.from(this.rx.last(Math.round((ms * RATE) / 1000))),
      /** The same for what this page sent (decoded back from µ-law). */
      lastSent: (ms = 2000) => Array.from(this.tx.last(Math.round((ms * RATE) / 1000))),
      /** {amplitude, rms, ratio} of a tone in the last `ms` of received audio. */
      rxTone: (freqHz, ms = 500) => toneProbe(this.rx.last(Math.round((ms * RATE) / 1000)), freqHz),
      /** The same for sent audio. */
      txTone: (freqHz, ms = 500) => toneProbe(this.tx.last(Math.round((ms * RATE) / 1000)), freqHz),
      /** RMS (0..1) of the last ~43 ms sent to the speaker: ring, beeps, call audio. */
      outputLevel: () => {
        if (!this.analyser) return 0;
        const data = new Float32Array(this.analyser.fftSize);
        this.analyser.getFloatTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += v * v;
        return Math.sqrt(sum / data.length);
      },
      engine: this,
    };
  }
}

/** A socket sender that drops frames rather than building latency behind a slow link. */
export function socketSender(getSocket) {
  return (buffer) => {
    const ws = getSocket();
    if (!ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_SOCKET_BACKLOG) return false;
    ws.send(buffer);
    return true;
  };
}
