// The console's session and its calls to the REST API.
//
// Tokens: the access token (a JWT, 15 minutes) lives in this module's memory only, so no script of another
// page and no storage holds it. The refresh token is kept in sessionStorage: it survives a reload of the
// tab, is never sent by the browser on its own (so no request can be forged with it), and is gone when the
// tab closes. Each refresh rotates it; logging out revokes it on the server.

const REFRESH_KEY = "infrawatch.refresh_token";

let access = null;     // the access token
let accessUntil = 0;   // when to refresh it (ms since the epoch), a minute before it expires
let claims = null;     // its decoded payload: sub, tenant, role
let refreshing = null; // the refresh in flight, shared by every caller

/** ApiError is a problem+json answer (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || (status ? `HTTP ${status}` : "the server did not answer"));
    this.status = status;
    this.problem = problem || {};
  }
}

function decodeClaims(token) {
  const part = token.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json);
}

function keep(pair) {
  access = pair.access_token;
  claims = decodeClaims(access);
  accessUntil = Date.now() + Math.max(10, pair.expires_in - 60) * 1000;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

function forget() {
  access = null;
  claims = null;
  accessUntil = 0;
  sessionStorage.removeItem(REFRESH_KEY);
}

async function post(path, body) {
  let r;
  try {
    r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new ApiError(0, null);
  }
  const j = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, j);
  return j;
}

/** login logs in; tenantId is needed for a member of several tenants (the server says so). */
export async function login(email, password, tenantId) {
  const body = { email, password };
  if (tenantId) body.tenant_id = tenantId;
  keep(await post("/api/v1/auth/login", body));
}

/** refresh rotates the refresh token for a new pair; concurrent callers share one refresh. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const token = sessionStorage.getItem(REFRESH_KEY);
      if (!token) throw new ApiError(401, { detail: "not logged in" });
      try {
        keep(await post("/api/v1/auth/refresh", { refresh_token: token }));
      } catch (e) {
        if (e.status === 401 || e.status === 403) forget();
        throw e;
      }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** resume answers whether there is a session: in memory, or one a reload can take up again. */
export async function resume() {
  if (access) return true;
  if (!sessionStorage.getItem(REFRESH_KEY)) return false;
  try {
    await refresh();
    return true;
  } catch {
    return false;
  }
}

/** logout ends the session on the server (the refresh token's family) and here. */
export async function logout() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  forget();
  if (token) await post("/api/v1/auth/logout", { refresh_token: token }).catch(() => {});
}

/**
 * switchTenant trades the session for one in another tenant of the user (POST /api/v1/auth/switch), then
 * logs the old session out on the server, so only the new one can be refreshed. The caller must drop
 * everything it holds of the old tenant (main.js loads the console afresh).
 */
export async function switchTenant(tenantId) {
  const old = sessionStorage.getItem(REFRESH_KEY);
  const pair = await api("/api/v1/auth/switch", { method: "POST", body: { tenant_id: tenantId } });
  keep(pair);
  if (old) await post("/api/v1/auth/logout", { refresh_token: old }).catch(() => {});
}

/** session is who is logged in: the tenant id, the role and the user id. */
export function session() {
  if (!claims) return null;
  return { tenant: claims.tenant, role: claims.role, user: String(claims.sub || "").replace(/^user:/, "") };
}

const ROLES = ["viewer", "editor", "admin", "owner"];
const LEAST_ROLE = { read: "viewer", inventory: "editor", access: "admin", tenant: "owner" };

/** can says whether the session's role holds a permission (the server decides; this only hides buttons). */
export function can(permission) {
  const s = session();
  return !!s && ROLES.indexOf(s.role) >= ROLES.indexOf(LEAST_ROLE[permission]);
}

/** api calls the REST API with the access token, refreshing it first when it is due or refused. */
export async function api(path, { method = "GET", body } = {}) {
  if (!access || Date.now() >= accessUntil) await refresh();
  const send = () => fetch(path, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + access }, body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let r;
  try {
    r = await send();
    if (r.status === 401) {
      await refresh();
      r = await send();
    }
    if (r.status === 429 && method === "GET") { // a heavy read waited for its tenant's share: once more, later
      const wait = Math.min(5, Number(r.headers.get("Retry-After")) || 1);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      r = await send();
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(0, null);
  }
  if (r.status === 204) return null;
  const j = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, j);
  return j;
}

/** all reads every page of a list (at most max items). */
export async function all(path, max = 2000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(path + sep + "limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
