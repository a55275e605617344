// The open chat: its messages oldest first, with their files, reactions, edits and deletions.
import { api } from "./api.js";
import { chatLabel, noteChange, noteMessage, renderChats, scheduleRead } from "./chats.js";
import { forgetMedia, mediaView } from "./media.js";
import { $, element, state } from "./state.js";

const ACKS = { 1: "✓", 2: "✓✓", 3: "✓✓", 4: "✓✓" };

export async function selectChat(chatId) {
  if (chatId !== state.selected) {
    state.selected = chatId;
    state.messages = new Map();
    forgetMedia();
    $("chat-title").textContent = chatLabel(state.chats.get(chatId) || { chatId });
    $("send-to").value = chatId;
    renderChats();
    renderMessages();
  }
  if (state.chats.get(chatId)?.unreadCount) scheduleRead(chatId);
  const page = await api(`/api/v1/waha/messages?chatId=${encodeURIComponent(chatId)}&limit=100`);
  if (state.selected !== chatId) return; // another chat was chosen meanwhile
  for (const message of page.items.reverse()) mergeMessage(message); // oldest first
  renderMessages();
}

// Live changes to messages (reactions, edits, deletions, files copied), by message id. A change can
// come before its message is shown (its chat not open yet, its page still on the way), and a page
// read from the store can be older than a change already seen live (the store takes it in a moment
// later): each is applied again over every copy of its message merged. Every change is idempotent.
const CHANGES_MAX = 500;
const changes = new Map(); // message id -> [update(message) -> fields]

function remember(id, update) {
  changes.set(id, [...(changes.get(id) || []), update]);
  if (changes.size > CHANGES_MAX) changes.delete(changes.keys().next().value);
}

// A stored file stays stored: no late `pending` (a duplicate of the first event) takes it back.
const newerMedia = (known, media) => (known?.status === "stored" && media?.status !== "stored" ? known : media);

function mergeMessage(message) {
  const known = state.messages.get(message.id);
  const ack = Math.max(known?.ack ?? -1, message.ack ?? -1);
  const merged = { ...known, ...message, ack: ack < 0 ? null : ack, seq: known?.seq ?? ++state.seq };
  if (known && "media" in message && !message.revokedAt) merged.media = newerMedia(known.media, message.media);
  for (const update of changes.get(message.id) || []) Object.assign(merged, update(merged));
  state.messages.set(message.id, merged);
}

function time(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

// The reactions under a message: each emoji once, with how many sent it.
function reactionsView(reactions) {
  const counts = new Map();
  for (const r of reactions) counts.set(r.reaction, (counts.get(r.reaction) || 0) + 1);
  return element("p", { className: "reactions", testId: "reactions" },
    ...[...counts].map(([emoji, n]) => element("span", { text: n > 1 ? `${emoji} ${n}` : emoji })));
}

// WAHA names a quoted message by its full id or only by its last part.
const quotedMessage = (replyTo) =>
  state.messages.get(replyTo) || [...state.messages.values()].find((m) => m.id.endsWith(`_${replyTo}`));

function messageView(m) {
  const item = element("li", { className: m.fromMe ? "out" : "in", "data-id": m.id });
  if (m.revokedAt) {
    item.classList.add("revoked");
    item.append(element("p", { className: "deleted", text: "message deleted" }));
  } else {
    const quoted = m.replyTo && quotedMessage(m.replyTo);
    if (m.replyTo) item.append(element("p", { className: "quote", text: quoted ? quoted.body ?? `(${quoted.type})` : "a reply" }));
    if (m.media) item.append(mediaView(m, retried));
    if (m.body != null) item.append(element("p", { text: m.body }));
    else if (!m.media) item.append(element("p", { text: `(${m.type || "message"})` }));
  }
  if (m.reactions?.length) item.append(reactionsView(m.reactions));
  const meta = element("small", { text: m.fromMe ? `${time(m.timestamp)} ${ACKS[m.ack] || ""}`.trim() : time(m.timestamp) });
  if (m.fromMe && m.ack >= 3) meta.className = "read";
  if (m.editedAt && !m.revokedAt) meta.prepend(element("span", { className: "edited", text: "edited" }), " ");
  item.append(meta);
  return item;
}

export function renderMessages() {
  const list = $("messages");
  const messages = [...state.messages.values()].sort((a, b) => a.timestamp - b.timestamp || a.seq - b.seq);
  list.replaceChildren(...messages.map(messageView));
  list.scrollTop = list.scrollHeight;
}

// A message from a live event or from our own send: the chat list and, if open, the conversation.
export function onMessage(m, { received = false } = {}) {
  noteMessage(m, { received });
  if (m.chatId === state.selected) {
    mergeMessage(m);
    renderMessages();
  }
}

// A change to a message: remembered, and shown at once if its chat is open.
function change(chatId, id, update) {
  remember(id, update);
  const known = state.messages.get(id);
  if (chatId !== state.selected || !known) return;
  state.messages.set(id, { ...known, ...update(known) });
  renderMessages();
}

export function onAck(a) {
  const known = state.messages.get(a.id);
  if (a.chatId !== state.selected || !known) return; // acks only move forward: a page never takes one back
  mergeMessage({ ...known, ack: a.ack });
  renderMessages();
}

// One reaction per person, their latest; "" takes it back.
export const onReaction = (r) => change(r.chatId, r.id, (known) => {
  const who = (x) => (x.fromMe ? "me" : x.from);
  const others = (known.reactions || []).filter((x) => who(x) !== who(r));
  return { reactions: r.reaction ? [...others, { from: r.from, fromMe: r.fromMe, reaction: r.reaction, timestamp: r.timestamp }] : others };
});

export function onEdited(e) {
  noteChange(e.chatId, e.id, { body: e.body });
  change(e.chatId, e.id, () => ({ body: e.body, editedAt: e.editedAt }));
}

export function onRevoked(r) {
  noteChange(r.chatId, r.id, { body: null, revoked: true });
  change(r.chatId, r.id, () => ({ body: null, media: null, type: "revoked", revokedAt: r.revokedAt }));
}

// The user's retry was taken: pending again, unless its events (which can come before the answer
// to the retry) already said more.
const retried = (m) => change(m.chatId, m.id, (known) =>
  (known.media?.status === "failed" ? { media: { ...known.media, status: "pending", error: null } } : {}));

export const onMediaUpdated = (m) => change(m.chatId, m.id, (known) => (known.revokedAt ? {} : { media: newerMedia(known.media, m.media) }));

export function forgetConversation() {
  changes.clear();
  forgetMedia();
  $("messages").replaceChildren();
  $("chat-title").textContent = "Messages";
}
