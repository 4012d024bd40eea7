// One alarm: state, last result, uptime, a chart of recent results, flips and notifications, live from alarm.* events.
import { api, ago, debounce, flash, follow, h, when } from './live.js';
import { alarmForm } from './forms.js';

const id = document.getElementById('alarm').dataset.alarmId;
const enc = encodeURIComponent;
const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)}%`);
const SVG = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/');  // the SVG namespace (no URL literal in assets)

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** An inline SVG chart of latency (or value) over the recent results, oldest left; failures in red. */
function chart(results) {
  const points = results.slice().reverse();
  const metric = points.some((r) => r.latency_ms !== null && r.latency_ms !== undefined) ? 'latency_ms' : 'value';
  const values = points.map((r) => (typeof r[metric] === 'number' ? r[metric] : null));
  const known = values.filter((v) => v !== null);
  const W = 600; const H = 120; const pad = 4;
  const lo = Math.min(0, ...known); const hi = Math.max(1, ...known);
  const x = (i) => pad + (points.length < 2 ? 0 : (i * (W - 2 * pad)) / (points.length - 1));
  const y = (v) => H - pad - ((v - lo) * (H - 2 * pad)) / (hi - lo || 1);
  const line = values.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(' ');
  const label = `${metric === 'latency_ms' ? 'latency in ms' : 'value'} of the last ${points.length} checks, ${points.filter((r) => !r.ok).length} failed; highest ${known.length ? Math.max(...known) : '—'}`;
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label },
    svg('title', {}, label),
    svg('polyline', { points: line, fill: 'none', class: 'line' }),
    ...points.map((r, i) => svg('circle', { cx: x(i), cy: values[i] === null ? H - pad : y(values[i]), r: 3, class: r.ok ? 'pass' : 'fail' },
      svg('title', {}, `${new Date(r.at * 1000).toLocaleTimeString()} ${r.ok ? 'pass' : 'fail'} ${values[i] ?? ''} ${r.message || ''}`))));
}

const rows = (tbody, items, cells) => document.querySelector(`#${tbody} tbody`).replaceChildren(
  ...items.map((item) => h('tr', {}, cells(item).map((c) => h('td', {}, c ?? '')))));

async function load() {
  let alarm;
  try { alarm = await api('GET', `/alarms/${enc(id)}`); } catch (e) { flash(e.message); return; }
  const [{ results }, { flips }, { notifications }] = await Promise.all(['results', 'flips', 'notifications']
    .map((log) => api('GET', `/alarms/${enc(id)}/${log}?limit=100`)));
  const last = alarm.last_result || {};
  document.title = `alarmq · ${alarm.name || alarm.id}`;
  document.querySelector('h1').textContent = alarm.name || alarm.id;
  document.getElementById('alarm').replaceChildren(h('article', { class: `card state-${alarm.state}`, id: `alarm-${alarm.id}`, 'data-state': alarm.state },
    h('header', {}, h('h2', {}, `${alarm.id} · ${alarm.kind}`), h('span', { class: 'state', 'data-testid': 'state' }, alarm.state)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'since'), h('dd', {}, `${when(alarm.since)} (${ago(alarm.since)})`),
      h('dt', {}, 'last result'), h('dd', { 'data-testid': 'last' }, last.at ? `${last.ok ? 'pass' : 'fail'} at ${when(last.at)}${last.message ? ` · ${last.message}` : ''}` : 'not checked yet'),
      h('dt', {}, 'uptime'), h('dd', {}, `24 h ${pct(alarm.uptime['24h'])} · 7 d ${pct(alarm.uptime['7d'])} · 30 d ${pct(alarm.uptime['30d'])}`),
      h('dt', {}, 'checks'), h('dd', {}, `every ${alarm.interval}s, fires after ${alarm.failures_to_fire} failure(s)${alarm.enabled ? '' : ' · disabled'}${alarm.acked ? ' · acknowledged' : ''}${alarm.silenced ? ` · silenced until ${when(alarm.silenced_until)}` : ''}`),
      h('dt', {}, 'channels'), h('dd', {}, alarm.channels.join(', ') || 'none'),
      h('dt', {}, 'config'), h('dd', {}, h('code', {}, JSON.stringify(alarm.config))))));
  document.getElementById('chart').replaceChildren(results.length ? chart(results) : h('p', { class: 'note' }, 'No results yet.'));
  rows('flips', flips, (f) => [when(f.at), f.old, f.new, f.reason]);
  rows('notifications', notifications, (n) => [when(n.at), n.channel, n.kind, n.outcome + (n.error ? `: ${n.error}` : '')]);
  rows('results', results.slice(0, 20), (r) => [when(r.at), r.ok ? 'pass' : 'fail', r.value, r.latency_ms === null || r.latency_ms === undefined ? '' : `${Math.round(r.latency_ms)} ms`, r.message]);
  return alarm;
}

const refresh = debounce(load, 100);
follow('alarm.*', (event) => {
  const d = event.data || {};
  if ((d.id || d.alarm_id || d.alarm) === id) refresh();
}, refresh);

const formBox = document.getElementById('alarm-form-box');
if (formBox) {
  const build = async () => {
    const alarm = await api('GET', `/alarms/${enc(id)}`).catch(() => null);
    if (alarm) formBox.replaceChildren(await alarmForm(alarm, () => { load(); build(); }));
  };
  build();
}
