// Audit log: every change, newest first; a new entry arrives as an audit.recorded event.
import { api, debounce, follow, h } from './live.js';

async function load() {
  const { entries } = await api('GET', '/audit?limit=100');
  document.querySelector('#audit tbody').replaceChildren(...entries.map((e) => h('tr', {},
    h('td', {}, new Date(e.ts * 1000).toLocaleString()), h('td', {}, e.who), h('td', {}, e.via),
    h('td', {}, e.action), h('td', {}, e.target), h('td', {}, e.reason || ''))));
}

follow('audit.recorded', debounce(load, 200), load);
