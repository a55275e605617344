// Beside the QR: pairing by phone number (for a phone that shows the QR itself), and how far the
// import of the WhatsApp history is.
import { Stale, api, clearError, showError } from "./api.js";
import { loadChats } from "./chats.js";
import { $, state } from "./state.js";

async function requestPairingCode(event) {
  event.preventDefault();
  clearError("pairing-error");
  const phoneNumber = $("pairing-phone").value.replace(/[\s+().-]/g, "");
  try {
    const { code } = await api("/api/v1/waha/pairing-code", { method: "POST", body: { phoneNumber } });
    $("pairing-code").textContent = code;
    $("pairing-code").hidden = false;
  } catch (error) {
    if (!(error instanceof Stale)) showError("pairing-error", error);
  }
}

const IMPORT_POLL_MS = 2000;
let importShown = null; // the last `historyImport.state` shown

// `historyImport` of GET /status: {state, chats, messages}; idle shows nothing.
export function showHistoryImport(progress) {
  const before = importShown;
  importShown = progress?.state ?? null;
  // Imported messages are not pushed live: once the import is done, the chat list is read again.
  if (importShown === "done" && before !== "done" && state.status === "WORKING") loadChats().catch(() => {});
  const line = $("history-import");
  if (!progress || progress.state === "idle") {
    line.hidden = true;
    return;
  }
  const words = { running: "Importing your chats…", done: "History imported", failed: "History import failed" };
  line.textContent = `${words[progress.state] || progress.state}: ${progress.chats} chats, ${progress.messages} messages`;
  line.dataset.state = progress.state;
  line.hidden = false;
}

// The live events say when the session is WORKING, not how far the import is: while it may be
// running (just connected, or running when last seen), ask the status now and then.
async function followHistoryImport() {
  if (state.token && state.status === "WORKING" && importShown !== "done" && importShown !== "failed") {
    const view = await api("/api/v1/waha/status").catch(() => null);
    if (view) showHistoryImport(view.historyImport);
  }
  if (state.status !== "WORKING") importShown = null; // the next pairing imports again
  setTimeout(followHistoryImport, IMPORT_POLL_MS);
}

export function startPairing() {
  $("pairing-form").addEventListener("submit", (event) => requestPairingCode(event));
  followHistoryImport();
}

// Signing out: nothing of this user's pairing or import stays on the page.
export function forgetPairing() {
  importShown = null;
  $("pairing-code").hidden = true;
  $("pairing-code").textContent = "";
  $("pairing-phone").value = "";
  $("history-import").hidden = true;
  clearError("pairing-error");
}
