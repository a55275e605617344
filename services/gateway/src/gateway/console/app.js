// waha-fleet console: one user's WhatsApp (status, QR, chats, messages) through the gateway's API.
// Plain JS, no build step. Every text from the server goes into the page via textContent only.
"use strict";

const TOKEN_KEY = "waha-fleet.token";
const POLL_MS = 4000; // status and QR fallback; the WebSocket makes it mostly unnecessary
// WAHA's logout and restart stop the session, then start it again (WAHA itself pauses ~3 s between):
// a STOPPED right after a running status is shown only if it still holds this much later.
const STOPPED_SETTLE_MS = 4000;
const QR_STATES = new Set(["STARTING", "SCAN_QR_CODE"]);
const RUNNING = new Set(["STARTING", "SCAN_QR_CODE", "WORKING"]);
const CONNECTABLE = new Set(["STOPPED", "FAILED"]);

// The API's error codes a person can act on, in plain words (docs/api.md lists them all).
const PLAIN_ERRORS = {
  session_not_working: "WhatsApp is not connected yet: press Connect WhatsApp and scan the QR code with your phone first.",
  session_limit_reached: "Too many WhatsApp sessions are running right now. Try again in a few minutes.",
  broker_unavailable: "The service is starting or restarting. Try again in a moment.",
  server_busy: "The service is busy. Try again in a moment.",
  waha_unavailable: "WhatsApp (WAHA) does not answer right now. Try again in a moment.",
  database_unavailable: "The message store does not answer right now. Try again in a moment.",
  timeout: "That took too long. Try again in a moment.",
  unreachable: "The gateway does not answer; is waha-fleet running? The console keeps trying.",
};
// A refused form (422 invalid_request) names its field first: "chatId: Value error, ...".
const PLAIN_FIELDS = {
  chatId: "That recipient is not a WhatsApp number: write it with its country code (4915112345678) or as a chat id (4915112345678@c.us).",
  text: "The message is empty or too long (at most 65,536 characters).",
};

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  userId: null,
  status: null,
  qrValue: null,
  qrBusy: false,
  chats: new Map(), // chatId -> {chatId, name, isGroup, lastMessage}
  selected: null, // chatId shown in the conversation
  messages: new Map(), // id -> message of the selected chat
  seq: 0, // arrival order, for messages of the same second
  ws: null,
  live: false,
  retries: 0,
  timers: new Set(), // pending setTimeout ids, all cancelled on sign-out
  pendingSend: null, // {chatId, text, key}: a failed send is retried with the same Idempotency-Key
  stoppedCheck: null, // a STOPPED being held back (STOPPED_SETTLE_MS)
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
class Unauthorized extends Error {}
class Stale extends Error {} // an answer that came back after its user signed out: dropped

function later(fn, ms) {
  const id = setTimeout(() => {
    state.timers.delete(id);
    fn();
  }, ms);
  state.timers.add(id);
}

// ---- REST ---------------------------------------------------------------------------------------

async function api(path, { method = "GET", headers = {}, body } = {}) {
  const token = state.token;
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "unreachable", "the gateway does not answer");
  }
  const json = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
  if (state.token !== token) throw new Stale(); // never show one user's answer to the next
  if (res.status === 401) {
    const why = json?.error?.message || "the token was refused";
    signOut(state.userId ? `Signed out: ${why}.` : `Sign-in refused: ${why}.`);
    throw new Unauthorized();
  }
  if (!res.ok) {
    throw new ApiError(res.status, json?.error?.code, json?.error?.message || `${method} ${path} answered ${res.status}`);
  }
  return json;
}

function plainWords(error) {
  if (!(error instanceof ApiError)) return error.message || String(error);
  if (error.code === "invalid_request") {
    const field = /^\w+/.exec(error.message || "")?.[0];
    return PLAIN_FIELDS[field] || `The form was not accepted: ${error.message}`;
  }
  return PLAIN_ERRORS[error.code] || error.message;
}

// Each error is shown next to what caused it: `where` is the id of the box under that form.
function showError(where, error) {
  if (error instanceof Unauthorized || error instanceof Stale) return;
  const box = $(where);
  box.textContent = plainWords(error);
  box.hidden = false;
}

