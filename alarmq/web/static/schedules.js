// Schedules control panel: toggle, pause, run now, retime with a live preview, reset, the slot ledger.
import { ago, api, canAct, debounce, flash, follow, guard, h, when } from './live.js';

const list = document.getElementById('schedules');
const PAUSES = [['5 minutes', 300], ['1 hour', 3600], ['8 hours', 28800], ['1 day', 86400]];
const enc = encodeURIComponent;

/** Read the retime field: "30", "30s", "5m", "2h" are intervals; anything else is a cron. */
function parseTrigger(text) {
  const m = text.trim().match(/^(\d+)\s*([smhd]?)$/);
  if (m) return { interval: Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2]] };
  return { cron: text.trim() };
}

function run(path, body) {
  return async () => {
    try { flash(''); await api('POST', path, body); } catch (e) { flash(e.message); }
  };
}

function retimeForm(s) {
  const id = `retime-${s.id}`;
  const input = h('input', { id, name: 'trigger', 'data-act': 'retime-input', value: s.cron || `${s.interval}s`, size: 16,
    'aria-describedby': `${id}-error ${id}-preview` });
  const tz = h('input', { name: 'timezone', 'data-act': 'retime-tz', value: s.timezone, size: 14, 'aria-label': 'Time zone' });
  const error = h('p', { class: 'error', id: `${id}-error`, role: 'alert', 'data-testid': 'retime-error' });
  const preview = h('ol', { class: 'preview', id: `${id}-preview`, 'aria-label': 'Next fire times' });
  const check = debounce(async () => {
    const t = parseTrigger(input.value);
    const q = new URLSearchParams(t.cron ? { cron: t.cron, tz: tz.value } : { interval: t.interval, tz: tz.value });
    try {
      const p = await api('GET', `/schedules/preview?${q}`);
      error.textContent = '';
      preview.replaceChildren(...p.next.slice(0, 5).map((n) => h('li', {}, n.local)));
    } catch (e) { error.textContent = e.message; preview.replaceChildren(); }
  }, 250);
  input.addEventListener('input', check);
  tz.addEventListener('input', check);
  const form = h('form', { class: 'retime', 'aria-label': `Retime ${s.id}` },
    h('label', { for: id }, 'Trigger (cron or 30s/5m)'), ' ', input, ' ', tz, ' ',
    h('button', { type: 'submit', 'data-act': 'retime' }, 'Save'), error, preview);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = parseTrigger(input.value);
    const body = t.cron ? { cron: t.cron, interval: null, timezone: tz.value } : { interval: t.interval, cron: null, timezone: tz.value };
    try { await api('PATCH', `/schedules/${enc(s.id)}`, body); error.textContent = ''; } catch (e) { error.textContent = e.message; }
  });
  return form;
}

function controls(s) {
  if (!canAct()) return [];
  const pauseFor = h('select', { 'aria-label': `Pause ${s.id} for`, 'data-act': 'pause-for' },
    PAUSES.map(([label, secs]) => h('option', { value: secs }, label)));
  const toggle = h('input', { type: 'checkbox', 'data-act': 'enabled', checked: s.enabled });
  toggle.addEventListener('change', () => run(`/schedules/${enc(s.id)}/${toggle.checked ? 'enable' : 'disable'}`)());
  return [
    h('label', { class: 'toggle' }, toggle, ' Enabled'),
    s.paused
      ? h('button', { type: 'button', 'data-act': 'resume', onclick: run(`/schedules/${enc(s.id)}/resume`) }, 'Resume')
      : h('span', {}, pauseFor, h('button', { type: 'button', 'data-act': 'pause',
        onclick: () => run(`/schedules/${enc(s.id)}/pause`, { seconds: Number(pauseFor.value) })() }, 'Pause')),
    h('button', { type: 'button', 'data-act': 'run', onclick: run(`/schedules/${enc(s.id)}/run`) }, 'Run now'),
    s.overridden.length ? h('button', { type: 'button', 'data-act': 'reset', onclick: run(`/schedules/${enc(s.id)}/reset`) }, 'Reset to default') : null,
  ];
}

