// Audit log: every change, newest first, paged with the API's cursor; a new entry arrives as an audit.recorded event.
import { api, debounce, follow, h, pager } from './live.js';

const audit = pager(document.querySelector('#audit tbody'), async (cursor) => {
  const q = new URLSearchParams({ limit: 100 });
  if (cursor) q.set('cursor', cursor);
  const { entries, next_cursor: next } = await api('GET', `/audit?${q}`);
  return { items: entries, next };
}, (e) => h('tr', { id: `audit-${e.id}` },
  h('td', {}, new Date(e.ts * 1000).toLocaleString()), h('td', {}, e.who), h('td', {}, e.via),
  h('td', {}, e.action), h('td', {}, e.target), h('td', {}, e.reason || '')));

follow('audit.recorded', debounce(() => audit.load(), 200), () => audit.load());
