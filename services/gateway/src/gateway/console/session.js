// The user's WhatsApp session: its status, the QR to scan, Connect.
import { api, clearError, report, reportSession } from "./api.js";
import { loadChats } from "./chats.js";
import { showHistoryImport } from "./pairing.js";
import { $, later, state } from "./state.js";

// WAHA's logout and restart stop the session, then start it again (WAHA itself pauses ~3 s between):
// a STOPPED right after a running status is shown only if it still holds this much later.
const STOPPED_SETTLE_MS = 4000;
export const QR_STATES = new Set(["STARTING", "SCAN_QR_CODE"]);
const RUNNING = new Set(["STARTING", "SCAN_QR_CODE", "WORKING"]);
const CONNECTABLE = new Set(["STOPPED", "FAILED"]);

// `qrUnsure`: a live STARTING keeps the QR shown, dimmed, until GET /qr says whether it still holds:
// the event may be the late report of the start whose QR GET /qr already answered (it used to hide
// a QR just shown), or a restart's, whose new QR GET /qr answers.
export function setStatus(view, { settled = false, qrUnsure = false } = {}) {
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
  } else if (view.status === "STARTING" && qrUnsure && state.qrValue) {
    $("qr").classList.add("unsure");
  } else if (view.status !== "SCAN_QR_CODE") {
    hideQr();
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

export async function refreshStatus(options) {
  const view = await api("/api/v1/waha/status");
  state.userId = view.userId;
  $("user").textContent = view.userId;
  setStatus(view, options);
  showHistoryImport(view.historyImport);
}

// GET /qr starts the session if needed and answers the current QR (or none once WORKING).
export async function refreshQr() {
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
  $("qr").classList.remove("unsure");
  $("qr").hidden = false;
}

export function hideQr() {
  state.qrValue = null;
  $("qr").hidden = true;
  $("qr").classList.remove("unsure");
  $("qr-image").removeAttribute("src");
  delete $("qr-image").dataset.value;
}

export async function connect() {
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

// A live session.status_changed / session.qr_updated.
export function onSessionEvent(type, data) {
  if (type === "session.status_changed") {
    setStatus(data, { qrUnsure: true });
    if (QR_STATES.has(data.status)) refreshQr().catch(reportSession);
  } else if (data.value !== state.qrValue) {
    refreshQr().catch(reportSession);
  }
}
