// The console's pages. Each takes the view element and the route's arguments, fills the
// view, and returns a function that stops what it started (timers, the live feed).

import { api, follow, setToken, token, ApiError } from './api.js';
import { lineChart, fmt } from './charts.js';
import { runGraph, timeline } from './graph.js';

const REFRESH_MS = 5000;

// Builds an element: h('td', {class: 'x'}, 'text', child, ...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
}

// Runs `load` now and every REFRESH_MS; errors are shown in `status`, a refused token ends
// the session (app.js listens for 'tern-bad-token').
function every(load, status) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    try {
      await load();
      status.replaceChildren();
    } catch (err) {
      if (err instanceof ApiError && err.badToken) {
        window.dispatchEvent(new CustomEvent('tern-bad-token', { detail: err.message }));
        return;
      }
      status.replaceChildren(errorBox(err));
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

function ms(v) { return v ? new Date(v).toLocaleTimeString() : '–'; }

// A table of objects: the columns are `cols` ([key, heading, format?]).
function table(id, rows, cols, rowAttrs = () => ({})) {
  return h('table', { id },
    h('thead', {}, h('tr', {}, cols.map(([, head]) => h('th', {}, head)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', rowAttrs(r), cols.map(([k, , f]) => h('td', {}, f ? f(r[k], r) : r[k] ?? '–'))))
      : h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, 'none'))));
}

// Whatever value the API gave, as short text.
function text(v) {
  if (v === null || v === undefined) return '–';
  if (Array.isArray(v)) return v.map(text).join(', ');
  if (typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k}: ${text(x)}`).join(', ');
  if (typeof v === 'number' && !Number.isInteger(v)) return v.toFixed(3);
  return String(v);
}
function genericTable(id, rows) {
  const keys = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  return table(id, rows, keys.map((k) => [k, k.replaceAll('_', ' '), text]));
}

export function loginPage(view, _args, message) {
  const input = h('textarea', { id: 'login-token', rows: 3, placeholder: 'tern_… or the admin token', autocomplete: 'off', spellcheck: 'false' });
  const status = h('div', { id: 'login-status' }, message ? h('p', { id: 'login-error', class: 'error', role: 'alert' }, message) : null);
  const submit = async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) { status.replaceChildren(h('p', { id: 'login-error', class: 'error', role: 'alert' }, 'Paste a token first.')); return; }
    try {
      await api('/v1/status', { token: t });
      setToken(t);
      location.hash = '#/functions';
    } catch (err) {
      status.replaceChildren(h('p', { id: 'login-error', class: 'error', role: 'alert' }, err.message));
    }
  };
  view.replaceChildren(h('section', { class: 'login' },
    h('h1', {}, 'Log in to this node'),
    h('p', { class: 'muted' }, 'Paste a token with the read scope (tern token create NAME --scope read). It is kept in this tab only (sessionStorage) and sent as a bearer header.'),
    h('form', { id: 'login-form', onsubmit: submit }, input, h('button', { id: 'login-submit', type: 'submit' }, 'Log in')),
    status));
  input.focus();
  return () => {};
}

export function functionsPage(view) {
  const status = h('div');
  const body = h('div', { id: 'functions' });
  view.replaceChildren(h('h1', {}, 'Functions'), status, body);
  return every(async () => {
    const [list, st] = await Promise.all([api('/v1/functions?series=1'), api('/v1/status')]);
    const rows = list.functions.map((f) => {
      const pts = f.points;
      const recent = pts.slice(-6);
      const count = recent.reduce((a, p) => a + p.count, 0);
      const errors = recent.reduce((a, p) => a + p.errors, 0);
      const spanS = recent.reduce((a, p) => a + p.span_ms, 0) / 1000;
      return { ...f, rate: count / spanS, error_ratio: count ? errors / count : 0, p95: recent.at(-1)?.p95_ms, pts };
    });
    body.replaceChildren(
      h('p', { class: 'muted' }, `${st.slots} worker slots · ${st.running} running · ${st.queued} queued · node ${st.version}`),
      table('functions-table', rows, [
        ['name', 'function', (v) => h('a', { href: `#/function/${encodeURIComponent(v)}` }, v)],
        ['active_version', 'version'],
        ['rate', 'rate (1 min)', (v) => fmt(v, '/s')],
        ['error_ratio', 'errors (1 min)', (v) => fmt(v, '%')],
        ['updated_at_ms', 'updated', ms],
      ], (r) => ({ 'data-fn': r.name })),
      h('div', { class: 'cards' }, rows.map((r) => h('div', { class: 'card', 'data-fn': r.name },
        h('h2', {}, h('a', { href: `#/function/${encodeURIComponent(r.name)}` }, r.name)),
        lineChart(r.pts, { title: 'rate', unit: '/s', lines: [{ key: 'rate', color: '#2b6cb0' }] }),
        lineChart(r.pts, { title: 'latency', unit: 'ms', lines: [{ key: 'p50_ms', label: 'p50', color: '#2f855a' }, { key: 'p95_ms', label: 'p95', color: '#b7791f' }, { key: 'p99_ms', label: 'p99', color: '#c53030' }] }),
        lineChart(r.pts, { title: 'errors', unit: '%', max: 1, lines: [{ key: 'error_ratio', color: '#c53030' }] }),
        lineChart(r.pts, { title: 'slot share', unit: '%', max: 1, lines: [{ key: 'slot_share', color: '#6b46c1' }] }),
      ))));
  }, status);
}

