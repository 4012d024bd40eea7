// Alarms board: one card per alarm built in one pass from GET /alarms, acting from the card, updated from
// alarm.* events. Each card's result bar is fetched lazily when the card scrolls into view.
import { api, ago, canAct, debounce, flash, follow, h } from './live.js';
import { alarmForm, channelsPanel } from './forms.js';

const board = document.getElementById('board');
const SILENCES = [['15 min', 900], ['1 hour', 3600], ['4 hours', 14400], ['1 day', 86400]];
const enc = encodeURIComponent;
window.__alarmqSeen = [];  // [event id, event ts (s), Date.now() when its card changed, Date.now() when the event arrived], read by bench/dashboard.py
const noteSeen = (entry) => {
  const seen = window.__alarmqSeen;
  seen.push(entry);
  if (seen.length > 5000) seen.splice(0, seen.length - 5000);  // a long-open page keeps only the latest
};

function act(alarm, action, body) {
  return async () => {
    try {
      flash('');
      await api('POST', `/alarms/${enc(alarm.id)}/${action}`, body);
      await refreshOne(alarm.id);
    } catch (e) { flash(`${alarm.id}: ${e.message}`); }
  };
}

function actions(alarm) {
  if (!canAct()) return null;
  const select = h('select', { 'aria-label': `Silence ${alarm.name} for` },
    SILENCES.map(([label, s]) => h('option', { value: s }, label)));
  return h('div', { class: 'actions' },
    alarm.state === 'firing' && !alarm.acked ? h('button', { type: 'button', 'data-act': 'ack', onclick: act(alarm, 'ack') }, 'Acknowledge') : null,
    h('button', { type: 'button', 'data-act': 'check', onclick: act(alarm, 'check') }, 'Check now'),
    alarm.enabled
      ? h('button', { type: 'button', 'data-act': 'disable', onclick: act(alarm, 'disable') }, 'Disable')
      : h('button', { type: 'button', 'data-act': 'enable', onclick: act(alarm, 'enable') }, 'Enable'),
    alarm.silenced
      ? h('button', { type: 'button', 'data-act': 'unsilence', onclick: act(alarm, 'unsilence') }, 'Unsilence')
      : h('span', { class: 'silence' }, select, h('button', {
        type: 'button', 'data-act': 'silence',
        onclick: () => act(alarm, 'silence', { seconds: Number(select.value), reason: 'from the dashboard' })(),
      }, 'Silence')));
}

function bar(results) {
  return h('div', { class: 'bar', role: 'img', 'aria-label': results ? `last ${results.length} checks: ${results.filter((r) => r.ok).length} passed` : 'recent checks' },
    (results || []).slice().reverse().map((r) => h('span', { class: r.ok ? 'pass' : 'fail', title: `${new Date(r.at * 1000).toLocaleTimeString()} ${r.message || ''}` })));
}

function card(alarm, results) {
  const last = alarm.last_result || {};
  const flags = [alarm.acked ? 'acknowledged' : null, alarm.silenced ? `silenced until ${new Date(alarm.silenced_until * 1000).toLocaleTimeString()}` : null].filter(Boolean);
  return h('article', { class: `card state-${alarm.state}`, id: `alarm-${alarm.id}`, 'data-state': alarm.state, 'aria-labelledby': `alarm-${alarm.id}-h` },
    h('header', {}, h('h2', { id: `alarm-${alarm.id}-h` }, h('a', { href: `/alarms/${enc(alarm.id)}` }, alarm.name || alarm.id)),
      h('span', { class: 'state', 'data-testid': 'state' }, alarm.state)),
    h('p', { class: 'meta' }, `${alarm.kind} · every ${alarm.interval}s · ${alarm.state} for `, h('span', { 'data-since': alarm.since }, ago(alarm.since))),
    h('p', { class: 'meta' }, last.at ? `last: ${last.ok ? 'pass' : 'fail'}${last.value !== null && last.value !== undefined ? ` · value ${last.value}` : ''}${last.latency_ms !== null && last.latency_ms !== undefined ? ` · ${Math.round(last.latency_ms)} ms` : ''}${last.message ? ` · ${last.message}` : ''}` : 'not checked yet'),
    flags.length ? h('p', { class: 'flags' }, flags.join(' · ')) : null,
    bar(results),
    actions(alarm));
}

const alarms = new Map();
const bars = new Map();  // id -> recent results, once fetched