function ledger(runs) {
  return h('table', { class: 'grid ledger' },
    h('thead', {}, h('tr', {}, h('th', {}, 'slot'), h('th', {}, 'outcome'), h('th', {}, 'job'), h('th', {}, 'reason'))),
    h('tbody', {}, runs.map((r) => h('tr', { class: `outcome-${r.outcome}`, 'data-outcome': r.outcome },
      h('td', {}, new Date(r.at * 1000).toLocaleString()), h('td', {}, r.outcome),
      h('td', {}, r.job_id ? h('a', { href: `/jobs#${enc(r.job_id)}` }, r.job_id) : ''), h('td', {}, r.reason || r.error || '')))));
}

function render(s, runs) {
  let card = document.getElementById(`schedule-${s.id}`);
  if (!card) {
    card = h('article', { class: 'card schedule', id: `schedule-${s.id}`, 'aria-labelledby': `schedule-${s.id}-h` },
      h('header', {}, h('h3', { id: `schedule-${s.id}-h` }, s.id), h('span', { class: 'badges' })),
      h('p', { class: 'summary' }), h('div', { class: 'actions' }),
      canAct() ? retimeForm(s) : null,
      h('details', { class: 'runs' }, h('summary', {}, 'Slot ledger'), h('div', { class: 'ledger-body' })));
    list.append(card);
  }
  card.dataset.enabled = s.enabled;
  card.dataset.paused = s.paused;
  card.querySelector('.badges').replaceChildren(...[
    !s.enabled ? h('span', { class: 'badge off' }, 'disabled') : null,
    s.paused ? h('span', { class: 'badge warn' }, `paused until ${new Date(s.paused_until * 1000).toLocaleTimeString()}`) : null,
    s.overridden.length ? h('span', { class: 'badge override', title: s.overridden.join(', ') }, 'overridden') : null,
  ].filter(Boolean));
  const last = runs[0];
  card.querySelector('.summary').replaceChildren(
    `${s.task} · ${s.trigger} · next: ${s.next_fire_times.length ? when(s.next_fire_times[0]) : '—'} · last: `,
    last ? h('span', { class: `outcome-${last.outcome}` }, `${last.outcome} ${ago(last.at)} ago`) : 'never');
  card.querySelector('.actions').replaceChildren(...controls(s).filter(Boolean));
  card.querySelector('.ledger-body').replaceChildren(ledger(runs));
}

async function loadScheduler() {
  const s = await api('GET', '/scheduler').catch((e) => ({ error: e.message }));
  const el = document.getElementById('scheduler-health');
  if (s.error) { el.textContent = s.error; return; }
  el.textContent = s.leader
    ? `leader ${s.leader.name || s.leader.id || JSON.stringify(s.leader)} · ${s.standbys.length} standby · last tick ${s.last_tick ? ago(s.last_tick) + ' ago' : '—'} · lag ${s.lag_ms === null ? '—' : Math.round(s.lag_ms)} ms`
    : 'no scheduler is running';
  el.dataset.alive = Boolean(s.leader);
}

async function loadAll() {
  const { schedules } = await api('GET', '/schedules');
  const ids = new Set(schedules.map((s) => `schedule-${s.id}`));
  for (const el of [...list.children]) if (!ids.has(el.id)) el.remove();
  await Promise.all(schedules.map(async (s) => render(s, (await api('GET', `/schedules/${enc(s.id)}/runs?limit=20`)).runs)));
  const order = schedules.map((s) => `schedule-${s.id}`).sort();
  if ([...list.children].map((el) => el.id).join() !== order.join()) {
    for (const id of order) list.append(document.getElementById(id));
  }
  loadScheduler();
}

const refresh = debounce(loadAll, 200);
document.getElementById('reload')?.addEventListener('click', run('/scheduler/reload'));
guard();
follow('schedule.*,scheduler.*', refresh, loadAll);
