// Alarms board: one card per alarm, acting from the card, updated from alarm.* events.
import { api, ago, canAct, debounce, flash, follow, h } from './live.js';

const board = document.getElementById('board');
const SILENCES = [['15 min', 900], ['1 hour', 3600], ['4 hours', 14400], ['1 day', 86400]];

function act(alarm, action, body) {
  return async () => {
    try {
      flash('');
      await api('POST', `/alarms/${encodeURIComponent(alarm.id)}/${action}`, body);
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
  return h('div', { class: 'bar', role: 'img', 'aria-label': `last ${results.length} checks: ${results.filter((r) => r.ok).length} passed` },
    results.slice().reverse().map((r) => h('span', { class: r.ok ? 'pass' : 'fail', title: `${new Date(r.at * 1000).toLocaleTimeString()} ${r.message || ''}` })));
}

function card(alarm, results) {
  const last = alarm.last_result || {};
  const flags = [alarm.acked ? 'acknowledged' : null, alarm.silenced ? `silenced until ${new Date(alarm.silenced_until * 1000).toLocaleTimeString()}` : null].filter(Boolean);
  return h('article', { class: `card state-${alarm.state}`, id: `alarm-${alarm.id}`, 'data-state': alarm.state, 'aria-labelledby': `alarm-${alarm.id}-h` },
    h('header', {}, h('h2', { id: `alarm-${alarm.id}-h` }, alarm.name || alarm.id),
      h('span', { class: 'state', 'data-testid': 'state' }, alarm.state)),
    h('p', { class: 'meta' }, `${alarm.kind} · every ${alarm.interval}s · ${alarm.state} for `, h('span', { 'data-since': alarm.since }, ago(alarm.since))),
    h('p', { class: 'meta' }, last.at ? `last: ${last.ok ? 'pass' : 'fail'}${last.value !== null && last.value !== undefined ? ` · value ${last.value}` : ''}${last.latency_ms !== null && last.latency_ms !== undefined ? ` · ${Math.round(last.latency_ms)} ms` : ''}${last.message ? ` · ${last.message}` : ''}` : 'not checked yet'),
    flags.length ? h('p', { class: 'flags' }, flags.join(' · ')) : null,
    bar(results),
    actions(alarm));
}

const alarms = new Map();

async function refreshOne(id) {
  try {
    const [alarm, { results }] = await Promise.all([
      api('GET', `/alarms/${encodeURIComponent(id)}`), api('GET', `/alarms/${encodeURIComponent(id)}/results?limit=30`)]);
    alarms.set(id, alarm);
    const el = card(alarm, results);
    const old = document.getElementById(`alarm-${id}`);
    const focused = old && old.contains(document.activeElement) ? document.activeElement.dataset.act : null;
    if (old) old.replaceWith(el); else board.append(el);
    if (focused) el.querySelector(`[data-act="${focused}"]`)?.focus();
  } catch (e) {
    document.getElementById(`alarm-${id}`)?.remove();
    alarms.delete(id);
  }
}

async function loadAll() {
  const { alarms: list } = await api('GET', '/alarms');
  const ids = new Set(list.map((a) => a.id));
  for (const el of [...board.children]) if (!ids.has(el.id.slice(6))) el.remove();
  await Promise.all(list.map((a) => refreshOne(a.id)));
  const order = list.map((a) => `alarm-${a.id}`).sort();
  if ([...board.children].map((el) => el.id).join() !== order.join()) {
    for (const id of order) { const el = document.getElementById(id); if (el) board.append(el); }
  }
  document.getElementById('empty').hidden = list.length > 0;
}

const pending = new Set();
const flush = debounce(() => { const ids = [...pending]; pending.clear(); ids.forEach(refreshOne); }, 150);

follow('alarm.*', (event) => {
  const id = event.data && (event.data.id || event.data.alarm_id || event.data.alarm);
  if (!id || !alarms.has(id)) { loadAll(); return; }
  pending.add(id); flush();
}, loadAll);

setInterval(() => { for (const el of document.querySelectorAll('[data-since]')) el.textContent = ago(Number(el.dataset.since)); }, 1000);
