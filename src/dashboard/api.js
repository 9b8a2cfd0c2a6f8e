// The API. Authentication is the HttpOnly session cookie set by POST /v1/sessions; the page
// never stores the API key. Every API call goes through api(), which gives the server's
// error message and ends the session in the page on a 401.

import { state } from './state.js';

class ApiError extends Error {
  constructor(status, code, message, issues, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.issues = issues || [];
    this.retryAfter = retryAfter;
  }
}

/** Builds an ApiError from an error answer: `{code, message, issues}` (or `{error: {...}}`). */
export async function errorFrom(res) {
  let body = null;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const err = body && typeof body.error === 'object' && body.error !== null ? body.error : body;
  let message = (err && typeof err.message === 'string' && err.message) || `HTTP ${res.status} ${res.statusText || ''}`.trim();
  const issues = err && Array.isArray(err.issues) ? err.issues : [];
  if (issues.length) {
    const details = issues
      .slice(0, 5)
      .map((i) => {
        const path = Array.isArray(i.path) && i.path.length ? `${i.path.join('.')}: ` : '';
        return `${path}${i.message}`;
      })
      .join('; ');
    message = `${message} (${details})`;
  }
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(res.status, err && err.code, message, issues, Number.isFinite(retry) && retry > 0 ? retry : null);
}

let unauthorized = () => {};

/** What a 401 outside signing in does: app.js makes it end the session. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/**
 * Calls the API with the session cookie. Resolves with the JSON body (null for 204);
 * rejects with an ApiError whose message is the server's. A 401 (except while signing in)
 * ends the session in the page.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['Content-Type'] = 'application/json';
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  const epoch = state.epoch;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'NETWORK', `Cannot reach herald (${e && e.message ? e.message : 'network error'}). Is the server running?`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.signin) {
      if (epoch === state.epoch) unauthorized();
      err.silent = true;
    }
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'BAD_RESPONSE', `Unexpected answer from ${path} (not JSON)`);
  }
}
