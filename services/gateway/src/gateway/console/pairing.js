// waha-fleet console, beside the QR: pairing by phone number (for a phone that shows the QR itself),
// and how far the import of the WhatsApp history is. Uses app.js's `api`, `$`, `showError`.

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
function showHistoryImport(progress) {
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

document.addEventListener("DOMContentLoaded", () => {
  $("pairing-form").addEventListener("submit", (event) => requestPairingCode(event));
  followHistoryImport();
});