function clearError(where = "error") {
  $(where).hidden = true;
}

const report = (error) => showError("error", error); // not tied to a form: the banner on top
const reportSession = (error) => showError("session-error", error); // under the QR and Connect

// ---- session: status and QR ---------------------------------------------------------------------

function setStatus(view, { settled = false } = {}) {
  if (view.status === "STOPPED" && RUNNING.has(state.status) && !settled) {
    holdStopped();
    return;
  }
  state.stoppedCheck = null;
  const before = state.status;
  state.status = view.status;
  const badge = $("status");
  badge.textContent = view.status;
  badge.dataset.status = view.status;
  if ("phoneNumber" in view) $("phone").textContent = view.phoneNumber ? `+${view.phoneNumber.replace(/@.*$/, "")}` : "";
  if ("lastError" in view) {
    $("last-error").textContent = view.lastError || "";
    $("last-error").hidden = !view.lastError;
  }
  $("connect").hidden = !CONNECTABLE.has(view.status);
  if (view.status === "WORKING") {
    hideQr();
    if (before !== "WORKING") loadChats().catch(report);
  } else if (view.status !== "SCAN_QR_CODE") {
    hideQr(); // STARTING included: a restarted session's old QR is no longer valid
  }
}

// A logout's STOPPED is followed at once by STARTING (its two reports may even arrive swapped):
// ask again after STOPPED_SETTLE_MS, and only then believe a STOPPED that is still there.
function holdStopped() {
  if (state.stoppedCheck) return;
  const check = {};
  state.stoppedCheck = check;
  later(() => {
    if (state.stoppedCheck === check) refreshStatus({ settled: true }).catch(report);
  }, STOPPED_SETTLE_MS);
}

async function refreshStatus(options) {
  const view = await api("/api/v1/waha/status");
  state.userId = view.userId;
  $("user").textContent = view.userId;
  setStatus(view, options);
  showHistoryImport(view.historyImport); // pairing.js
}

// GET /qr starts the session if needed and answers the current QR (or none once WORKING).
async function refreshQr() {
  if (state.qrBusy) return;
  state.qrBusy = true;
  try {
    const answer = await api("/api/v1/waha/qr");
    if (answer.qr && answer.status !== "WORKING") showQr(answer.qr);
    setStatus({ status: answer.status });
  } finally {
    state.qrBusy = false;
  }
}

function showQr(qr) {
  if (qr.value !== state.qrValue) {
    state.qrValue = qr.value;
    const img = $("qr-image");
    img.src = `data:${qr.mimetype || "image/png"};base64,${qr.data}`;
    img.dataset.value = qr.value;
  }
  $("qr").hidden = false;
}

function hideQr() {
  state.qrValue = null;
  $("qr").hidden = true;
  $("qr-image").removeAttribute("src");
  delete $("qr-image").dataset.value;
}

async function connect() {
  $("connect").disabled = true;
  clearError("session-error");
  setStatus({ status: "STARTING" });
  try {
    await refreshQr();
  } catch (error) {
    await refreshStatus().catch(() => {}); // show the real status, not STARTING, so polling does not retry
    throw error;
  } finally {
    $("connect").disabled = false;
  }
}

// ---- chats and messages -------------------------------------------------------------------------

const chatLabel = (chat) => chat.name || chat.chatId.replace(/@.*$/, "");
const newer = (a, b) => !b || a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id);

async function loadChats() {
  const page = await api("/api/v1/waha/chats?limit=100");
  for (const chat of page.items) {
    const known = state.chats.get(chat.chatId);
    // A live event may already have brought a newer message than the stored one.
    if (known && newer(known.lastMessage || {}, chat.lastMessage)) chat.lastMessage = known.lastMessage;
    state.chats.set(chat.chatId, chat);
  }
  renderChats();
}

