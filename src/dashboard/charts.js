// Charts from GET /v1/stats, drawn as SVG: attempts per minute by outcome, a latency
// histogram, and latency per minute.

import { api } from './api.js';
import { Poller } from './poller.js';
import { state } from './state.js';
import { fill, fmtDateTime, fmtMs, h, pad, s, tid } from './util.js';

const charts = {
  /** One entry per minute from `from` to `to`; minutes without attempts are zeros. */
  minutes(stats) {
    let to = Date.parse(stats.to);
    let from = Date.parse(stats.from);
    if (!Number.isFinite(to)) to = Date.now();
    if (!Number.isFinite(from) || from >= to) from = to - 3600000;
    const start = Math.floor(from / 60000) * 60000;
    let end = Math.floor(to / 60000) * 60000;
    if (end - start > 24 * 3600000) end = start + 24 * 3600000;
    const known = new Map();
    for (const m of stats.minutes || []) {
      const t = Date.parse(m.minute);
      if (Number.isFinite(t)) known.set(Math.floor(t / 60000) * 60000, m);
    }
    const out = [];
    for (let t = start; t <= end; t += 60000) {
      const m = known.get(t) || {};
      out.push({
        t,
        succeeded: Number(m.succeeded) || 0,
        http_error: Number(m.http_error) || 0,
        transport_error: Number(m.transport_error) || 0,
        avg: m.latency_avg_ms ?? null,
        max: m.latency_max_ms ?? null,
      });
    }
    return out;
  },

  niceMax(v) {
    if (v <= 0) return 1;
    const exp = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return m * exp;
    return 10 * exp;
  },

  hhmm(t) {
    const d = new Date(t);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  },

  /** How many grid steps make round numbers of a niceMax() value. */
  ticksFor(yMax, integers) {
    if (integers && yMax <= 5) return Math.max(1, yMax);
    const mantissa = yMax / 10 ** Math.floor(Math.log10(yMax));
    return mantissa === 2.5 || mantissa === 5 ? 5 : 4;
  },

  /** An x position for a label that must stay inside the chart. */
  clampX(x, width, margin, half = 16) {
    return Math.min(Math.max(x, margin.left + half), width - margin.right - half);
  },

  frame(width, height, margin, yMax, ticks, fmt) {
    const g = s('g', { class: 'axis' });
    const plotH = height - margin.top - margin.bottom;
    for (let i = 0; i <= ticks; i += 1) {
      const v = (yMax * i) / ticks;
      const y = margin.top + plotH - (plotH * i) / ticks;
      g.append(s('line', { x1: margin.left, x2: width - margin.right, y1: y, y2: y, class: i === 0 ? 'baseline' : 'grid' }));
      g.append(s('text', { x: margin.left - 6, y: y + 4, 'text-anchor': 'end' }, fmt(v)));
    }
    return g;
  },

  stacked(container, data) {
    const width = Math.max(300, container.clientWidth || 600);
    const height = width < 500 ? 200 : 240;
    const margin = { top: 10, right: 8, bottom: 24, left: 40 };
    const plotW = width - margin.left - margin.right;
    const plotH = height - margin.top - margin.bottom;
    const totals = data.map((m) => m.succeeded + m.http_error + m.transport_error);
    const yMax = this.niceMax(Math.max(...totals, 0));
    const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Delivery attempts per minute by outcome' });
    const intFmt = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
    svg.append(this.frame(width, height, margin, yMax, this.ticksFor(yMax, true), intFmt));
    const bw = plotW / data.length;
    const gap = bw > 6 ? Math.min(2, bw * 0.2) : 0;
    const bars = s('g', { class: 'bars' });
    data.forEach((m, i) => {
      const x = margin.left + i * bw;
      let y = margin.top + plotH;
      for (const [key, cls] of [
        ['succeeded', 'seg-ok'],
        ['http_error', 'seg-warn'],
        ['transport_error', 'seg-bad'],
      ]) {
        const v = m[key];
        if (!v) continue;
        const hgt = (plotH * v) / yMax;
        y -= hgt;
        bars.append(s('rect', { x: x + gap / 2, y, width: Math.max(1, bw - gap), height: Math.max(0.5, hgt), class: `seg ${cls}`, 'data-testid': 'chart-bar' }));
      }
      // A full-height target so the tooltip shows anywhere in the column.
      const label = `${this.hhmm(m.t)}: ${m.succeeded} succeeded, ${m.http_error} HTTP errors, ${m.transport_error} transport errors${m.avg !== null ? `, avg ${fmtMs(m.avg)}` : ''}`;
      bars.append(s('rect', { x, y: margin.top, width: bw, height: plotH, class: 'hover' }, s('title', null, label)));
    });
    svg.append(bars);
    const labels = s('g', { class: 'axis' });
    const every = width < 500 ? 15 : 10;
    data.forEach((m, i) => {
      if (new Date(m.t).getMinutes() % every === 0) {
        labels.append(s('text', { x: this.clampX(margin.left + i * bw + bw / 2, width, margin), y: height - 6, 'text-anchor': 'middle' }, this.hhmm(m.t)));
      }
    });
    svg.append(labels);
    if (!totals.some((t) => t > 0)) {
      svg.append(s('text', { x: margin.left + plotW / 2, y: margin.top + plotH / 2, 'text-anchor': 'middle', class: 'empty-text' }, 'No delivery attempts in this hour'));
    }
    fill(container, svg);
    return totals;
  },

  histogram(container, bins) {
    const width = Math.max(280, container.clientWidth || 400);
    const height = 200;
    const margin = { top: 18, right: 8, bottom: 24, left: 40 };
    const plotW = width - margin.left - margin.right;
    const plotH = height - margin.top - margin.bottom;
    const list = Array.isArray(bins) ? bins : [];
    const compact = plotW / Math.max(1, list.length) < 52;
    const label = (b, i) => {
      if (b.le_ms === null || b.le_ms === undefined) {
        const prev = list[i - 1];
        return prev && prev.le_ms !== null && prev.le_ms !== undefined ? `>${this.msLabel(prev.le_ms, compact)}` : 'more';
      }
      return `≤${this.msLabel(b.le_ms, compact)}`;
    };
    const yMax = this.niceMax(Math.max(0, ...list.map((b) => Number(b.count) || 0)));
    const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Attempt latency histogram' });
    svg.append(this.frame(width, height, margin, yMax, this.ticksFor(yMax, true), (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1))));
    const bw = plotW / Math.max(1, list.length);
    const g = s('g', { class: 'bars' });
    const axis = s('g', { class: 'axis' });
    const total = list.reduce((a, b) => a + (Number(b.count) || 0), 0);
    list.forEach((b, i) => {
      const n = Number(b.count) || 0;
      const hgt = (plotH * n) / yMax;
      const x = margin.left + i * bw;
      const y = margin.top + plotH - hgt;
      g.append(s('rect', { x: x + bw * 0.12, y, width: bw * 0.76, height: Math.max(n ? 1 : 0, hgt), class: 'seg seg-lat', 'data-testid': 'histogram-bar' }, s('title', null, `${label(b, i)}: ${n} attempts`)));
      if (n) g.append(s('text', { x: x + bw / 2, y: y - 4, 'text-anchor': 'middle', class: 'bar-value' }, String(n)));
      axis.append(s('text', { x: x + bw / 2, y: height - 6, 'text-anchor': 'middle' }, label(b, i)));
    });
    if (compact) axis.append(s('text', { x: margin.left - 6, y: height - 6, 'text-anchor': 'end' }, 'ms'));
    svg.append(g, axis);
    if (!total) svg.append(s('text', { x: margin.left + plotW / 2, y: margin.top + plotH / 2, 'text-anchor': 'middle', class: 'empty-text' }, 'No attempts'));
    fill(container, svg);
  },

  msLabel(ms, compact) {
    if (ms >= 1000) return `${ms / 1000}s`;
    return compact ? String(ms) : `${ms}ms`;
  },

  latency(container, data) {
    const width = Math.max(280, container.clientWidth || 400);
    const height = 200;
    const margin = { top: 10, right: 8, bottom: 24, left: 48 };
    const plotW = width - margin.left - margin.right;
    const plotH = height - margin.top - margin.bottom;
    const values = data.flatMap((m) => [m.avg, m.max]).filter((v) => v !== null && v !== undefined);
    const yMax = this.niceMax(Math.max(0, ...values));
    const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Average and maximum latency per minute' });
    svg.append(this.frame(width, height, margin, yMax, this.ticksFor(yMax, false), (v) => fmtMs(v).replace(' ', '')));
    const step = plotW / Math.max(1, data.length);
    const x = (i) => margin.left + i * step + step / 2;
    const y = (v) => margin.top + plotH - (plotH * v) / yMax;
    const line = (key, cls) => {
      let d = '';
      let pen = false;
      data.forEach((m, i) => {
        const v = m[key];
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      if (d) svg.append(s('path', { d, class: `line ${cls}` }));
      data.forEach((m, i) => {
        const v = m[key];
        if (v !== null && v !== undefined) svg.append(s('circle', { cx: x(i), cy: y(v), r: 2.5, class: `dot ${cls}` }, s('title', null, `${this.hhmm(m.t)}: ${key} ${fmtMs(v)}`)));
      });
    };
    line('max', 'line-max');
    line('avg', 'line-avg');
    const labels = s('g', { class: 'axis' });
    const every = width < 500 ? 20 : 15;
    data.forEach((m, i) => {
      if (new Date(m.t).getMinutes() % every === 0) labels.append(s('text', { x: this.clampX(x(i), width, margin), y: height - 6, 'text-anchor': 'middle' }, this.hhmm(m.t)));
    });
    svg.append(labels);
    if (!values.length) svg.append(s('text', { x: margin.left + plotW / 2, y: margin.top + plotH / 2, 'text-anchor': 'middle', class: 'empty-text' }, 'No attempts'));
    fill(container, svg);
  },
};

export const chartsView = {
  name: 'charts',
  tab: 'charts',
  title: 'Charts',
  poller: null,
  stats: null,
  resizeTimer: null,
  init() {
    this.poller = new Poller(() => this.load(), 10000, 'charts');
    window.addEventListener('resize', () => {
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => {
        if (state.view === this && this.stats) this.draw();
      }, 150);
    });
  },
  enter() {
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  async load() {
    const stats = await api('GET', '/v1/stats');
    if (state.view !== this) return;
    this.stats = stats || {};
    this.draw();
  },
  draw() {
    const data = charts.minutes(this.stats);
    const totals = charts.stacked(tid('chart-minutes'), data);
    const sum = (k) => data.reduce((a, m) => a + m[k], 0);
    const legend = [
      ['seg-ok', 'succeeded (2xx)', sum('succeeded')],
      ['seg-warn', 'HTTP error (non-2xx)', sum('http_error')],
      ['seg-bad', 'transport error (no answer)', sum('transport_error')],
    ];
    fill(tid('chart-legend'),
      ...legend.map(([cls, label, n]) => h('li', null, h('span', { class: `swatch ${cls}` }), `${label}: `, h('b', null, String(n)))),
      h('li', { class: 'muted' }, `${totals.reduce((a, b) => a + b, 0)} attempts`),
    );
    charts.histogram(tid('chart-histogram'), this.stats.latency_histogram);
    charts.latency(tid('chart-latency'), data);
    const from = this.stats.from ? fmtDateTime(this.stats.from) : '';
    const to = this.stats.to ? fmtDateTime(this.stats.to) : '';
    tid('charts-range').textContent = from && to ? `${from} – ${to} · refreshed every 10 s` : '';
  },
};
