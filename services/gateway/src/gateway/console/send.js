// The send form: a text, or a file (image, document, voice note, video) with an optional caption.
import { api, clearError } from "./api.js";
import { onMessage, selectChat } from "./conversation.js";
import { sentFile } from "./media.js";
import { $, randomKey, state } from "./state.js";

// What the server will call the file when no kind is chosen (gateway media_intake.kind_for).
function guessedKind(file) {
  const major = file.type.split("/")[0];
  return { image: "image", video: "video", audio: "voice" }[major] || "document";
}

function sameSend(a, b) {
  return a && a.chatId === b.chatId && a.text === b.text && a.file === b.file && a.kind === b.kind;
}

function body({ chatId, text, file, kind }) {
  if (!file) return { chatId, text };
  const form = new FormData();
  form.append("chatId", chatId);
  if (text.trim()) form.append("text", text);
  if (kind) form.append("kind", kind);
  form.append("file", file, file.name);
  return form;
}

export async function send(event) {
  event.preventDefault();
  const file = $("send-file").files[0] || null;
  const wanted = { chatId: $("send-to").value.trim(), text: $("send-text").value, file, kind: $("send-kind").value };
  if (!wanted.chatId || (!file && !wanted.text.trim())) return;
  // A send retried after an error keeps its Idempotency-Key: WhatsApp gets it once.
  const key = sameSend(state.pendingSend, wanted) ? state.pendingSend.key : randomKey();
  state.pendingSend = { ...wanted, key };
  const button = event.submitter || $("send-form").querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const sent = await api("/api/v1/waha/messages", { method: "POST", headers: { "Idempotency-Key": key }, body: body(wanted) });
    state.pendingSend = null;
    clearForm();
    const kind = file ? wanted.kind || guessedKind(file) : null;
    const message = {
      id: sent.id, chatId: sent.chatId, fromMe: true, body: wanted.text.trim() ? wanted.text : null,
      type: kind || "chat", hasMedia: Boolean(file), timestamp: sent.timestamp, ack: null,
      // The gateway stored the file before sending it: it can be shown at once.
      media: file ? { kind, mimetype: file.type, filename: file.name, size: file.size, status: "stored", error: null } : null,
    };
    if (file) sentFile(sent.id, file);
    onMessage(message);
    if (state.selected !== sent.chatId) {
      await selectChat(sent.chatId);
      onMessage(message);
    }
  } finally {
    button.disabled = false;
  }
}

function clearForm() {
  $("send-text").value = "";
  $("send-file").value = "";
  $("send-kind").value = "";
  showChosenFile();
}

// The chosen file's name beside the picker, and the text box turned into its caption. Another file
// (or none) is another send: what was said about the last one goes.
export function showChosenFile() {
  const file = $("send-file").files[0];
  clearError("send-error");
  $("send-file-name").textContent = file ? file.name : "";
  $("send-kind").hidden = !file;
  $("send-file-clear").hidden = !file;
  $("send-text").placeholder = file ? "Caption (optional)" : "Write a message";
}

export function clearChosenFile() {
  $("send-file").value = "";
  showChosenFile();
}