function renderChats() {
  const list = $("chats");
  const chats = [...state.chats.values()].sort((a, b) => (newer(a.lastMessage || {}, b.lastMessage) ? -1 : 1));
  list.replaceChildren(
    ...chats.map((chat) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.chatId = chat.chatId;
      if (chat.chatId === state.selected) button.setAttribute("aria-current", "true");
      const name = document.createElement("strong");
      name.textContent = chatLabel(chat);
      const last = document.createElement("span");
      last.className = "muted";
      last.textContent = chat.lastMessage ? `${chat.lastMessage.fromMe ? "you: " : ""}${chat.lastMessage.body ?? ""}` : "";
      button.append(name, last);
      button.addEventListener("click", () => selectChat(chat.chatId).catch(report));
      const item = document.createElement("li");
      item.append(button);
      return item;
    }),
  );
  $("no-chats").hidden = chats.length > 0;
}

async function selectChat(chatId) {
  if (chatId !== state.selected) {
    state.selected = chatId;
    state.messages = new Map();
    $("chat-title").textContent = chatLabel(state.chats.get(chatId) || { chatId });
    $("send-to").value = chatId;
    renderChats();
    renderMessages();
  }
  const page = await api(`/api/v1/waha/messages?chatId=${encodeURIComponent(chatId)}&limit=100`);
  if (state.selected !== chatId) return; // another chat was chosen meanwhile
  for (const message of page.items.reverse()) mergeMessage(message); // oldest first
  renderMessages();
}

function mergeMessage(message) {
  const known = state.messages.get(message.id);
  const ack = Math.max(known?.ack ?? -1, message.ack ?? -1);
  state.messages.set(message.id, { ...known, ...message, ack: ack < 0 ? null : ack, seq: known?.seq ?? ++state.seq });
}

const ACKS = { 1: "✓", 2: "✓✓", 3: "✓✓", 4: "✓✓" };

function renderMessages() {
  const list = $("messages");
  const messages = [...state.messages.values()].sort((a, b) => a.timestamp - b.timestamp || a.seq - b.seq);
  list.replaceChildren(
    ...messages.map((m) => {
      const item = document.createElement("li");
      item.className = m.fromMe ? "out" : "in";
      item.dataset.id = m.id;
      const body = document.createElement("p");
      body.textContent = m.body ?? `(${m.type || "message"})`;
      const meta = document.createElement("small");
      const time = m.timestamp ? new Date(m.timestamp * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
      meta.textContent = m.fromMe ? `${time} ${ACKS[m.ack] || ""}`.trim() : time;
      if (m.fromMe && m.ack >= 3) meta.className = "read";
      item.append(body, meta);
      return item;
    }),
  );
  list.scrollTop = list.scrollHeight;
}

// A message from a live event or from our own send: the chat list and, if open, the conversation.
function onMessage(m) {
  const chat = state.chats.get(m.chatId) || { chatId: m.chatId, name: null, isGroup: m.chatId.endsWith("@g.us") };
  if (m.chatName && !chat.name) chat.name = m.chatName;
  if (newer(m, chat.lastMessage)) chat.lastMessage = { id: m.id, body: m.body, fromMe: m.fromMe, timestamp: m.timestamp };
  state.chats.set(m.chatId, chat);
  renderChats();
  if (m.chatId === state.selected) {
    mergeMessage(m);
    renderMessages();
  }
}

function onAck(a) {
  const known = state.messages.get(a.id);
  if (a.chatId !== state.selected || !known) return;
  mergeMessage({ ...known, ack: a.ack });
  renderMessages();
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // works without a secure context, unlike randomUUID
  return "console-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(event) {
  event.preventDefault();
  const chatId = $("send-to").value.trim();
  const text = $("send-text").value;
  if (!chatId || !text.trim()) return;
  const pending = state.pendingSend;
  const key = pending && pending.chatId === chatId && pending.text === text ? pending.key : randomKey();
  state.pendingSend = { chatId, text, key };
  const button = event.submitter || $("send-form").querySelector("button");
  button.disabled = true;
  try {
    const sent = await api("/api/v1/waha/messages", { method: "POST", headers: { "Idempotency-Key": key }, body: { chatId, text } });
    state.pendingSend = null;
    $("send-text").value = "";
    clearError("send-error");
    const message = { id: sent.id, chatId: sent.chatId, fromMe: true, body: text, type: "chat", timestamp: sent.timestamp, ack: null };
    onMessage(message);
    if (state.selected !== sent.chatId) {
      await selectChat(sent.chatId);
      onMessage(message);
    }
  } finally {
    button.disabled = false;
  }
}

// ---- live events (WebSocket) and the polling fallback -------------------------------------------

function onEvent(envelope) {
  if (!envelope || (state.userId && envelope.userId !== state.userId)) return; // never someone else's
  const data = envelope.data || {};
  switch (envelope.type) {
    case "message.received":
    case "message.sent":
      onMessage(data);
      break;
    case "message.ack":
      onAck(data);
      break;
    case "session.status_changed":
      setStatus(data);
      if (QR_STATES.has(data.status)) refreshQr().catch(reportSession);
      break;
    case "session.qr_updated":
      if (data.value !== state.qrValue) refreshQr().catch(reportSession);
      break;
  }
}

function setLive(live) {
  state.live = live;
  const badge = $("live");
  badge.textContent = live ? "live" : "polling";
  badge.className = `live ${live ? "on" : "off"}`;
}

function openEvents() {
  const url = new URL("/api/v1/events", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", state.token); // browsers cannot set headers on a WebSocket
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.retries = 0;
    setLive(true);
    clearError();
    resync().catch(report); // catch up on what happened while not connected
  });
  ws.addEventListener("message", (event) => {
    if (state.ws !== ws) return;
    try {
      onEvent(JSON.parse(event.data));
    } catch (error) {
      console.warn("unreadable event", error);
    }
  });
  ws.addEventListener("close", (event) => {
    if (state.ws !== ws) return; // signed out, or replaced
    state.ws = null;
    setLive(false);
    // 1008 `unauthorized|invalid_token|token_expired: ...`: a new token is needed, reconnecting will not help.
    if (event.code === 1008 && /^(unauthorized|invalid_token|token_expired)\b/.test(event.reason)) {
      signOut(`Signed out: ${event.reason.replace(/^\w+: /, "")}.`);
      return;
    }
    const delay = Math.min(10000, 500 * 2 ** state.retries++);
    later(() => state.token && openEvents(), delay);
  });
}

