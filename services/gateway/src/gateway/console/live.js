// Live events over the WebSocket, opened with a one-time ticket (never the token in a URL), and
// the polling that stands in while it is down.
import { ApiError, api, clearError, report } from "./api.js";
import { loadChats, onChatRead } from "./chats.js";
import { onAck, onEdited, onMediaUpdated, onMessage, onReaction, onRevoked, selectChat } from "./conversation.js";
import { QR_STATES, onSessionEvent, refreshQr, refreshStatus } from "./session.js";
import { $, later, signOutBecause, state } from "./state.js";

// A message delivered twice must count once as unread: their envelope ids are remembered. Every other
// event sets a state, so applying it twice is harmless (and a second `message.media` failure after a
// retry carries the same id as the first).
const COUNTED = new Set(["message.received", "message.sent"]);
const SEEN_MAX = 1000;
const seen = new Set();

const HANDLERS = {
  "message.received": (data) => onMessage(data, { received: true }),
  "message.sent": (data) => onMessage(data),
  "message.ack": onAck,
  "message.reaction": onReaction,
  "message.edited": onEdited,
  "message.revoked": onRevoked,
  "message.media": onMediaUpdated,
  "chat.read": (data) => onChatRead(data.chatId),
  "session.status_changed": (data) => onSessionEvent("session.status_changed", data),
  "session.qr_updated": (data) => onSessionEvent("session.qr_updated", data),
};

function onEvent(envelope) {
  if (!envelope || (state.userId && envelope.userId !== state.userId)) return; // never someone else's
  if (envelope.id && COUNTED.has(envelope.type)) {
    if (seen.has(envelope.id)) return;
    seen.add(envelope.id);
    if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value);
  }
  HANDLERS[envelope.type]?.(envelope.data || {});
}

export function setLive(live) {
  state.live = live;
  const badge = $("live");
  badge.textContent = live ? "live" : "polling";
  badge.className = `live ${live ? "on" : "off"}`;
}

function reconnectLater() {
  const delay = Math.min(10000, 500 * 2 ** state.retries++);
  later(() => state.token && openEvents().catch(report), delay);
}

// Every (re)connection asks for a fresh ticket: each opens one socket, once, within 30 s.
export async function openEvents() {
  const token = state.token;
  let ticket;
  try {
    ({ ticket } = await api("/api/v1/events/ticket", { method: "POST" }));
  } catch (error) {
    if (error instanceof ApiError && state.token === token) reconnectLater(); // the gateway is down or busy
    return; // or signed out meanwhile
  }
  if (state.token !== token || state.ws) return;
  const url = new URL("/api/v1/events", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("ticket", ticket); // browsers cannot set headers on a WebSocket
  // Reconnecting: the server first sends what came after the last event this page handled.
  if (state.lastSeq && state.lastSeq.userId === state.userId) url.searchParams.set("after", state.lastSeq.seq);
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
      const envelope = JSON.parse(event.data);
      onEvent(envelope);
      if (Number.isInteger(envelope?.seq)) state.lastSeq = { userId: state.userId, seq: envelope.seq };
    } catch (error) {
      console.warn("unreadable event", error);
    }
  });
  ws.addEventListener("close", (event) => {
    if (state.ws !== ws) return; // signed out, or replaced
    state.ws = null;
    setLive(false);
    // 1008 `unauthorized|invalid_token|token_expired: ...`: a new token is needed, reconnecting will not help.
    // (A refused ticket, `invalid_ticket` or `ticket_expired`, only needs a new ticket: reconnecting asks for one.)
    if (event.code === 1008 && /^(unauthorized|invalid_token|token_expired)\b/.test(event.reason)) {
      signOutBecause(`Signed out: ${event.reason.replace(/^\w+: /, "")}.`);
      return;
    }
    reconnectLater();
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

export async function poll() {
  if (!state.live) await resync(); // no live events: fetch what they would have told
  // The QR rotates; keep the shown one current. Not while a STOPPED is held back: GET /qr would start
  // the session again.
  if (QR_STATES.has(state.status) && !state.stoppedCheck) await refreshQr();
}

export function closeEvents() {
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  seen.clear();
}
