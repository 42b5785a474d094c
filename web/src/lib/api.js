// api.js - the REST API client of the UI: the access token in memory only (never in storage),
// the refresh token in the daemon's HttpOnly cookie (X-OPSC-Session: cookie), one refresh and
// retry on a 401, and back to the login page (with the page to come back to) when the session
// is over.
import { signal } from '@preact/signals';
import { loc, navigate } from './router.js';
import { setStreamAuth } from './sse.js';

const BASE = '/api/v1';
const SESSION_HEADER = { 'X-OPSC-Session': 'cookie' };
const RANK = { viewer: 1, operator: 2, admin: 3 };

let access = null;
let refreshing = null;

/** {user, role} of the logged-in user, null before login or after the session ended. */
export const session = signal(null);
/** Set when the session ends by itself (expired or revoked), shown on the login page. */
export const sessionNote = signal('');

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.details = e.details || null;
  }
}

/** The user may do what `role` may (viewer < operator < admin). */
export function can(role) {
  return !!session.value && RANK[session.value.role] >= RANK[role];
}

async function parse(res) {
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

async function refresh() {
  if (!refreshing) {
    refreshing = fetch(BASE + '/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...SESSION_HEADER },
      body: '{}',
      credentials: 'same-origin',
    })
      .then(async (res) => {
        if (!res.ok) return false;
        access = (await res.json()).access_token;
        return true;
      })
      .catch(() => false)
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

function sessionOver() {
  const was = !!session.value;
  access = null;
  session.value = null;
  if (was) sessionNote.value = 'Your session has ended. Log in again to continue.';
  if (!loc.value.startsWith('/login')) navigate('/login?next=' + encodeURIComponent(loc.value), { replace: true });
}

/** Fetch with the access token; a 401 refreshes once and retries. Returns the Response. */
export async function raw(method, path, { body, headers = {}, signal: abort, retried = false } = {}) {
  const h = { ...headers };
  if (access) h.Authorization = 'Bearer ' + access;
  let payload = body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(BASE + path, { method, headers: h, body: payload, signal: abort, credentials: 'same-origin' });
  if (res.status === 401 && !retried && !path.startsWith('/auth/login')) {
    if (await refresh()) return raw(method, path, { body, headers, signal: abort, retried: true });
    sessionOver();
  }
  return res;
}

/** The parsed answer, or an ApiError for a status >= 400. */
export async function api(method, path, opts) {
  const res = await raw(method, path, opts);
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, body, opts) => api('POST', path, { ...opts, body: body === undefined ? {} : body });
export const patch = (path, body, opts) => api('PATCH', path, { ...opts, body });
export const del = (path, opts) => api('DELETE', path, opts);

/** Every item of a list endpoint (pages through next_cursor; at most `max`). */
export async function all(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(path + sep + 'limit=500' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

async function loadMe() {
  const me = await get('/auth/me');
  session.value = { user: me.user, role: me.effective_role };
}

export async function login(username, password) {
  const res = await fetch(BASE + '/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...SESSION_HEADER },
    body: JSON.stringify({ username, password }),
    credentials: 'same-origin',
  });
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data);
  access = data.access_token;
  sessionNote.value = '';
  await loadMe();
}

/** At start: a page reload keeps the session through the refresh cookie. */
export async function resume() {
  if (await refresh()) {
    try {
      await loadMe();
      return true;
    } catch (e) {
      return false;
    }
  }
  return false;
}

export async function logout() {
  try {
    await api('POST', '/auth/logout', { headers: SESSION_HEADER, body: {} });
  } finally {
    access = null;
    session.value = null;
    navigate('/login', { replace: true });
  }
}

setStreamAuth({
  header: () => (access ? { Authorization: 'Bearer ' + access } : {}),
  refresh,
  over: sessionOver,
});
