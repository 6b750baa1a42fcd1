// The console's only way to the node: the management API (/v1) with the user's token as a
// bearer header, and the live event feed (/v1/events) over a WebSocket whose first message
// carries the token. The token lives in sessionStorage: it is gone when the tab closes and
// is never put in a cookie or a URL.

const KEY = 'tern.token';

export function token() { return sessionStorage.getItem(KEY); }
export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function clearToken() { sessionStorage.removeItem(KEY); }

// What a refused token means, in words (docs/http-api.md, "Refusals").
const REASONS = {
  missing: 'No token was given.',
  malformed: 'That is not a tern token: paste the whole token (tern_… or the admin token).',
  unknown: 'This node does not know that token.',
  revoked: 'That token was revoked.',
  expired: 'That token has expired: ask for a new one (tern token create).',
  scope: 'That token lacks the scope this page needs',
  rate_limited: 'That token has made too many requests: wait a moment.',
};

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    let text = REASONS[e.reason] || e.message || `HTTP ${status}`;
    if (e.reason === 'scope' && e.scope_needed) text += ` (${e.scope_needed}).`;
    super(text);
    this.status = status;
    this.code = e.code || '';
    this.reason = e.reason || '';
  }
  // Whether the token itself is no good (back to the login page).
  get badToken() { return this.status === 401; }
}

// GET (or another method) of a /v1 path; the parsed JSON, or an ApiError.
export async function api(path, options = {}) {
  const t = options.token ?? token();
  const headers = { Accept: 'application/json' };
  if (t) headers.Authorization = `Bearer ${t}`;
  let res;
  try {
    res = await fetch(path, { method: options.method || 'GET', headers, cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { error: { message: `The node did not answer (${err.message}).` } });
  }
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// Follows a function's invocations: calls onMessage with each message of the feed, and
// onEnd with a reason when the feed ends. Returns a function that closes it.
export function follow(fn, onMessage, onEnd) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/v1/events?function=${encodeURIComponent(fn)}`);
  let ended = false;
  const end = (why) => { if (!ended) { ended = true; onEnd(why); } };
  ws.onopen = () => ws.send(JSON.stringify({ token: token() }));
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === 'error') end(msg);
    else if (msg.type === 'cut') end({ reason: 'cut', message: msg.message });
    else onMessage(msg);
  };
  ws.onclose = (ev) => end({ reason: 'closed', message: `the feed closed (${ev.code}${ev.reason ? ': ' + ev.reason : ''})` });
  ws.onerror = () => end({ reason: 'closed', message: 'the feed could not connect' });
  return () => { ended = true; ws.close(); };
}
