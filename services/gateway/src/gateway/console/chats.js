// The chat list: newest first, each with its last message and how many messages are unread.
import { api, report } from "./api.js";
import { selectChat } from "./conversation.js";
import { $, element, later, state } from "./state.js";

const READ_DELAY_MS = 300; // messages arriving together in the open chat are marked read at once

export const chatLabel = (chat) => chat.name || chat.chatId.replace(/@.*$/, "");
export const newer = (a, b) => !b || a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id);
const reading = new Set(); // chats with a mark-read scheduled

const loading = new Set(); // per page being read: the chats whose unread count live events raised meanwhile

export async function loadChats() {
  const counted = new Set();
  loading.add(counted);
  let page;
  try {
    page = await api("/api/v1/waha/chats?limit=100");
  } finally {
    loading.delete(counted);
  }
  for (const chat of page.items) {
    const known = state.chats.get(chat.chatId);
    // A live event may already have brought a newer message than the stored one.
    if (known && newer(known.lastMessage || {}, chat.lastMessage)) chat.lastMessage = known.lastMessage;
    // The page may have been read before a message counted live meanwhile was stored (or after): the
    // higher count has them all.
    if (known && counted.has(chat.chatId)) chat.unreadCount = Math.max(known.unreadCount || 0, chat.unreadCount || 0);
    state.chats.set(chat.chatId, chat);
  }
  renderChats();
  if (state.selected && state.chats.get(state.selected)?.unreadCount) scheduleRead(state.selected);
}

const preview = (m) => {
  if (m.revoked) return "message deleted";
  return `${m.fromMe ? "you: " : ""}${m.body ?? (m.type && m.type !== "chat" ? `(${m.type})` : "")}`;
};

export function renderChats() {
  const list = $("chats");
  const chats = [...state.chats.values()].sort((a, b) => (newer(a.lastMessage || {}, b.lastMessage) ? -1 : 1));
  list.replaceChildren(
    ...chats.map((chat) => {
      const button = element("button", { type: "button", "data-chat-id": chat.chatId },
        element("strong", { text: chatLabel(chat) }),
        element("span", { className: "muted", text: chat.lastMessage ? preview(chat.lastMessage) : "" }));
      if (chat.unreadCount > 0) {
        button.append(element("span", { className: "unread", testId: "unread", text: String(chat.unreadCount),
          title: `${chat.unreadCount} unread` }));
      }
      if (chat.chatId === state.selected) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => selectChat(chat.chatId).catch(report));
      return element("li", {}, button);
    }),
  );
  $("no-chats").hidden = chats.length > 0;
}

// A message from a live event or the user's own send: the chat's last message and unread count.
export function noteMessage(m, { received = false } = {}) {
  const chat = state.chats.get(m.chatId) || { chatId: m.chatId, name: null, isGroup: m.chatId.endsWith("@g.us"), unreadCount: 0 };
  if (m.chatName && !chat.name) chat.name = m.chatName;
  if (newer(m, chat.lastMessage)) chat.lastMessage = { id: m.id, body: m.body, fromMe: m.fromMe, type: m.type, timestamp: m.timestamp };
  if (received && !m.fromMe) {
    if (m.chatId === state.selected && document.visibilityState === "visible") scheduleRead(m.chatId);
    else {
      chat.unreadCount = (chat.unreadCount || 0) + 1;
      for (const counted of loading) counted.add(m.chatId);
    }
  }
  state.chats.set(m.chatId, chat);
  renderChats();
}

// A chat's last message was edited or deleted.
export function noteChange(chatId, id, change) {
  const last = state.chats.get(chatId)?.lastMessage;
  if (last?.id !== id) return;
  Object.assign(last, change);
  renderChats();
}

// Reading happens in the open chat: WhatsApp's blue ticks for the sender, the unread count back to 0.
export function scheduleRead(chatId) {
  if (reading.has(chatId)) return;
  reading.add(chatId);
  later(() => {
    reading.delete(chatId);
    markRead(chatId).catch(report);
  }, READ_DELAY_MS);
}

export async function markRead(chatId) {
  await api(`/api/v1/waha/chats/${encodeURIComponent(chatId)}/read`, { method: "POST", body: {} });
  onChatRead(chatId);
}

// POST /read answered, or a live chat.read (the user read it in another tab).
export function onChatRead(chatId) {
  const chat = state.chats.get(chatId);
  if (!chat || !chat.unreadCount) return;
  chat.unreadCount = 0;
  renderChats();
}

export function forgetChats() {
  reading.clear();
  loading.clear();
  $("chats").replaceChildren();
}
