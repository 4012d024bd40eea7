// Shared by every page: the session, API calls with the CSRF header, and the live event socket.
const MAX_BACKOFF_MS = 8000;
let csrf = null;

export const canAct = () => document.body.dataset.canAct === 'yes';

export const session = fetch('/api/v1/session', { credentials: 'same-origin' })
  .then((r) => (r.ok ? r.json() : {}))
  .then((s) => { csrf = s.csrf_token || null; return s; });

/** Call the JSON API; changes carry the session's CSRF token. Throws an Error with the API's message. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    await session;
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch('/api/v1' + path, {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) { location.href = '/login?next=' + encodeURIComponent(location.pathname); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error) || `${method} ${path}: ${r.status}`);
  return data;
}

/** Show a message at the top of the page (errors of actions). */
export function flash(text) {
  const el = document.getElementById('flash');
  el.textContent = text;
  el.hidden = !text;
}

/** Run `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Build an element: h('button', {class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export const when = (epoch) => (epoch ? new Date(epoch * 1000).toLocaleString() : '—');

/** Say how long ago `epoch` (seconds) was, compactly. */
export function ago(epoch) {
  if (!epoch) return '—';
  let s = Math.max(0, Math.round(Date.now() / 1000 - epoch));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  s = Math.floor(s / 60);
  if (s < 1440) return `${Math.floor(s / 60)}h ${s % 60}m`;
  return `${Math.floor(s / 1440)}d ${Math.floor((s % 1440) / 60)}h`;
}

function setState(state, text) {
  const el = document.getElementById('conn');
  el.dataset.state = state;
  el.className = 'conn conn-' + state;
  el.textContent = text;
}

/**
 * Follow the event stream: `onEvent(event)` for every event, `onSync()` after every (re)connect and
 * resync frame so the page can reload its data. Reconnects with capped exponential backoff and
 * `since=<last id>`, so nothing published while away is lost.
 */
export async function follow(types, onEvent, onSync) {
  let last = null;
  let attempt = 0;
  const where = await api('GET', '/live').catch(() => ({ path: '/ws', port: null }));
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const host = where.port ? `${location.hostname}:${where.port}` : location.host;

  const open = () => {
    const q = new URLSearchParams();
    if (types) q.set('types', types);
    if (last) q.set('since', last);
    const ws = new WebSocket(`${scheme}//${host}${where.path}?${q}`);
    ws.onopen = () => { attempt = 0; setState('connected', 'live'); onSync(); };
    ws.onmessage = (msg) => {
      const event = JSON.parse(msg.data);
      if (event.type === 'ping') return;
      if (event.type === 'resync') { onSync(); return; }
      if (event.id) last = event.id;
      onEvent(event);
    };
    ws.onclose = () => {
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt += 1;
      setState('reconnecting', `reconnecting in ${Math.round(delay / 1000)}s…`);
      setTimeout(open, delay);
    };
  };
  open();
}

/** Hide or disable every action control when the role may not act (the server refuses anyway). */
export function guard(root = document) {
  if (canAct()) return;
  for (const el of root.querySelectorAll('[data-act]')) { el.disabled = true; el.hidden = true; }
}

/**
 * A table body that pages through a cursor API: `fetchPage(cursor)` returns `{items, next}`, `row(item)` builds a
 * <tr> with an id. reload() shows the first page again; while more pages are shown it only updates or adds rows
 * at the top, so reading older pages is not disturbed by live updates. A "More" button fetches the next page.
 */
export function pager(tbody, fetchPage, row) {
  let next = null;
  let extended = false;
  const more = h('button', { type: 'button', class: 'more', hidden: true, disabled: true, onclick: () => load(true) }, 'More');
  tbody.closest('table').after(more);
  async function load(older = false) {
    const { items, next: after } = await fetchPage(older ? next : null);
    const rows = items.map(row);
    if (older) { tbody.append(...rows); extended = true; } else if (!extended) tbody.replaceChildren(...rows);
    else {
      for (const el of rows.reverse()) {
        const old = document.getElementById(el.id);
        if (old) old.replaceWith(el); else tbody.prepend(el);
      }
    }
    if (older || !extended) next = after;
    more.hidden = more.disabled = !next;
  }
  return { load, reset: () => { extended = false; next = null; return load(); } };
}