export function functionPage(view, [name]) {
  const status = h('div');
  const info = h('div', { id: 'function-info' });
  const feedState = h('span', { id: 'feed-state', class: 'muted' }, 'connecting…');
  const invocations = h('tbody');
  const lines = h('pre', { id: 'stderr' });
  view.replaceChildren(
    h('h1', {}, `Function ${name}`), status, info,
    h('h2', {}, 'Invocations ', feedState),
    h('table', { id: 'invocations' }, h('thead', {}, h('tr', {}, ['time', 'id', 'version', 'outcome', 'duration', 'queued', 'detail'].map((c) => h('th', {}, c)))), invocations),
    h('h2', {}, 'stderr'), lines);
  const addRecord = (r) => {
    if (invocations.querySelector(`tr[data-id="${CSS.escape(r.id)}"]`)) return;
    invocations.prepend(h('tr', { 'data-id': r.id, class: `outcome-${r.outcome === 'ok' ? 'ok' : 'failed'}` },
      h('td', {}, ms(r.start_ms)), h('td', { class: 'mono' }, r.id), h('td', {}, r.version), h('td', {}, r.outcome),
      h('td', {}, fmt(r.duration_us / 1000, 'ms')), h('td', {}, fmt(r.queue_wait_us / 1000, 'ms')), h('td', {}, r.detail || '')));
    while (invocations.children.length > 200) invocations.lastChild.remove();
  };
  // An invocation that ends while the feed starts may come as a message before the backlog
  // and in it: records are told apart by id, lines by their sequence number.
  let lastSeq = 0;
  const addLine = (l) => {
    if (l.seq <= lastSeq) return;
    lastSeq = l.seq;
    lines.append(h('div', { class: 'line', 'data-invocation': l.invocation_id }, h('span', { class: 'muted' }, `${ms(l.time_ms)} ${l.invocation_id} `), l.text));
    while (lines.children.length > 500) lines.firstChild.remove();
    lines.scrollTop = lines.scrollHeight;
  };
  const close = follow(name, (msg) => {
    if (msg.type === 'ready') {
      feedState.textContent = 'live';
      feedState.className = 'live';
      msg.invocations.forEach(addRecord);
      // The backlog holds whatever came before it: it replaces the lines.
      lines.replaceChildren();
      lastSeq = 0;
      msg.stderr.forEach(addLine);
    } else if (msg.type === 'invocation') {
      addRecord(msg.invocation);
      msg.stderr.forEach(addLine);
    }
  }, (end) => {
    if (end.reason && ['missing', 'malformed', 'unknown', 'revoked', 'expired'].includes(end.reason)) {
      window.dispatchEvent(new CustomEvent('tern-bad-token', { detail: new ApiError(401, { error: end }).message }));
      return;
    }
    feedState.textContent = `not live: ${end.message}`;
    feedState.className = 'error';
  });
  const stop = every(async () => {
    const f = await api(`/v1/functions/${encodeURIComponent(name)}`);
    const counts = Object.entries(f.invocations || {}).filter(([, n]) => n > 0).map(([o, n]) => `${o} ${n}`).join(', ');
    const facts = [['version', f.active_version], ['tier', f.tier], ['memory', f.memory_mb && `${f.memory_mb} MB`],
      ['timeout', f.timeout_ms && `${f.timeout_ms} ms`], ['concurrency', f.concurrency || 'node default'],
      ['env', text(f.env)], ['triggers', text(f.triggers)], ['capabilities', text(f.allow)],
      ['in flight', f.in_flight], ['invocations', counts || 'none yet'], ['deployed', ms(f.created_at_ms)]];
    info.replaceChildren(h('dl', { id: 'function-settings', class: 'facts' },
      facts.filter(([, v]) => v !== undefined && v !== '' && v !== '–').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  }, status);
  return () => { stop(); close(); };
}

export function clusterPage(view) {
  const status = h('div');
  const body = h('div', { id: 'cluster' });
  view.replaceChildren(h('h1', {}, 'Cluster'), status, body);
  return every(async () => {
    let c;
    try {
      c = await api('/v1/cluster/nodes');
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      const st = await api('/v1/status');
      c = { node: 'this node', standalone: true, nodes: [{ id: 'this node', site: '(standalone)', tier: 'edge', state: 'self', slots: st.slots, running: st.running, queued: st.queued, rejected: st.rejected, functions: {} }] };
    }
    const sites = new Map();
    for (const n of c.nodes) (sites.get(n.site || '(none)') || sites.set(n.site || '(none)', []).get(n.site || '(none)')).push(n);
    body.replaceChildren(
      c.standalone ? h('p', { class: 'muted' }, 'This node is standalone (start ternd with --cluster to join a cluster).') : h('p', { class: 'muted' }, `Seen from ${c.node}${c.connected ? '' : ' (not connected to NATS)'}`),
      ...[...sites.entries()].map(([site, nodes]) => h('section', { class: 'site', 'data-site': site },
        h('h2', {}, `Site ${site}`),
        h('div', { class: 'nodes' }, nodes.map((n) => {
          const load = n.slots ? (n.running + n.queued) / n.slots : 0;
          return h('div', { class: `node state-${n.state}`, 'data-node': n.id },
            h('h3', {}, n.id), h('p', { class: 'muted' }, `${n.tier} · ${n.state}`),
            h('div', { class: 'bar' }, h('div', { class: 'fill', style: null, 'data-load': load.toFixed(2) })),
            h('p', {}, `${n.running}/${n.slots} slots busy · ${n.queued} queued · ${n.rejected} refused`),
            h('p', { class: 'muted' }, Object.entries(n.functions || {}).map(([f, r]) => `${f} ${fmt(r, '/s')}`).join(' · ') || 'no calls'));
        })))));
    for (const fill of body.querySelectorAll('.fill')) fill.style.width = `${Math.min(100, Number(fill.dataset.load) * 100)}%`;
  }, status);
}

export function workflowsPage(view) {
  const status = h('div');
  const body = h('div', { id: 'workflows' });
  view.replaceChildren(h('h1', {}, 'Workflows'), status, body);
  return every(async () => {
    const list = await api('/v1/workflows');
    const runs = await Promise.all(list.workflows.map((w) => api(`/v1/workflows/${encodeURIComponent(w.name)}/runs?limit=10`)));
    body.replaceChildren(...list.workflows.map((w, i) => h('section', { class: 'workflow', 'data-workflow': w.name },
      h('h2', {}, w.name), h('p', { class: 'muted' }, `${w.tasks} functions · policy ${w.options?.policy ?? '–'}`),
      table(`runs-${w.name}`, runs[i].runs, [
        ['id', 'run', (v) => h('a', { href: `#/run/${encodeURIComponent(v)}`, 'data-run': v }, v)],
        ['status', 'status'],
        ['started_ms', 'started', ms],
        ['finished_ms', 'took', (v, r) => (v ? fmt(v - r.started_ms, 'ms') : '–')],
        ['error', 'error', (v) => v || ''],
      ]))));
    if (!list.workflows.length) body.replaceChildren(h('p', { class: 'muted' }, 'No workflows deployed.'));
  }, status);
}

export function runPage(view, [id]) {
  const status = h('div');
  const body = h('div', { id: 'run' });
  view.replaceChildren(h('h1', {}, `Run ${id}`), status, body);
  let done = false;
  const stop = every(async () => {
    if (done) return;
    const run = await api(`/v1/runs/${encodeURIComponent(id)}`);
    done = run.status !== 'running';
    body.replaceChildren(...[
      h('p', { id: 'run-status', class: `status-${run.status}` }, `${run.workflow} · ${run.status}${run.finished_ms ? ` in ${fmt(run.finished_ms - run.started_ms, 'ms')}` : ''}`),
      run.error ? errorBox(run.error) : null,
      h('div', { class: 'graph-box' }, runGraph(run)),
      h('h2', {}, 'Timeline'), timeline(run),
      h('h2', {}, 'Tasks'),
      table('run-tasks', run.tasks, [['task', 'task'], ['iteration', 'iteration'], ['resource', 'resource'],
        ['queue_us', 'queued', (v) => fmt(v / 1000, 'ms')], ['duration_us', 'duration', (v) => fmt(v / 1000, 'ms')],
        ['attempts', 'attempts'], ['outcome', 'outcome']])].filter(Boolean));
  }, status);
  return stop;
}

export function providersPage(view) {
  const status = h('div');
  const body = h('div', { id: 'providers' });
  view.replaceChildren(h('h1', {}, 'Providers'), status, body);
  return every(async () => {
    const [p, r] = await Promise.all([api('/v1/providers'), api('/v1/routes')]);
    body.replaceChildren(
      ...p.providers.map((x) => h('section', { class: 'provider', 'data-provider': x.name },
        h('h2', {}, `${x.name} (${x.kind})`), x.url ? h('p', { class: 'muted mono' }, x.url) : null,
        genericTable(`provider-${x.name}`, x.functions || []))),
      h('h2', {}, 'Routes'), genericTable('routes', r.routes));
  }, status);
}

export function streamsPage(view) {
  const status = h('div');
  const body = h('div', { id: 'streams' });
  view.replaceChildren(h('h1', {}, 'Streams'), status, body);
  return every(async () => {
    const [s, t, a] = await Promise.all([api('/v1/streams'), api('/v1/topics'), api('/v1/apps')]);
    body.replaceChildren(
      h('p', { id: 'hub-stats' }, `${s.connections} connections · ${s.streams} streams · ${s.feed_updates} feed updates · ${s.deliveries} deliveries · ${s.filtered} filtered`),
      h('h2', {}, 'Topics'), genericTable('topics', t.topics.map((x) => ({ ...x, ...(s.topics.find((y) => y.topic === x.topic) || {}) }))),
      h('h2', {}, 'Apps'), genericTable('apps', a.apps));
  }, status);
}

export { token };
