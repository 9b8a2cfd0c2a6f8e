// Inbound sources, and one source's receipts.

import { api } from './api.js';
import { report } from './messages.js';
import { Poller } from './poller.js';
import { state } from './state.js';
import { badge, enc, fill, fmtDateTime, h, tid, timeEl } from './util.js';

export const sourcesView = {
  name: 'sources',
  tab: 'sources',
  title: 'Sources',
  poller: null,
  init() {
    this.poller = new Poller(() => this.load(), 10000, 'sources');
  },
  enter() {
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  async load() {
    const page = await api('GET', '/v1/sources?limit=250');
    if (state.view !== this) return;
    const list = page.data || [];
    tid('sources-empty').hidden = list.length > 0;
    fill(tid('source-list'),
      ...list.map((src) =>
        h(
          'article',
          { class: 'card source', 'data-testid': 'source-row', 'data-source-id': src.id },
          h('div', { class: 'card-head' }, badge(src.kind, 'neutral'), h('a', { href: `#/sources/${enc(src.id)}`, class: 'strong' }, src.name)),
          h('div', { class: 'small muted mono wrap' }, src.id),
          h(
            'dl',
            { class: 'facts small' },
            h('dt', null, 'ingest URL'),
            h('dd', { class: 'mono wrap' }, `${location.origin}${src.ingest_path || `/v1/inbound/${src.id}`}`),
            h('dt', null, 'event types'),
            h('dd', { class: 'mono' }, src.event_type_prefix ? `${src.event_type_prefix}{provider type}` : '{type from the body}'),
            h('dt', null, 'created'),
            h('dd', null, timeEl(src.created_at)),
            src.previous_secret_expires_at ? [h('dt', null, 'old secret'), h('dd', null, `accepted until ${fmtDateTime(src.previous_secret_expires_at)}`)] : null,
          ),
          h('a', { class: 'btn btn-small', href: `#/sources/${enc(src.id)}`, 'data-testid': 'source-open' }, 'Receipts'),
        ),
      ),
    );
  },
};

export const sourceView = {
  name: 'source',
  tab: 'sources',
  title: 'Source',
  id: null,
  cursor: null,
  pages: 0,
  poller: null,
  init() {
    this.poller = new Poller(() => this.load(false), 5000, 'source');
    tid('receipts-more').addEventListener('click', () => this.load(true).catch((e) => report(e, 'source')));
  },
  enter(args) {
    this.id = args.id;
    this.pages = 0;
    fill(tid('source-detail'), h('p', { class: 'muted' }, 'Loading…'));
    fill(tid('view-source').querySelector('tbody'));
    tid('receipts-empty').hidden = true;
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  async load(more) {
    if (!more && this.pages > 1) return;
    const id = this.id;
    const params = new URLSearchParams({ limit: '50' });
    if (more && this.cursor) params.set('cursor', this.cursor);
    const [src, page] = await Promise.all([
      more ? null : api('GET', `/v1/sources/${enc(id)}`),
      api('GET', `/v1/sources/${enc(id)}/receipts?${params}`),
    ]);
    if (id !== this.id || state.view !== this) return;
    if (src) {
      document.title = `${src.name} · herald`;
      fill(tid('source-detail'),
        h('div', { class: 'card' }, h('h1', null, src.name, ' ', badge(src.kind, 'neutral')), h('p', { class: 'mono small wrap' }, `POST ${location.origin}${src.ingest_path}`)),
      );
    }
    const rows = (page.data || []).map((r) =>
      h(
        'tr',
        { 'data-testid': 'receipt-row', 'data-verified': String(Boolean(r.verified)), 'data-duplicate': String(Boolean(r.duplicate)) },
        h('td', { 'data-label': 'Received' }, timeEl(r.received_at)),
        h('td', { 'data-label': 'Verification' }, r.verified ? badge('verified', 'ok') : [badge('rejected', 'bad'), r.error ? h('div', { class: 'error-text small' }, r.error) : null]),
        h('td', { 'data-label': 'Provider id', class: 'mono wrap' }, r.provider_event_id || '—'),
        h('td', { 'data-label': 'Duplicate' }, r.duplicate ? badge('duplicate', 'warn') : h('span', { class: 'muted' }, 'no')),
        h('td', { 'data-label': 'Event' }, r.event_id ? h('a', { class: 'mono', href: `#/events/${enc(r.event_id)}` }, r.event_id) : h('span', { class: 'muted' }, '—')),
      ),
    );
    const body = tid('view-source').querySelector('tbody');
    if (more) body.append(...rows);
    else fill(body, ...rows);
    this.pages = more ? this.pages + 1 : 1;
    this.cursor = page.next_cursor || null;
    tid('receipts-more').hidden = !this.cursor;
    tid('receipts-empty').hidden = body.children.length > 0;
  },
};
