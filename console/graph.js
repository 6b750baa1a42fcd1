// A workflow run drawn as a graph of its tasks (GET /v1/runs/ID: "tasks" and "edges"):
// tasks in columns by their depth in the data flow, each box with its time (summed over a
// parallelFor's iterations), colour by outcome; under it a timeline of every task attempt
// from the run's start.

import { svg, fmt } from './charts.js';

// Groups the trace by task name: {name, count, durationUs, startUs, endUs, outcome, resource}.
export function taskSummary(run) {
  const byName = new Map();
  for (const t of run.tasks || []) {
    let s = byName.get(t.task);
    if (!s) {
      s = { name: t.task, count: 0, durationUs: 0, startUs: Infinity, endUs: 0, outcome: 'ok', resource: t.resource };
      byName.set(t.task, s);
    }
    s.count += 1;
    s.durationUs += t.duration_us || 0;
    s.startUs = Math.min(s.startUs, t.start_us || 0);
    s.endUs = Math.max(s.endUs, (t.start_us || 0) + (t.queue_us || 0) + (t.duration_us || 0));
    if (t.outcome && t.outcome !== 'ok') s.outcome = t.outcome;
  }
  return byName;
}

// Depth of each task: the longest path to it along the edges (tasks without edges by start).
function depths(names, edges) {
  const depth = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    let changed = false;
    for (const e of edges) {
      if (!depth.has(e.from) || !depth.has(e.to)) continue;
      const d = depth.get(e.from) + 1;
      if (d > depth.get(e.to)) { depth.set(e.to, d); changed = true; }
    }
    if (!changed) break;
  }
  return depth;
}

export function runGraph(run) {
  const tasks = taskSummary(run);
  const names = [...tasks.keys()].sort((a, b) => tasks.get(a).startUs - tasks.get(b).startUs);
  const edges = run.edges || [];
  const depth = depths(names, edges);
  const columns = [];
  for (const n of names) {
    const d = depth.get(n);
    (columns[d] ||= []).push(n);
  }
  const boxW = 150, boxH = 46, gapX = 50, gapY = 16;
  const rows = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const width = Math.max(1, columns.length) * (boxW + gapX) + 20;
  const height = rows * (boxH + gapY) + 20;
  const pos = new Map();
  columns.forEach((col, ci) => (col || []).forEach((n, ri) => {
    pos.set(n, { x: 10 + ci * (boxW + gapX), y: 10 + ri * (boxH + gapY) });
  }));
  const root = svg('svg', { id: 'run-graph', class: 'graph', viewBox: `0 0 ${width} ${height}`, width, height });
  root.append(svg('defs', {}, [svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' },
    [svg('path', { d: 'M0,0L10,5L0,10z', class: 'arrow' })])]));
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2;
    const mid = (x1 + x2) / 2;
    root.append(svg('path', { d: `M${x1},${y1}C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: 'edge', 'marker-end': 'url(#arrow)', 'data-from': e.from, 'data-to': e.to }));
  }
  for (const n of names) {
    const t = tasks.get(n), p = pos.get(n);
    const g = svg('g', { class: `task outcome-${t.outcome === 'ok' ? 'ok' : 'failed'}`, 'data-task': n, transform: `translate(${p.x},${p.y})` });
    g.append(svg('rect', { width: boxW, height: boxH, rx: 6 }));
    const title = svg('text', { x: 8, y: 18, class: 'task-name' });
    title.textContent = n;
    const time = svg('text', { x: 8, y: 36, class: 'task-time' });
    time.textContent = `${fmt(t.durationUs / 1000, 'ms')}${t.count > 1 ? ` · ×${t.count}` : ''} · ${t.outcome}`;
    g.append(title, time);
    root.append(g);
  }
  return root;
}

// Every task attempt as a bar on the run's time axis.
export function timeline(run) {
  // Times from the run's first task (start_us is a wall-clock time).
  const origin = Math.min(...(run.tasks || []).map((t) => t.start_us || 0));
  const ts = [...(run.tasks || [])].map((t) => ({ ...t, start_us: (t.start_us || 0) - origin }))
    .sort((a, b) => a.start_us - b.start_us);
  const end = Math.max(1, ...ts.map((t) => t.start_us + (t.queue_us || 0) + (t.duration_us || 0)));
  const width = 640, rowH = 18, left = 150;
  const root = svg('svg', { class: 'timeline', viewBox: `0 0 ${width} ${ts.length * rowH + 24}`, width, height: ts.length * rowH + 24 });
  const scale = (us) => left + ((width - left - 10) * us) / end;
  ts.forEach((t, i) => {
    const y = i * rowH + 4;
    const label = svg('text', { x: 0, y: y + 12, class: 'tl-label' });
    label.textContent = t.iteration ? `${t.task} ${t.iteration}` : t.task;
    const q = svg('rect', { x: scale(t.start_us), y, width: Math.max(1, scale(t.queue_us || 0) - left), height: rowH - 6, class: 'tl-queue' });
    const r = svg('rect', { x: scale(t.start_us + (t.queue_us || 0)), y, width: Math.max(1, scale(t.duration_us || 0) - left), height: rowH - 6, class: `tl-run outcome-${t.outcome === 'ok' ? 'ok' : 'failed'}` });
    const tip = svg('title');
    tip.textContent = `${t.task}: queued ${fmt((t.queue_us || 0) / 1000, 'ms')}, ran ${fmt((t.duration_us || 0) / 1000, 'ms')} on ${t.resource}`;
    r.append(tip);
    root.append(label, q, r);
  });
  const axis = svg('text', { x: width - 10, y: ts.length * rowH + 18, class: 'tl-label', 'text-anchor': 'end' });
  axis.textContent = `${fmt(end / 1000, 'ms')} from the first task's start`;
  root.append(axis);
  return root;
}
