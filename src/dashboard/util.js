// Helpers shared by the views: building DOM (text always as text, never as markup),
// formatting times and numbers, and matching event types.

export const tid = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);
const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces an element's children; null, undefined and false are skipped. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'hidden' || k === 'disabled' || k === 'checked') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** Builds an HTML element; text is always inserted as text, never as markup. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  return append(el, children);
}

/** Builds an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  return append(el, children);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const pad = (n) => String(n).padStart(2, '0');

function toDate(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtTime(iso) {
  const d = toDate(iso);
  return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : '—';
}

export function fmtDateTime(iso) {
  const d = toDate(iso);
  if (!d) return '—';
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return sameDay ? fmtTime(iso) : `${date} ${fmtTime(iso)}`;
}

export function fmtRelative(iso) {
  const d = toDate(iso);
  if (!d) return '';
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(secs);
  let text;
  if (abs < 1) return 'now';
  if (abs < 90) text = `${abs} s`;
  else if (abs < 90 * 60) text = `${Math.round(abs / 60)} min`;
  else if (abs < 36 * 3600) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return secs > 0 ? `in ${text}` : `${text} ago`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '—';
  const n = Number(ms);
  if (n < 1000) return `${Math.round(n * 10) / 10} ms`;
  return `${Math.round(n / 100) / 10} s`;
}

export function fmtPct(rate) {
  if (rate === null || rate === undefined) return '—';
  const p = rate * 100;
  return `${p >= 99.95 || p === 0 ? Math.round(p) : p.toFixed(1)} %`;
}

export function timeEl(iso, fmt = fmtDateTime) {
  return h('time', { datetime: iso || null, title: iso || null }, fmt(iso));
}

export function badge(text, kind, testid) {
  return h('span', { class: `badge badge-${kind || 'neutral'}`, 'data-testid': testid || null, 'data-value': text }, text);
}

export function statusKind(status) {
  return (
    {
      succeeded: 'ok',
      active: 'ok',
      closed: 'ok',
      pending: 'info',
      half_open: 'warn',
      failed: 'bad',
      dead: 'bad',
      open: 'bad',
      disabled: 'muted',
    }[status] || 'neutral'
  );
}

export function prettyJson(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** Parses "a, b.*, c" into ["a","b.*","c"]. */
export function parseTypes(text) {
  return String(text || '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The server's matching rule: "*", "prefix.*" (any type starting with "prefix."), or exact. */
function typeMatches(filter, type) {
  if (filter === '*') return true;
  if (filter.endsWith('*')) return type.startsWith(filter.slice(0, -1));
  return filter === type;
}

export const matchesAny = (filters, type) => filters.length === 0 || filters.some((f) => typeMatches(f, type));

export const enc = encodeURIComponent;