async function resync() {
  const wasWorking = state.status === "WORKING";
  await refreshStatus(); // a change to WORKING loads the chats itself (setStatus)
  if (wasWorking && state.status === "WORKING") {
    await loadChats();
    if (state.selected) await selectChat(state.selected);
  }
}

async function poll() {
  if (!state.live) await resync(); // no live events: fetch what they would have told
  // The QR rotates; keep the shown one current. Not while a STOPPED is held back: GET /qr would start
  // the session again.
  if (QR_STATES.has(state.status) && !state.stoppedCheck) await refreshQr();
}

// ---- sign in and out ----------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("whoami").hidden = false;
  setLive(false);
  clearError();
  clearError("sign-in-error");
  try {
    await refreshStatus(); // checks the token too: a refused one signs out again right here
  } catch (error) {
    if (error instanceof Unauthorized) return;
    report(error); // the gateway may be down: the socket and polling below keep trying
  }
  if (QR_STATES.has(state.status)) refreshQr().catch(reportSession);
  openEvents();
  const tick = async () => {
    if (!state.token) return;
    await poll().catch(report);
    if (state.token === token) later(tick, POLL_MS);
  };
  later(tick, POLL_MS);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.timers.forEach(clearTimeout);
  const ws = state.ws;
  Object.assign(state, {
    token: null, userId: null, status: null, qrValue: null, selected: null, ws: null, live: false,
    retries: 0, timers: new Set(), chats: new Map(), messages: new Map(), pendingSend: null, stoppedCheck: null,
  });
  if (ws) ws.close();
  hideQr();
  $("chats").replaceChildren();
  $("messages").replaceChildren();
  $("user").textContent = "";
  $("chat-title").textContent = "Messages";
  $("send-to").value = "";
  $("console").hidden = true;
  $("whoami").hidden = true;
  $("sign-in").hidden = false;
  for (const box of ["error", "session-error", "send-error"]) clearError(box);
  if (message) showError("sign-in-error", new Error(message));
  else clearError("sign-in-error");
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (token) signIn(token).catch(report);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("connect").addEventListener("click", () => connect().catch(reportSession));
  $("send-form").addEventListener("submit", (event) => send(event).catch((error) => showError("send-error", error)));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch(report);
});