async function loadBar(id) {
  try {
    const { results } = await api('GET', `/alarms/${enc(id)}/results?limit=30`);
    bars.set(id, results);
    document.querySelector(`#alarm-${CSS.escape(id)} .bar`)?.replaceWith(bar(results));
  } catch (e) { /* the alarm is gone; the next sync drops its card */ }
}

const visible = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    visible.unobserve(entry.target);
    loadBar(entry.target.id.slice(6));
  }
});

function place(alarm) {
  alarms.set(alarm.id, alarm);
  const el = card(alarm, bars.get(alarm.id));
  const old = document.getElementById(`alarm-${alarm.id}`);
  const focused = old && old.contains(document.activeElement) ? document.activeElement.dataset.act : null;
  if (old) old.replaceWith(el); else board.append(el);
  if (focused) el.querySelector(`[data-act="${focused}"]`)?.focus();
  if (!bars.has(alarm.id)) visible.observe(el);
  return el;
}

async function refreshOne(id, seen = []) {
  try {
    const alarm = await api('GET', `/alarms/${enc(id)}`);
    place(alarm);
    const now = Date.now();
    for (const [eid, ts, arrived] of seen) noteSeen([eid, ts, now, arrived]);
    if (bars.has(id)) loadBar(id);
  } catch (e) {
    document.getElementById(`alarm-${id}`)?.remove();
    alarms.delete(id);
  }
}

let first = true;
async function loadAll() {
  const { alarms: list } = await api('GET', '/alarms');
  list.sort((a, b) => (a.id < b.id ? -1 : 1));
  alarms.clear();
  for (const a of list) alarms.set(a.id, a);
  board.replaceChildren(...list.map((a) => card(a, bars.get(a.id))));
  for (const el of board.children) if (!bars.has(el.id.slice(6))) visible.observe(el);
  document.getElementById('empty').hidden = list.length > 0;
  document.getElementById('count').textContent = `${list.length} alarm${list.length === 1 ? '' : 's'}, ${list.filter((a) => a.state === 'firing').length} firing`;
  if (first) { first = false; window.__alarmqRendered = performance.now(); }
}

const pending = new Map();  // alarm id -> event ids waiting for its card
const flush = debounce(() => { const todo = [...pending]; pending.clear(); todo.forEach(([id, eids]) => refreshOne(id, eids)); }, 30);

loadAll();
/** Apply a check result carried by the event to the card at once; true if nothing else needs fetching. */
function applyCheck(event) {
  const d = event.data;
  const alarm = alarms.get(d.id);
  if (!d.result || !d.state) return false;
  const flipped = alarm.state !== d.state;
  place({ ...alarm, name: d.name ?? alarm.name, state: d.state, last_result: d.result, since: flipped ? event.ts : alarm.since, acked: flipped ? false : alarm.acked });
  if (bars.has(d.id) && event.type === 'alarm.checked') {
    bars.set(d.id, [d.result, ...bars.get(d.id)].slice(0, 30));
    document.querySelector(`#alarm-${CSS.escape(d.id)} .bar`)?.replaceWith(bar(bars.get(d.id)));
  }
  noteSeen([event.id, event.ts, Date.now(), Date.now()]);
  return event.type === 'alarm.checked' && !flipped;
}

follow('alarm.*', (event) => {
  const id = event.data && (event.data.id || event.data.alarm_id || event.data.alarm);
  if (!id || !alarms.has(id) || (event.type === 'alarm.changed' && event.data.change !== 'updated')) { loadAll(); return; }
  if (event.data.result && applyCheck(event)) return;
  if (!pending.has(id)) pending.set(id, []);
  if (!event.data.result) pending.get(id).push([event.id, event.ts, Date.now()]);
  flush();
}, loadAll);

setInterval(() => { for (const el of document.querySelectorAll('[data-since]')) el.textContent = ago(Number(el.dataset.since)); }, 1000);

const formBox = document.getElementById('alarm-form-box');
if (formBox) {
  const reset = async () => formBox.replaceChildren(await alarmForm(null, async (saved) => {
    flash('');
    await loadAll();
    document.getElementById(`alarm-${saved.id}`)?.scrollIntoView({ block: 'center' });
    reset();
  }));
  reset();
  const channelsBox = document.getElementById('channels-box');
  const loadChannels = () => channelsPanel(channelsBox, reset).catch((e) => flash(e.message));
  loadChannels();
  document.getElementById('channels-panel').addEventListener('toggle', loadChannels);
}
