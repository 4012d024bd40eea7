// Jobs: filter by status and task, a detail view with cancel/requeue/delete, and an enqueue form from the task schema.
import { api, canAct, debounce, flash, follow, h, pager } from './live.js';

const tbody = document.querySelector('#jobs tbody');
const status = document.getElementById('status');
const taskFilter = document.getElementById('task-filter');
const enc = encodeURIComponent;
let openId = location.hash.slice(1) ? decodeURIComponent(location.hash.slice(1)) : null;

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

const list = pager(tbody, async (cursor) => {
  const q = new URLSearchParams({ limit: 100 });
  if (status.value) q.set('status', status.value);
  if (taskFilter.value.trim()) q.set('task', taskFilter.value.trim());
  if (cursor) q.set('cursor', cursor);
  const { jobs, next_cursor: next } = await api('GET', `/jobs?${q}`);
  return { items: jobs, next };
}, (j) => h('tr', { id: `job-${j.id}`, 'data-status': j.status },
  h('td', {}, h('a', { href: `#${enc(j.id)}`, onclick: () => { openId = j.id; loadDetail(); } }, j.id)),
  h('td', {}, j.task), h('td', { class: `status status-${j.status}` }, j.status), h('td', {}, j.queue),
  h('td', {}, time(j.enqueued_at)), h('td', {}, time(j.ended_at))));
const loadList = () => list.load();

function act(method, path) {
  return async () => {
    try { flash(''); await api(method, path); if (method === 'DELETE') { document.getElementById(`job-${openId}`)?.remove(); openId = null; } loadDetail(); loadList(); } catch (e) { flash(e.message); }
  };
}

async function loadDetail() {
  const box = document.getElementById('detail');
  if (!openId) { box.hidden = true; return; }
  let job;
  try { job = await api('GET', `/jobs/${enc(openId)}`); } catch (e) { box.hidden = true; return; }
  const show = (v) => h('pre', {}, typeof v === 'string' ? v : JSON.stringify(v, null, 2));
  box.hidden = false;
  document.getElementById('detail-body').replaceChildren(
    h('dl', {},
      h('dt', {}, 'id'), h('dd', {}, job.id), h('dt', {}, 'task'), h('dd', {}, job.task),
      h('dt', {}, 'status'), h('dd', { 'data-testid': 'job-status' }, job.status),
      h('dt', {}, 'arguments'), h('dd', {}, show(job.kwargs)),
      h('dt', {}, 'result'), h('dd', {}, show(job.result)),
      job.error ? [h('dt', {}, 'error'), h('dd', {}, job.error)] : null,
      job.traceback ? [h('dt', {}, 'traceback'), h('dd', {}, show(job.traceback))] : null),
    canAct() ? h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: act('POST', `/jobs/${enc(job.id)}/cancel`) }, 'Cancel'),
      h('button', { type: 'button', onclick: act('POST', `/jobs/${enc(job.id)}/requeue`) }, 'Requeue'),
      h('button', { type: 'button', onclick: act('DELETE', `/jobs/${enc(job.id)}`) }, 'Delete')) : '');
}

async function buildEnqueue() {
  const form = document.getElementById('enqueue');
  if (!form) return;
  const { tasks } = await api('GET', '/tasks');
  const select = document.getElementById('enqueue-task');
  select.replaceChildren(...tasks.map((t) => h('option', { value: t.name, title: t.description }, t.name)));
  const fields = () => {
    const task = tasks.find((t) => t.name === select.value);
    const props = task ? task.parameters.properties : {};
    document.getElementById('enqueue-fields').replaceChildren(...Object.entries(props).map(([name, p]) => h('label', {},
      `${name}${task.parameters.required.includes(name) ? ' *' : ''} `,
      h('input', { name, 'data-type': p.type || 'json', type: p.type === 'number' || p.type === 'integer' ? 'number' : 'text',
        step: p.type === 'number' ? 'any' : null, value: p.default ?? null, required: task.parameters.required.includes(name) }))));
  };
  select.addEventListener('change', fields);
  fields();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const kwargs = {};
    for (const input of document.querySelectorAll('#enqueue-fields input')) {
      if (input.value === '') continue;
      const t = input.dataset.type;
      kwargs[input.name] = t === 'string' ? input.value : t === 'number' || t === 'integer' ? Number(input.value)
        : t === 'boolean' ? input.value === 'true' : JSON.parse(input.value);
    }
    const error = document.getElementById('enqueue-error');
    try { const job = await api('POST', '/jobs', { task: select.value, kwargs }); error.textContent = ''; openId = job.id; loadDetail(); } catch (e) { error.textContent = e.message; }
  });
}

const refresh = debounce(() => { loadList(); loadDetail(); }, 200);
status.addEventListener('change', () => list.reset());
taskFilter.addEventListener('input', debounce(() => list.reset(), 300));
window.addEventListener('hashchange', () => { openId = decodeURIComponent(location.hash.slice(1)) || null; loadDetail(); });
buildEnqueue();
follow('job.*', refresh, refresh);
