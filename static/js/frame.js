// Glue to the portal through the official @bitrix24/b24jssdk (global `B24Js`, loaded before us):
// the frame handshake, fresh auth for session renewal, frame height after each render, page title,
// reload, links into the portal. Everything here degrades quietly outside a Bitrix24 frame (the SDK
// then refuses to init).

const MIN_HEIGHT = 360; // room for the confirmation dialog even when the page itself is short
let framePromise = null;
let lastHeight = 0;
let fitTimer = null;
let portalOrigin = ""; // the parent portal's origin as b24jssdk knows it (scheme from PROTOCOL), once connected
let portalDomain = ""; // the verified domain the server rendered (fallback before the handshake)

/** The portal's verified domain, for links before b24jssdk has connected. */
export function setPortalDomain(domain) {
  portalDomain = String(domain || "");
}

/** The B24Frame, initialized once (b24jssdk shares one promise between callers too). */
export function connect() {
  if (!framePromise) {
    framePromise = window.B24Js
      ? window.B24Js.initializeB24Frame()
      : Promise.reject(new Error("The Bitrix24 SDK did not load."));
    framePromise.then(($b24) => {
      portalOrigin = $b24.getTargetOrigin();
    }).catch(() => {});
  }
  return framePromise;
}

/**
 * An address in the portal (e.g. `/crm/deal/details/3/`): on the origin b24jssdk talks to (http for
 * a portal with PROTOCOL=0, such as the sandbox), else https on the verified domain. Links to it use
 * target="_top": the portal page itself goes there (a plain link works in every portal; the sandbox
 * portal page does not play b24jssdk's slider command `openPath`).
 */
export function portalUrl(path) {
  const origin = portalOrigin || `https://${portalDomain}`;
  return new URL(path, origin).href;
}

async function frameOrNull() {
  try {
    return await connect();
  } catch {
    return null;
  }
}

/** Fresh portal auth of the current user (the parent window answers `refreshAuth`). */
export async function refreshAuth() {
  const $b24 = await connect();
  const auth = await $b24.auth.refreshAuth();
  if (!auth || !auth.access_token) throw new Error("The portal returned no authorization.");
  return auth;
}

/** Content height of the page (not the iframe's current viewport, so the frame can also shrink). */
function contentHeight() {
  const body = document.body;
  return Math.max(MIN_HEIGHT, Math.ceil(body.scrollHeight), Math.ceil(body.getBoundingClientRect().height));
}

/** Resize the frame to the content, soon (coalesces bursts of renders). */
export function fitSoon() {
  clearTimeout(fitTimer);
  fitTimer = setTimeout(fitNow, 30);
}

export async function fitNow() {
  const $b24 = await frameOrNull();
  if (!$b24) return;
  const height = contentHeight();
  if (height === lastHeight) return;
  lastHeight = height;
  const parent = $b24.parent;
  if (height >= document.documentElement.clientHeight || !parent.message) {
    await parent.fitWindow(); // grows to the scroll height, width 100%
  } else {
    // fitWindow never shrinks (it measures the viewport too); send its own command with our height.
    await parent.message.send("resizeWindow", { width: "100%", height, isSafely: true });
  }
}

/** Refit whenever the page's size changes (renders, dialogs, validation messages, window width). */
export function watchSize() {
  if ("ResizeObserver" in window) new ResizeObserver(fitSoon).observe(document.body);
  fitSoon();
}

export async function setTitle(title) {
  const $b24 = await frameOrNull();
  if ($b24) await $b24.parent.setTitle(title);
}

/** Reload the portal page around the app (used by Retry buttons). */
export async function reloadPortalPage() {
  const $b24 = await frameOrNull();
  if ($b24) await $b24.parent.reloadWindow();
  else window.location.reload();
}
