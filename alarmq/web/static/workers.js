// Workers: who serves which queues and what they are running, refreshed by worker and job events.
import { api, debounce, follow, h } from './live.js';

async function load() {
  const { workers } = await api('GET', '/health');
  document.querySelector('#workers tbody').replaceChildren(...workers.map((w) => h('tr', { 'data-state': w.state },
    h('td', {}, w.name), h('td', {}, w.state), h('td', {}, w.queues.join(', ')), h('td', {}, String(w.pid)),
    h('td', {}, w.host), h('td', {}, w.current_job || ''), h('td', {}, String(w.successful_jobs)), h('td', {}, String(w.failed_jobs)))));
}

follow('worker.*,job.started,job.finished,job.failed', debounce(load, 300), load);
