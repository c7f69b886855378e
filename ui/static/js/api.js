// Every call to the appliance's JSON API goes through `api()`, so errors read the same on every
// page: the server's message (already written for people), plus what to do about rate limits,
// a busy queue and a lost connection.

export class ApiError extends Error {
  constructor(status, code, message, { field = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }

  get offline() {
    return this.status === 0;
  }
}

const OFFLINE =
  "Can't reach the classroom server right now. Check your Wi-Fi; nothing you typed is lost, " +
  "and it is saved as soon as the connection is back.";

function sentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return "";
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?)]$/.test(first) ? first : `${first}.`;
}

function friendly(status, error, retryAfter) {
  const message = sentence(error.message);
  if (status === 429) {
    if (/try again/i.test(message)) return message; // the server already said when
    return `${message} ${retryAfter ? `You can try again in ${retryAfter} seconds.` : "Please wait a moment."}`;
  }
  if (status === 503) {
    if (/try again/i.test(message)) return message;
    return `${message || "The code runner is not available right now."} ${
      retryAfter ? `Try again in about ${retryAfter} seconds.` : "Try again in a minute."
    }`;
  }
  if (status >= 500 && !error.message) {
    return "The classroom server had a problem answering. Try again in a minute; if it keeps happening, tell your teacher.";
  }
  return message || `The request failed (HTTP ${status}).`;
}

function goTo(path) {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`${path}?next=${next}`);
}

/**
 * Call the API. `body` is sent as JSON unless `contentType` is given (then it is sent as it is).
 * Returns the parsed JSON (or text for `as: "text"`); throws ApiError.
 */
export async function api(
  method,
  path,
  body = undefined,
  { contentType = null, as = "json", keepalive = false, timeoutMs = null } = {},
) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", keepalive };
  // A request caught by a network change can hang without ever failing; a timeout turns that
  // into an ordinary "offline" error that callers already retry.
  if (timeoutMs) init.signal = AbortSignal.timeout(timeoutMs);
  if (body instanceof FormData) {
    init.body = body; // the browser writes the multipart Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = contentType || "application/json";
    init.body = contentType ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "offline", OFFLINE);
  }
  if (response.ok && as === "text") return response.text();
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const error = (data && data.error) || { code: `http_${response.status}`, message: "" };
  const retryAfter = Number(response.headers.get("Retry-After")) || null;
  // A session that ended (logout elsewhere, password reset) or texts to accept: go where that is fixed.
  if (response.status === 401 && (error.code === "login_required" || error.code === "session_ended")) goTo("/login");
  if (response.status === 403 && error.code === "legal_acceptance_required") goTo("/accept-legal");
  throw new ApiError(response.status, error.code, friendly(response.status, error, retryAfter), {
    field: error.field || null,
    retryAfter,
  });
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);
