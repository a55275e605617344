// The gateway's REST API with the user's token, and its errors in words a person can act on.
import { $, signOutBecause, state } from "./state.js";

// The API's error codes a person can act on, in plain words (docs/api.md lists them all).
const PLAIN_ERRORS = {
  session_not_working: "WhatsApp is not connected yet: press Connect WhatsApp and scan the QR code with your phone first.",
  session_limit_reached: "Too many WhatsApp sessions are running right now. Try again in a few minutes.",
  broker_unavailable: "The service is starting or restarting. Try again in a moment.",
  server_busy: "The service is busy. Try again in a moment.",
  waha_unavailable: "WhatsApp (WAHA) does not answer right now. Try again in a moment.",
  database_unavailable: "The message store does not answer right now. Try again in a moment.",
  media_store_unavailable: "The file store does not answer right now. Try again in a moment.",
  media_missing: "That file is empty: choose another one.",
  timeout: "That took too long. Try again in a moment.",
  unreachable: "The gateway does not answer; is waha-fleet running? The console keeps trying.",
};
// A refused form (422 invalid_request) names its field first: "chatId: Value error, ...".
const PLAIN_FIELDS = {
  chatId: "That recipient is not a WhatsApp number: write it with its country code (4915112345678) or as a chat id (4915112345678@c.us).",
  text: "The message is empty or too long (at most 65,536 characters).",
};
const MIB = 1024 * 1024;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
export class Unauthorized extends Error {}
export class Stale extends Error {} // an answer that came back after its user signed out: dropped

// `body`: an object is sent as JSON, a FormData as multipart (the browser sets its boundary).
async function request(path, { method = "GET", headers = {}, body } = {}) {
  const token = state.token;
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...headers } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "unreachable", "the gateway does not answer");
  }
  if (state.token !== token) throw new Stale(); // never show one user's answer to the next
  if (res.ok) return res;
  const json = (res.headers.get("content-type") || "").includes("json") ? await res.json().catch(() => null) : null;
  if (state.token !== token) throw new Stale();
  if (res.status === 401) {
    const why = json?.error?.message || "the token was refused";
    signOutBecause(state.userId ? `Signed out: ${why}.` : `Sign-in refused: ${why}.`);
    throw new Unauthorized();
  }
  throw new ApiError(res.status, json?.error?.code, json?.error?.message || `${method} ${path} answered ${res.status}`);
}

export async function api(path, options) {
  const token = state.token;
  const res = await request(path, options);
  const json = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
  if (state.token !== token) throw new Stale();
  return json;
}

// A file the API answers (a message's media), as a Blob.
export async function apiBlob(path) {
  const token = state.token;
  const blob = await (await request(path)).blob();
  if (state.token !== token) throw new Stale();
  return blob;
}

export function plainWords(error) {
  if (!(error instanceof ApiError)) return error.message || String(error);
  if (error.code === "invalid_request") {
    const field = /^\w+/.exec(error.message || "")?.[0];
    return PLAIN_FIELDS[field] || `The form was not accepted: ${error.message}`;
  }
  if (error.code === "media_too_large") {
    const limit = Number(/(\d+)-byte/.exec(error.message || "")?.[1]);
    return `That file is too large to send: at most ${limit ? `${Math.floor(limit / MIB)} MiB` : "the server's limit"}.`;
  }
  if (error.code === "unsupported_media_type") return `That file cannot be sent as chosen: ${error.message}.`;
  return PLAIN_ERRORS[error.code] || error.message;
}

// Each error is shown next to what caused it: `where` is the id of the box under that form.
export function showError(where, error) {
  if (error instanceof Unauthorized || error instanceof Stale) return;
  const box = $(where);
  box.textContent = plainWords(error);
  box.hidden = false;
}

export function clearError(where = "error") {
  $(where).hidden = true;
}

export const report = (error) => showError("error", error); // not tied to a form: the banner on top
export const reportSession = (error) => showError("session-error", error); // under the QR and Connect
