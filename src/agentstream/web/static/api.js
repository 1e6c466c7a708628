// The server's REST API and SSE streams, with tokens kept in localStorage.

const TOKENS_KEY = "agentstream.tokens";

/** An API error: the server's `{error, message}` body and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function savedSession() {
  try {
    return JSON.parse(localStorage.getItem(TOKENS_KEY) || "null");
  } catch {
    return null;
  }
}

function saveSession(body) {
  const session = {
    access_token: body.access_token,
    refresh_token: body.refresh_token,
    email: body.user?.email ?? savedSession()?.email ?? "",
  };
  localStorage.setItem(TOKENS_KEY, JSON.stringify(session));
  return session;
}

export function forgetSession() {
  localStorage.removeItem(TOKENS_KEY);
}

/** Called when the session cannot be renewed (the page shows the sign-in form). */
let onSignedOut = () => {};
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not our JSON error body (a proxy's page, say): the status says enough.
  }
  return new ApiError(response.status, body.error ?? "http_error", body.message ?? response.statusText);
}

export async function signIn(email, password) {
  const response = await fetch("/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw await errorFrom(response);
  return saveSession(await response.json());
}

// One refresh at a time: concurrent 401s wait for the same rotation (the old refresh
// token stops working once used).
let refreshing = null;

async function refresh() {
  const session = savedSession();
  if (!session?.refresh_token) return false;
  const response = await fetch("/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: session.refresh_token }),
  });
  if (!response.ok) return false;
  saveSession(await response.json());
  return true;
}

function withAuth(init) {
  const headers = new Headers(init.headers);
  const token = savedSession()?.access_token;
  if (token) headers.set("Authorization", `Bearer ${token}`);
  if (init.json !== undefined) headers.set("Content-Type", "application/json");
  const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
  return { ...init, headers, body };
}

/** `fetch` with the access token; on 401 the tokens are refreshed once and the call retried. */
export async function authFetch(path, init = {}) {
  let response = await fetch(path, withAuth(init));
  if (response.status === 401) {
    refreshing ??= refresh().finally(() => {
      refreshing = null;
    });
    if (await refreshing) {
      response = await fetch(path, withAuth(init));
    }
    if (response.status === 401) {
      forgetSession();
      onSignedOut();
    }
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** A JSON request; resolves to the parsed body (or null for 204). */
export async function api(path, init = {}) {
  const response = await authFetch(path, init);
  return response.status === 204 ? null : response.json();
}

/** Every item of a cursor-paginated list. */
export async function listAll(path, limit = 100) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await api(
      `${path}${separator}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    items.push(...page.items);
    cursor = page.has_more ? page.cursor : null;
  } while (cursor);
  return items;
}

/**
 * Read an SSE response (`id: <seq>` / `data: <json>` frames, `: ping` comments) and call
 * `onEvent(event, seq)` for each event. Resolves when the server ends the stream.
 */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
  }
}

function dispatch(block, onEvent) {
  let seq = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue; // keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") seq = Number(value);
    else if (field === "data") data.push(value);
  }
  if (data.length) onEvent(JSON.parse(data.join("\n")), seq);
}
