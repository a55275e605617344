// What every part of the console shares: the signed-in user's state, and a few small helpers.
// Parts: api.js (REST), session.js (status, QR), chats.js (chat list, unread), conversation.js
// (the open chat's messages), media.js (files in messages), send.js (the send form), live.js
// (WebSocket, polling), app.js (sign in and out, wiring).

export const $ = (id) => document.getElementById(id);

export const state = {
  token: null,
  userId: null,
  status: null,
  qrValue: null,
  qrBusy: false,
  chats: new Map(), // chatId -> {chatId, name, isGroup, lastMessage, unreadCount}
  selected: null, // chatId shown in the conversation
  messages: new Map(), // id -> message of the selected chat
  seq: 0, // arrival order, for messages of the same second
  ws: null,
  live: false,
  retries: 0,
  timers: new Set(), // pending setTimeout ids, all cancelled on sign-out
  pendingSend: null, // {chatId, text, file, kind, key}: a failed send is retried with the same Idempotency-Key
  stoppedCheck: null, // a STOPPED being held back (session.js)
  lastSeq: null, // {userId, seq} of the last event handled: a reconnect resumes after it (live.js)
};

// What a fresh sign-in starts from; every part that keeps more resets it in its own `forget()`.
export function resetState() {
  state.timers.forEach(clearTimeout);
  Object.assign(state, {
    token: null, userId: null, status: null, qrValue: null, qrBusy: false, selected: null, ws: null, live: false,
    retries: 0, timers: new Set(), chats: new Map(), messages: new Map(), pendingSend: null, stoppedCheck: null,
    lastSeq: null,
  });
}

export function later(fn, ms) {
  const id = setTimeout(() => {
    state.timers.delete(id);
    fn();
  }, ms);
  state.timers.add(id);
}

export function element(tag, { className, text, testId, ...attributes } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // server text goes into the page as text only
  if (testId) node.dataset.testid = testId;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // works without a secure context, unlike randomUUID
  return "console-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Signing out touches every part; app.js does it, the parts that learn the token is refused call this.
const signOutHook = { run: () => {} };
export const onSignOut = (fn) => {
  signOutHook.run = fn;
};
export const signOutBecause = (message) => signOutHook.run(message);
