// Alarm and channel forms: submit to the JSON API and show its 422 message next to the field it names.
import { api, h } from './live.js';

const KINDS = ['http', 'tcp', 'heartbeat', 'threshold', 'queue', 'task'];
// Per kind: [config key, label, input type, options]; 'list' is comma-separated numbers, 'json' is parsed.
const CONFIG = {
  http: [['url', 'URL', 'text'], ['method', 'Method', 'select', ['GET', 'HEAD', 'POST', 'PUT', 'OPTIONS']],
    ['expect_status', 'Expected status (comma-separated)', 'list'], ['max_latency_ms', 'Max latency (ms)', 'number'],
    ['timeout', 'Timeout (s)', 'number']],
  tcp: [['host', 'Host', 'text'], ['port', 'Port', 'number'], ['timeout', 'Timeout (s)', 'number']],
  heartbeat: [['period', 'Period (s)', 'number'], ['grace', 'Grace (s)', 'number']],
  threshold: [['metric', 'Metric', 'text'], ['above', 'Fires above', 'number'], ['below', 'Fires below', 'number'],
    ['recover', 'Recovers at', 'number'], ['for_seconds', 'For (s)', 'number']],
  queue: [['check', 'Check', 'select', ['depth', 'failed_growth', 'no_worker', 'scheduler_stale', 'schedule_missing']],
    ['queue', 'Queue', 'text'], ['max', 'Max', 'number'], ['window', 'Window (s)', 'number'], ['schedule', 'Schedule', 'text']],
  task: [['check', 'Check', 'text'], ['kwargs', 'Arguments (JSON)', 'json']],
};
const CHANNEL_CONFIG = {
  webhook: [['url', 'URL', 'text']],
  email: [['host', 'SMTP host', 'text'], ['port', 'Port', 'number'], ['sender', 'Sender', 'text'],
    ['to', 'To (comma-separated)', 'words'], ['starttls', 'STARTTLS', 'checkbox'],
    ['username', 'Username', 'text'], ['password', 'Password', 'password']],
};

let seq = 0;
/** A labelled input (or select/checkbox) named `name`, with its value. */
function field(name, label, type, value, options) {
  const id = `f${++seq}-${name.replace(/\W/g, '-')}`;
  let input;
  if (type === 'select') {
    input = h('select', { id, name }, (options || []).map((o) => h('option', { value: o }, o)));
    if (value !== undefined && value !== null) input.value = value;
  } else if (type === 'checkbox') {
    input = h('input', { id, name, type: 'checkbox', checked: Boolean(value) });
  } else {
    const shown = value === undefined || value === null ? ''
      : type === 'json' ? JSON.stringify(value) : Array.isArray(value) ? value.join(', ') : String(value);
    input = h('input', { id, name, type: type === 'number' ? 'number' : type === 'password' ? 'password' : 'text', step: type === 'number' ? 'any' : null, value: shown });
  }
  input.dataset.type = type;
  return h('div', { class: 'field' }, h('label', { for: id }, label), ' ', input, h('span', { class: 'error', 'data-error-for': name, role: 'alert' }));
}

/** Read the inputs in `box` into an object, leaving empty ones out. */
function read(box) {
  const out = {};
  for (const input of box.querySelectorAll('input, select')) {
    const t = input.dataset.type;
    if (t === 'checkbox') { out[input.name] = input.checked; continue; }
    const v = input.value.trim();
    if (v === '') continue;
    if (t === 'number') out[input.name] = Number(v);
    else if (t === 'list') out[input.name] = v.split(',').map((s) => Number(s.trim()));
    else if (t === 'words') out[input.name] = v.split(',').map((s) => s.trim()).filter(Boolean);
    else if (t === 'json') { try { out[input.name] = JSON.parse(v); } catch (e) { out[input.name] = v; } }
    else out[input.name] = v;
  }
  return out;
}

