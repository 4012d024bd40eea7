// Overview: health tiles and the live event feed.
import { api, debounce, follow, h, ago } from './live.js';

const FEED_SIZE = 100;
const feed = document.getElementById('feed');

const tile = (label, value, state = '') => h('div', { class: 'tile ' + state },
  h('span', { class: 'tile-label' }, label), h('span', { class: 'tile-value' }, String(value)));

async function loadTiles() {
  const [health, sched, alarms, failed] = await Promise.all([
    api('GET', '/health').catch((e) => ({ redis: { ok: false, error: e.message }, workers: [], queues: {} })),
    api('GET', '/scheduler').catch(() => ({})),
    api('GET', '/alarms').catch(() => ({ alarms: [] })),
    api('GET', '/jobs?status=failed&limit=1000').catch(() => ({ jobs: [] })),
  ]);
  const byState = {};
  for (const a of alarms.alarms) byState[a.state] = (byState[a.state] || 0) + 1;
  const tiles = [
    tile('Redis', health.redis.ok ? `up ${health.redis.version || ''}` : 'down', health.redis.ok ? 'good' : 'bad'),
    tile('Workers', health.workers.length, health.workers.length ? 'good' : 'bad'),
    tile('Scheduler leader', sched.leader ? (sched.leader.name || sched.leader.id || 'yes') : 'none', sched.leader ? 'good' : 'bad'),
    tile('Last tick', sched.last_tick ? ago(sched.last_tick) + ' ago' : '—'),
    tile('Lag', sched.lag_ms === null || sched.lag_ms === undefined ? '—' : `${Math.round(sched.lag_ms)} ms`),
    ...Object.entries(health.queues || {}).map(([q, n]) => tile(`Queue ${q}`, n)),
    tile('Failed jobs', failed.jobs.length, failed.jobs.length ? 'warn' : 'good'),
    ...['firing', 'pending', 'ok', 'unknown', 'disabled'].map((s) => tile(`Alarms ${s}`, byState[s] || 0, s === 'firing' && byState[s] ? 'bad' : '')),
  ];
  document.getElementById('tiles').replaceChildren(...tiles);
}
const refreshTiles = debounce(loadTiles, 500);

function show(event) {
  const summary = Object.entries(event.data || {}).filter(([, v]) => typeof v !== 'object')
    .map(([k, v]) => `${k}=${v}`).join(' ');
  feed.prepend(h('li', { class: 'ev ev-' + event.type.split('.')[0], 'data-type': event.type },
    h('time', {}, new Date(event.ts * 1000).toLocaleTimeString()), ' ', h('strong', {}, event.type), ' ', summary));
  while (feed.children.length > FEED_SIZE) feed.lastChild.remove();
}

async function backfill() {
  const { events } = await api('GET', '/events?limit=50');
  feed.replaceChildren();
  events.forEach(show);
}

let first = true;
follow('', (event) => { show(event); refreshTiles(); }, () => {
  if (first) { first = false; backfill(); }
  loadTiles();
});
loadTiles();
