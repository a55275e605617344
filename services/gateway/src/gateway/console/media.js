// A message's file: images and stickers shown, voice notes, audio and video playable, documents
// downloadable under their name. The API wants the bearer token, which <img src> cannot send: each
// file is fetched with it and shown from an object URL, kept while its chat is open.
import { ApiError, api, apiBlob, plainWords, report } from "./api.js";
import { element } from "./state.js";

const views = new Map(); // message id -> {key, node}: reused across renders, so playback goes on
const urls = new Map(); // message id -> Promise of its object URL

const mediaPath = (id) => `/api/v1/waha/messages/${encodeURIComponent(id)}/media`;

// A live event can come before the message store has taken the news in, which answers 409
// media_not_stored (or 404 media_not_found: the message itself not stored yet) for a moment: asked
// again a few times, a little later each.
const NOT_STORED_RETRIES = 6;
const NOT_YET = new Set(["media_not_stored", "media_not_found"]);

async function download(id) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await apiBlob(mediaPath(id));
    } catch (error) {
      if (!(error instanceof ApiError && NOT_YET.has(error.code)) || attempt >= NOT_STORED_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 200 * 2 ** attempt)));
    }
  }
}

function objectUrl(id) {
  if (!urls.has(id)) {
    const url = download(id).then((blob) => URL.createObjectURL(blob));
    url.catch(() => urls.delete(id)); // asked again on the next render
    urls.set(id, url);
  }
  return urls.get(id);
}

// A file the user just sent is shown from the chosen file itself, with no download.
export function sentFile(id, file) {
  urls.set(id, Promise.resolve(URL.createObjectURL(file)));
}

function size(bytes) {
  if (bytes == null) return "";
  if (bytes < 1024) return `${bytes} B`;
  return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// `node` gets its object URL as `attribute` once fetched; a failed fetch is said in its place.
function filled(id, node, attribute = "src") {
  objectUrl(id).then(
    (url) => node.setAttribute(attribute, url),
    (error) => node.replaceWith(element("span", { className: "media-state error", text: plainWords(error) })),
  );
  return node;
}

function documentLink(m) {
  const name = m.media.filename || "document";
  const link = element("a", { className: "document", testId: "media-document", href: "#", download: name },
    `📄 ${name}`, element("small", { text: size(m.media.size) }));
  // Fetched on the first click only (a document may be large), then downloaded under its name.
  link.addEventListener("click", (event) => {
    if (link.getAttribute("href") !== "#") return;
    event.preventDefault();
    objectUrl(m.id).then((url) => {
      link.href = url;
      link.click();
    }, report);
  });
  return link;
}

function storedView(m) {
  const caption = m.body || m.media.filename || m.media.kind;
  switch (m.media.kind) {
    case "image":
      return filled(m.id, element("img", { className: "photo", testId: "media-image", alt: `photo: ${caption}` }));
    case "sticker":
      return filled(m.id, element("img", { className: "sticker", testId: "media-sticker", alt: "sticker" }));
    case "voice":
    case "audio":
      return filled(m.id, element("audio", { controls: "", preload: "metadata", testId: "media-audio",
        "aria-label": m.media.kind === "voice" ? "voice note" : `audio: ${caption}` }));
    case "video":
      return filled(m.id, element("video", { controls: "", preload: "metadata", testId: "media-video",
        "aria-label": `video: ${caption}` }));
    default:
      return documentLink(m);
  }
}

function failedView(m, retried) {
  const retry = element("button", { type: "button", className: "link", text: "retry" });
  retry.addEventListener("click", () => {
    retry.disabled = true;
    api(`${mediaPath(m.id)}/retry`, { method: "POST" }).then(() => retried(m), (error) => {
      retry.disabled = false;
      report(error);
    });
  });
  return element("span", { className: "media-state error", testId: "media-state", title: m.media.error || "" },
    `${m.media.kind} failed`, m.media.error ? ` (${m.media.error})` : "", " — ", retry);
}

// The element showing `m.media`; `retried(m)` is told when the user's retry was taken (the file is
// `pending` again, the message.media event will say how it went).
export function mediaView(m, retried) {
  const key = `${m.media.status}:${m.media.kind}`;
  const known = views.get(m.id);
  if (known?.key === key) return known.node;
  let node;
  if (m.media.status === "stored") node = storedView(m);
  else if (m.media.status === "failed") node = failedView(m, retried);
  else node = element("span", { className: "media-state", testId: "media-state", text: `${m.media.kind}: downloading…` });
  const box = element("div", { className: "media" }, node);
  views.set(m.id, { key, node: box });
  return box;
}

export function forgetMedia() {
  for (const url of urls.values()) url.then(URL.revokeObjectURL, () => {});
  urls.clear();
  views.clear();
}