/** Show the API's message: next to the field it names (first word, like `config.url`) and under the form. */
function showError(form, message) {
  for (const el of form.querySelectorAll('[data-error-for]')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  form.querySelector('[data-testid=form-error]').textContent = message;
  if (!message) return;
  const named = (message.match(/^'?([a-z_]+(?:\.[a-z_]+)?)/) || [])[1] || '';
  const key = named.replace(/^config\./, '');
  const quoted = (message.match(/field '(?:config\.)?([a-z_]+)'/) || [])[1];
  for (const name of [key, quoted]) {
    const input = name && form.querySelector(`[name="${name}"]`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      form.querySelector(`[data-error-for="${name}"]`).textContent = message;
      input.focus();
      return;
    }
  }
}

/** The create/edit form of an alarm; `alarm` is null to create. Calls `onSaved(alarm)` after a save. */
export async function alarmForm(alarm, onSaved) {
  const { channels } = await api('GET', '/channels').catch(() => ({ channels: [] }));
  const kind = field('kind', 'Kind', 'select', alarm ? alarm.kind : 'http', KINDS);
  const kindSelect = kind.querySelector('select');
  if (alarm) kindSelect.disabled = true;
  const config = h('fieldset', { class: 'config' });
  const fillConfig = () => {
    const current = alarm && alarm.kind === kindSelect.value ? alarm.config : {};
    config.replaceChildren(h('legend', {}, `${kindSelect.value} settings`),
      ...CONFIG[kindSelect.value].map(([k, label, type, options]) => field(k, label, type, current[k], options)));
  };
  kindSelect.addEventListener('change', fillConfig);
  fillConfig();
  const chosen = new Set(alarm ? alarm.channels : []);
  const channelSelect = h('select', { id: `f${++seq}-channels`, name: 'channels', multiple: true, size: Math.min(4, Math.max(2, channels.length)) },
    channels.map((c) => h('option', { value: c.id, selected: chosen.has(c.id) }, `${c.id} (${c.kind})`)));
  const spec = h('fieldset', {}, h('legend', {}, 'Alarm'),
    alarm ? null : field('id', 'Id', 'text'),
    field('name', 'Name', 'text', alarm && alarm.name),
    kind,
    field('interval', 'Interval (s)', 'number', alarm ? alarm.interval : 60),
    field('failures_to_fire', 'Failures to fire', 'number', alarm && alarm.failures_to_fire),
    h('div', { class: 'field' }, h('label', { for: channelSelect.id }, 'Channels'), ' ', channelSelect,
      h('span', { class: 'error', 'data-error-for': 'channels', role: 'alert' })));
  const form = h('form', { class: 'edit', 'data-testid': 'alarm-form', novalidate: true }, spec, config,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, alarm ? 'Save alarm' : 'Create alarm'),
      h('span', { class: 'error', 'data-testid': 'form-error', role: 'alert' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = read(spec);
    delete body.channels;
    body.channels = [...channelSelect.selectedOptions].map((o) => o.value);
    body.config = read(config);
    if (alarm) {
      // Keep settings the form does not show (headers, body checks, TLS), drop those it shows but left empty.
      const shown = new Set(CONFIG[alarm.kind].map(([k]) => k));
      const kept = Object.fromEntries(Object.entries(alarm.config).filter(([k, v]) => !shown.has(k) && v !== null));
      body.config = { ...kept, ...body.config };
      delete body.kind;
    }
    try {
      const saved = alarm ? await api('PATCH', `/alarms/${encodeURIComponent(alarm.id)}`, body) : await api('POST', '/alarms', body);
      showError(form, '');
      onSaved(saved);
    } catch (e) { showError(form, e.message); }
  });
  return form;
}

/** The channels section: a list with edit buttons and a form to create or change a webhook or email channel. */
export async function channelsPanel(root, onChange = () => {}) {
  const { channels } = await api('GET', '/channels');
  const list = h('ul', { class: 'channels' }, channels.map((c) => h('li', { id: `channel-${c.id}` },
    `${c.id} · ${c.kind} · ${c.config.url || (c.config.to || []).join(', ')} `,
    h('button', { type: 'button', onclick: () => edit(c) }, `Edit ${c.id}`))));
  const holder = h('div');
  const edit = (channel) => {
    const kind = field('kind', 'Kind', 'select', channel ? channel.kind : 'webhook', ['webhook', 'email']);
    const kindSelect = kind.querySelector('select');
    if (channel) kindSelect.disabled = true;
    const config = h('fieldset', { class: 'config' });
    const fill = () => config.replaceChildren(h('legend', {}, `${kindSelect.value} settings`),
      ...CHANNEL_CONFIG[kindSelect.value].map(([k, label, type]) => field(k, label, type, channel ? channel.config[k] : undefined)));
    kindSelect.addEventListener('change', fill);
    fill();
    const spec = h('fieldset', {}, h('legend', {}, channel ? `Channel ${channel.id}` : 'New channel'),
      channel ? null : field('id', 'Id', 'text'), kind, field('description', 'Description', 'text', channel && channel.description));
    const form = h('form', { class: 'edit', 'data-testid': 'channel-form', novalidate: true }, spec, config,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, channel ? 'Save channel' : 'Create channel'),
        h('span', { class: 'error', 'data-testid': 'form-error', role: 'alert' })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { ...read(spec), config: read(config) };
      try {
        if (channel) { delete body.kind; await api('PATCH', `/channels/${encodeURIComponent(channel.id)}`, body); }
        else await api('POST', '/channels', body);
        await channelsPanel(root, onChange);
        onChange();
      } catch (e) { showError(form, e.message); }
    });
    holder.replaceChildren(form);
    form.querySelector('input, select').focus();
  };
  root.replaceChildren(list, h('button', { type: 'button', onclick: () => edit(null) }, 'New channel'), holder);
}
