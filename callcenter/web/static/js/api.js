// api.js: the one way the pages talk HTTP to the server (docs/agent-api.md). Owns the JSON
// fetch wrapper, the session's CSRF token (from /api/auth/me or the login answer, sent as
// X-CSRF-Token on every state-changing request) and turning error answers into ApiError
// with the server's `detail` for a person to read. Knows no page, no state, no DOM.

export const LOGIN_PAGE = "/";
export const AGENT_PAGE = "/agent";

let csrfToken = null;
let onUnauthorized = null;

export class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter; // seconds, from Retry-After (429)
  }
}

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Called (once per failing request) when the server says 401: the session is gone. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function describe(detail, status, statusText) {
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    // FastAPI's 422: [{loc, msg, type}]
    return detail
      .map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  return `${status} ${statusText || "error"}`.trim();
}

function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "The server cannot be reached. Check the connection and try again.");
  }
  if (response.status === 204) return { response, data: null };
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const detail = describe(data && data.detail, response.status, response.statusText);
    throw new ApiError(response.status, detail, retryAfterSeconds(response));
  }
  return { response, data };
}

export async function request(method, path, body) {
  try {
    return (await send(method, path, body)).data;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // A stale CSRF token (a new session in another tab): fetch the current one, retry once.
    // A 403 means the request was refused before it did anything, so a retry is safe.
    if (error.status === 403 && method !== "GET" && !path.startsWith("/api/auth/")) {
      const before = csrfToken;
      try {
        await me();
      } catch {
        throw error;
      }
      if (csrfToken && csrfToken !== before) return (await send(method, path, body)).data;
    }
    if (error.status === 401 && onUnauthorized && !path.startsWith("/api/auth/login")) onUnauthorized(error);
    throw error;
  }
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

/** GET /api/auth/me → {user, csrf_token}; keeps the token. 401 when not logged in. */
export async function me() {
  const { data } = await send("GET", "/api/auth/me");
  setCsrfToken(data && data.csrf_token);
  return data;
}

/** POST /api/auth/login → {user, csrf_token}; keeps the token. */
export async function login(username, password) {
  const { data } = await send("POST", "/api/auth/login", { username, password });
  setCsrfToken(data && data.csrf_token);
  return data;
}

export async function logout() {
  try {
    await send("POST", "/api/auth/logout");
  } finally {
    setCsrfToken(null);
  }
}

/** A call id is put in a path: keep it one segment whatever it contains. */
export function callPath(callId, action = "") {
  return `/api/calls/${encodeURIComponent(callId)}${action ? `/${action}` : ""}`;
}
