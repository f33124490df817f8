// socket.js: a page's WebSocket (the agent's /api/agent/ws by default, the supervisor's
// /api/supervisor/ws; on the page's own host, ws: or wss: by the page's protocol). Owns
// connecting, reconnecting with backoff (250 ms doubling to 2 s), a ping every 10 s with a
// watchdog, and the takeover rule: closed with 4409 means a newer page of this user took
// over, so this one stops until told to reconnect; 4401 means the session ended (account
// disabled, password changed): back to the login page. Text frames are parsed as JSON
// events; binary frames (ArrayBuffer) go to onBinary untouched.

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 2000;
const PING_EVERY_MS = 10000;
const SILENT_LIMIT_MS = 25000; // nothing heard for this long: the socket is dead
export const CLOSE_TAKEN_OVER = 4409;
export const CLOSE_SESSION_ENDED = 4401; // the session is no longer valid: log in again

export class AgentSocket {
  /**
   * @param {{path?: string, onEvent: (e: object) => void, onBinary: (b: ArrayBuffer) => void,
   *          onStatus: (status: string, info: object) => void}} options
   * status: "connecting" (first time) | "open" | "reconnecting" | "taken-over" | "closed"
   */
  constructor({ path = "/api/agent/ws", onEvent, onBinary, onStatus = () => {} }) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.onEvent = onEvent;
    this.onBinary = onBinary;
    this.onStatus = onStatus;
    this.ws = null;
    this.status = "closed";
    this.backoff = BACKOFF_MIN_MS;
    this.failures = 0; // consecutive attempts that never opened
    this.everOpened = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.stopped = true;
    addEventListener("online", () => {
      if (!this.stopped && this.status === "reconnecting") this.connectNow();
    });
  }

  start() {
    this.stopped = false;
    this.connectNow();
  }

  stop() {
    this.stopped = true;
    this._clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "page closed");
    }
    this._setStatus("closed");
  }

  /** Reconnect at once (e.g. "use this tab" after a takeover). */
  connectNow() {
    this.stopped = false;
    this._clearTimers();
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.onclose = null;
      old.close(1000, "reconnecting");
    }
    this._open();
  }

  sendJson(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  get socket() {
    return this.ws;
  }

  _setStatus(status, info = {}) {
    this.status = status;
    this.onStatus(status, { failures: this.failures, ...info });
  }

  _open() {
    this._setStatus(this.everOpened ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this._scheduleRetry();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.everOpened = true;
      this.failures = 0;
      this.lastHeard = Date.now();
      this._setStatus("open");
      this.pingTimer = setInterval(() => this._ping(), PING_EVERY_MS);
    };
    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      if (typeof event.data === "string") {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          console.warn("agent socket: a text frame that is not JSON was ignored");
          return;
        }
        // A good connection: the page's hello ("hello", "supervisor.hello").
        if (message && /(^|\.)hello$/.test(message.type)) this.backoff = BACKOFF_MIN_MS;
        if (message && message.type !== "pong") this.onEvent(message);
      } else {
        this.onBinary(event.data);
      }
    };
    ws.onerror = () => {
      // onclose follows and does the work
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // replaced on purpose
      this.ws = null;
      this._clearTimers();
      if (this.stopped) return;
      if (event.code === CLOSE_TAKEN_OVER) {
        this._setStatus("taken-over", { code: event.code, reason: event.reason });
        return;
      }
      if (event.code === CLOSE_SESSION_ENDED) {
        this.stopped = true;
        location.assign("/");
        return;
      }
      if (!opened) this.failures++;
      this._scheduleRetry({ code: event.code, reason: event.reason, opened });
    };
  }

  _scheduleRetry(info = {}) {
    this._setStatus("reconnecting", info);
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this._open();
    }, delay);
  }

  _ping() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENT_LIMIT_MS) {
      // A dead link may take minutes to report its close: drop it and reconnect now.
      this.ws = null;
      ws.onclose = null;
      ws.close(4000, "no answer to ping");
      this._clearTimers();
      this._scheduleRetry({ code: 4000, reason: "no answer to ping", opened: true });
      return;
    }
    ws.send('{"type":"ping"}');
  }

  _clearTimers() {
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
  }
}
