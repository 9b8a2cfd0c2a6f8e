// An endpoint's delivery log.

import { api } from './api.js';
import { endpointLabel, loadEndpointCache } from './endpoint_cache.js';
import { report } from './messages.js';
import { Poller } from './poller.js';
import { state } from './state.js';
import { badge, enc, fill, h, statusKind, tid, timeEl } from './util.js';

export const endpointLogView = {
  name: 'endpoint-log',
  tab: 'endpoints',
  title: 'Delivery log',
  id: null,
  cursor: null,
  pages: 0,
  poller: null,
  init() {
    this.poller = new Poller(() => this.load(false), 5000, 'endpoint-log');
    tid('log-status').addEventListener('change', () => this.poller.start());
    tid('log-more').addEventListener('click', () => this.load(true).catch((e) => report(e, 'endpoint-log')));
  },
  enter(args) {
    this.id = args.id;
    tid('log-status').value = args.params.get('status') || '';
    tid('log-endpoint').textContent = args.id;
    fill(tid('view-endpoint-log').querySelector('tbody'));
    this.pages = 0;
    loadEndpointCache()
      .then(() => {
        const ep = state.endpoints.get(this.id);
        if (ep) fill(tid('log-endpoint'), endpointLabel(this.id));
      })
      .catch(() => {});
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  async load(more) {
    if (!more && this.pages > 1) return; // the user is reading older pages: leave them be
    const params = new URLSearchParams({ limit: '50' });
    const status = tid('log-status').value;
    if (status) params.set('status', status);
    if (more && this.cursor) params.set('cursor', this.cursor);
    const id = this.id;
    const page = await api('GET', `/v1/endpoints/${enc(id)}/deliveries?${params}`);
    if (id !== this.id || state.view !== this) return;
    const body = tid('view-endpoint-log').querySelector('tbody');
    const rows = (page.data || []).map((d) =>
      h(
        'tr',
        { 'data-testid': 'log-row', 'data-delivery-id': d.id },
        h('td', { 'data-label': 'Created' }, timeEl(d.created_at)),
        h('td', { 'data-label': 'Event' }, d.event ? [h('a', { href: `#/events/${enc(d.event.id)}` }, d.event.type), h('div', { class: 'mono muted small' }, d.event.id)] : d.event_id || '—'),
        h('td', { 'data-label': 'Status' }, badge(d.status, statusKind(d.status))),
        h('td', { 'data-label': 'Attempts' }, String(d.attempt_count ?? 0)),
        h('td', { 'data-label': 'Last result' }, d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error || '—'),
        h('td', null, h('a', { href: `#/deliveries/${enc(d.id)}` }, 'attempts →')),
      ),
    );
    if (more) body.append(...rows);
    else fill(body, ...rows);
    this.pages = more ? this.pages + 1 : 1;
    this.cursor = page.next_cursor || null;
    tid('log-more').hidden = !this.cursor;
    tid('log-empty').hidden = body.children.length > 0;
  },
};
