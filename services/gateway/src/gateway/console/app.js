// waha-fleet console: one user's WhatsApp (status, QR, chats, messages and their files) through the
// gateway's API. Plain JS modules, no build step; every text from the server goes into the page via
// textContent only. The parts are listed in state.js.
import { Unauthorized, clearError, report, reportSession, showError } from "./api.js";
import { forgetChats } from "./chats.js";
import { forgetConversation } from "./conversation.js";
import { closeEvents, openEvents, poll, setLive } from "./live.js";
import { forgetPairing, startPairing } from "./pairing.js";
import { clearChosenFile, send, showChosenFile } from "./send.js";
import { QR_STATES, connect, hideQr, refreshQr, refreshStatus } from "./session.js";
import { $, later, onSignOut, resetState, state } from "./state.js";

const TOKEN_KEY = "waha-fleet.token";
const POLL_MS = 4000; // status and QR fallback; the WebSocket makes it mostly unnecessary

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
  openEvents().catch(report);
  const tick = async () => {
    if (!state.token) return;
    await poll().catch(report);
    if (state.token === token) later(tick, POLL_MS);
  };
  later(tick, POLL_MS);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  closeEvents();
  resetState();
  hideQr();
  forgetChats();
  forgetConversation();
  clearChosenFile();
  forgetPairing();
  $("user").textContent = "";
  $("send-to").value = "";
  $("console").hidden = true;
  $("whoami").hidden = true;
  $("sign-in").hidden = false;
  for (const box of ["error", "session-error", "send-error"]) clearError(box);
  if (message) showError("sign-in-error", new Error(message));
  else clearError("sign-in-error");
}

onSignOut(signOut);

// Modules run once the document is parsed.
$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  if (token) signIn(token).catch(report);
});
$("sign-out").addEventListener("click", () => signOut());
$("connect").addEventListener("click", () => connect().catch(reportSession));
$("send-form").addEventListener("submit", (event) => send(event).catch((error) => showError("send-error", error)));
$("send-file").addEventListener("change", showChosenFile);
$("send-file-clear").addEventListener("click", clearChosenFile);
startPairing();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved).catch(report);
