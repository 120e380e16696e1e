// Our JSON API (/api/v1) with the UI session token.
//
// * The token lives in <meta name="b24-session"> (rendered by POST /app) and only there: it is sent
//   as `Authorization: Bearer`, never put in a URL, a cookie or Web Storage. Its expiry (ms since the
//   epoch) is kept beside it in the meta's `data-expires-at`.
// * Renewal: b24jssdk `auth.refreshAuth()` (fresh AUTH_ID from the portal) → POST /api/v1/session.
//   It runs shortly before the token expires (timer, and a check before each request) and on any 401,
//   after which the request is sent once more. Concurrent callers share one renewal. Views are never
//   re-rendered by a renewal, so whatever the user typed stays where it is.
// * Writes carry an `Idempotency-Key` chosen per user action by the caller, and the retry after a
//   renewal reuses it, so a double click or a retry never creates a badge twice.

const META = 'meta[name="b24-session"]';
const RENEW_MARGIN_MS = 120 * 1000;
const MIN_DELAY_MS = 5 * 1000;

export class ApiError extends Error {
  constructor({ status = 0, code = "NETWORK_ERROR", description = "", fields = null, retryAfter = null, deals = null }) {
    super(description || code);
    this.status = status;
    this.code = code;
    this.description = description;
    this.fields = fields;
    this.retryAfter = retryAfter;
    this.deals = deals; // ENTITY_WITH_BADGE_EXISTS: the deals this app knows to show the badge ([] = unknown ones)
  }

  /** The portal's authorization is gone: the app-level re-authorization message applies. */
  get isPortalUnavailable() {
    return ["NEEDS_REAUTH", "APP_UNINSTALLED", "PORTAL_UNKNOWN"].includes(this.code);
  }
}

export function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Worth sending again a moment later: the portal or the app is busy, or the network dropped the call. */
export function isTransient(error) {
  return error.status === 503 || error.status === 429 || error.status === 0 || error.code === "REQUEST_IN_PROGRESS";
}

/**
 * `send()` until it succeeds, at most `attempts` times, after a transient failure waiting for the
 * server's Retry-After (else 2 s, 4 s, …; at most 30 s); `onWait(seconds)` says so first. Only for
 * requests that may be repeated (a DELETE, or a write with the same Idempotency-Key).
 */
export async function retrying(send, { attempts = 3, onWait = () => {} } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await send();
    } catch (error) {
      if (!isTransient(error) || attempt >= attempts) throw error;
      const wait = Math.min(30, error.retryAfter || attempt * 2);
      onWait(wait);
      await sleep(wait * 1000);
    }
  }
}

export class Api {
  /**
   * @param {object} options
   * @param {number} options.ttl           seconds the rendered token lives (data-session-ttl)
   * @param {() => Promise<{access_token: string, member_id: string}>} options.frameAuth  fresh portal auth
   * @param {string} options.domain        the verified portal domain (DOMAIN for /session)
   * @param {(session: object) => void} [options.onSession]  called with each renewed session
   */
  constructor({ ttl, frameAuth, domain, onSession }) {
    this.meta = document.querySelector(META);
    this.frameAuth = frameAuth;
    this.domain = domain;
    this.onSession = onSession || (() => {});
    this.pending = null;
    this.timer = null;
    this.ttlMs = Math.max(30, Number(ttl) || 900) * 1000;
    this.setExpiry(Date.now() + this.ttlMs);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.expiringSoon()) this.renew().catch(() => {});
    });
  }

  get token() {
    return this.meta ? this.meta.content : "";
  }

  get expiresAt() {
    return Number(this.meta && this.meta.dataset.expiresAt) || 0;
  }

  setExpiry(at) {
    if (this.meta) this.meta.dataset.expiresAt = String(at);
    clearTimeout(this.timer);
    const margin = Math.min(RENEW_MARGIN_MS, this.ttlMs / 4);
    this.timer = setTimeout(() => this.renew().catch(() => {}), Math.max(MIN_DELAY_MS, at - Date.now() - margin));
  }

  expiringSoon() {
    return Date.now() > this.expiresAt - Math.min(30 * 1000, this.ttlMs / 10);
  }

  /** One renewal at a time; every caller waits for the same one. */
  renew() {
    if (!this.pending) {
      this.pending = this.renewNow().finally(() => {
        this.pending = null;
      });
    }
    return this.pending;
  }

  async renewNow() {
    let auth;
    try {
      auth = await this.frameAuth();
    } catch (error) {
      throw new ApiError({ status: 401, code: "SESSION_RENEWAL_FAILED", description: String(error && error.message || error) });
    }
    const response = await this.fetch("/api/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ AUTH_ID: auth.access_token, member_id: auth.member_id, DOMAIN: this.domain }),
    });
    const data = await readJson(response);
    if (!response.ok || !data || !data.token) {
      const error = toError(response, data);
      throw error.status === 401 ? new ApiError({ ...error, code: "SESSION_RENEWAL_FAILED" }) : error;
    }
    if (this.meta) this.meta.content = data.token;
    this.ttlMs = Math.max(30, Number(data.expires_in) || 900) * 1000;
    this.setExpiry(Date.now() + this.ttlMs);
    this.onSession(data);
    return data;
  }

  async fetch(url, init) {
    try {
      return await fetch(url, { credentials: "omit", cache: "no-store", ...init });
    } catch (error) {
      throw new ApiError({ status: 0, code: "NETWORK_ERROR", description: String(error && error.message || error) });
    }
  }

  send(method, path, body, idempotencyKey) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    return this.fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  /** The parsed JSON answer (null for 204), or throws ApiError. */
  async request(method, path, { body, idempotencyKey } = {}) {
    if (this.expiringSoon()) await this.renew().catch(() => {}); // a 401 below still gets its own renewal
    let response = await this.send(method, path, body, idempotencyKey);
    if (response.status === 401) {
      await this.renew();
      response = await this.send(method, path, body, idempotencyKey);
    }
    if (response.status === 204) return null;
    const data = await readJson(response);
    if (!response.ok) throw toError(response, data);
    return data;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body, idempotencyKey) {
    return this.request("POST", path, { body, idempotencyKey });
  }

  put(path, body, idempotencyKey) {
    return this.request("PUT", path, { body, idempotencyKey });
  }

  delete(path) {
    return this.request("DELETE", path);
  }
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function toError(response, data) {
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return new ApiError({
    status: response.status,
    code: (data && data.error) || `HTTP_${response.status}`,
    description: (data && data.error_description) || response.statusText || "",
    fields: (data && data.fields) || null,
    retryAfter: Number.isFinite(retry) ? retry : null,
    deals: data && Array.isArray(data.deals) ? data.deals.filter((id) => Number.isInteger(id) && id > 0) : null,
  });
}
