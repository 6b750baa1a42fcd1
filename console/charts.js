// Small SVG charts drawn by hand: a time series of one or more lines over the function's
// buckets (the points of GET /v1/functions?series=1), with the latest value printed beside
// the title.

const NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, children = []) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// Formats a value of `unit` for a label.
export function fmt(v, unit) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (unit === '%') return `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`;
  if (unit === 'ms') return v < 1 ? `${(v * 1000).toFixed(0)} µs` : v < 1000 ? `${v.toFixed(1)} ms` : `${(v / 1000).toFixed(2)} s`;
  if (unit === '/s') return `${v < 10 ? v.toFixed(2) : v.toFixed(0)}/s`;
  return String(v);
}

// A line chart of `points` (objects), one line per entry of `lines` ({key, color}).
// `unit` formats the axis; `max` fixes the top (else the data's maximum).
export function lineChart(points, { title, lines, unit, max, width = 280, height = 90 }) {
  const pad = { l: 4, r: 4, t: 18, b: 4 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  let top = max ?? 0;
  if (max === undefined) {
    for (const p of points) for (const l of lines) top = Math.max(top, p[l.key] || 0);
  }
  if (top <= 0) top = 1;
  const x = (i) => pad.l + (points.length < 2 ? 0 : (i * w) / (points.length - 1));
  const y = (v) => pad.t + h - (Math.min(v, top) / top) * h;
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img' });
  root.append(svg('rect', { x: pad.l, y: pad.t, width: w, height: h, class: 'chart-bg' }));
  for (const frac of [0.5]) {
    root.append(svg('line', { x1: pad.l, x2: pad.l + w, y1: pad.t + h * frac, y2: pad.t + h * frac, class: 'grid' }));
  }
  const last = points[points.length - 1] || {};
  const label = svg('text', { x: pad.l, y: 12, class: 'chart-title' });
  label.textContent = `${title}: ${lines.map((l) => (l.label ? l.label + ' ' : '') + fmt(last[l.key], unit)).join(' · ')}`;
  root.append(label);
  const scale = svg('text', { x: width - pad.r - 3, y: pad.t + 10, class: 'chart-scale', 'text-anchor': 'end' });
  scale.textContent = `max ${fmt(top, unit)}`;
  root.append(scale);
  for (const l of lines) {
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p[l.key] || 0).toFixed(1)}`).join('');
    root.append(svg('path', { d, class: 'series', stroke: l.color, 'data-key': l.key }));
  }
  return root;
}
