// One event and its deliveries, and one delivery: a card per delivery with its attempts.

import { api } from './api.js';
import { endpointLabel, loadEndpointCache } from './endpoint_cache.js';
import { notice, report } from './messages.js';
import { Poller } from './poller.js';
import { state } from './state.js';
import { badge, enc, fill, fmtMs, fmtRelative, fmtTime, h, prettyJson, statusKind, tid, timeEl } from './util.js';

function deliveryCard(d, { onRetry } = {}) {
  const attempts = Array.isArray(d.attempts) ? d.attempts : null;
  const retry = h(
    'button',
    { type: 'button', class: 'btn btn-small', 'data-testid': 'delivery-retry', title: 'Queue another attempt now' },
    d.status === 'succeeded' ? 'Send again' : 'Retry now',
  );
  retry.addEventListener('click', async () => {
    retry.disabled = true;
    try {
      await api('POST', `/v1/deliveries/${enc(d.id)}/retry`);
      notice.show(`Delivery ${d.id} queued for another attempt.`);
      if (onRetry) await onRetry(d.id);
    } catch (e) {
      report(e);
    } finally {
      retry.disabled = false;
    }
  });
  const facts = [
    `${d.attempt_count ?? (attempts ? attempts.length : 0)} attempt${d.attempt_count === 1 ? '' : 's'}`,
    d.last_status_code ? `last answer HTTP ${d.last_status_code}` : null,
    d.last_error ? `last error: ${d.last_error}` : null,
    d.status === 'pending' && d.next_attempt_at ? `next attempt ${fmtTime(d.next_attempt_at)} (${fmtRelative(d.next_attempt_at)})` : null,
  ].filter(Boolean);
  let table;
  if (attempts === null) {
    table = h('p', { class: 'muted small' }, 'Loading attempts…');
  } else if (!attempts.length) {
    table = h(
      'p',
      { class: 'muted small', 'data-testid': 'attempts-none' },
      d.status === 'pending' ? 'No attempt yet (waiting for its turn, or for the endpoint’s circuit to close).' : 'No attempts recorded.',
    );
  } else {
    table = h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table attempts', 'data-testid': 'attempts' },
        h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Started'), h('th', null, 'Result'), h('th', null, 'Duration'), h('th', null, 'Answer / error'))),
        h(
          'tbody',
          null,
          attempts.map((a) => {
            const ok = a.status_code >= 200 && a.status_code < 300;
            const result = a.status_code ? badge(`HTTP ${a.status_code}`, ok ? 'ok' : 'bad') : badge('no answer', 'bad');
            const detail = [];
            if (a.error) detail.push(h('div', { class: 'error-text' }, a.error));
            if (a.response_body) {
              detail.push(h('details', { class: 'body' }, h('summary', null, `response body (${a.response_body.length} chars)`), h('pre', { class: 'json' }, a.response_body)));
            }
            if (!detail.length) detail.push(h('span', { class: 'muted' }, '—'));
            return h(
              'tr',
              { 'data-testid': 'attempt-row', 'data-status-code': a.status_code ?? '' },
              h('td', { 'data-label': '#' }, String(a.attempt ?? '')),
              h('td', { 'data-label': 'Started' }, timeEl(a.started_at)),
              h('td', { 'data-label': 'Result' }, result),
              h('td', { 'data-label': 'Duration' }, fmtMs(a.duration_ms)),
              h('td', { 'data-label': 'Answer' }, detail),
            );
          }),
        ),
      ),
    );
  }
  return h(
    'article',
    { class: 'card delivery', 'data-testid': 'delivery-row', 'data-delivery-id': d.id, 'data-status': d.status },
    h(
      'div',
      { class: 'card-head' },
      badge(d.status, statusKind(d.status), 'delivery-status'),
      h('a', { class: 'mono', href: `#/deliveries/${enc(d.id)}` }, d.id),
      h('span', { class: 'spacer' }),
      retry,
    ),
    h('div', { class: 'small' }, 'to ', endpointLabel(d.endpoint_id)),
    d.event ? h('div', { class: 'small' }, 'event ', h('a', { href: `#/events/${enc(d.event.id)}` }, d.event.type), ' ', h('span', { class: 'mono muted' }, d.event.id)) : null,
    h('p', { class: 'small muted' }, facts.join(' · ')),
    table,
  );
}

export const eventView = {
  name: 'event',
  tab: 'live',
  title: 'Event',
  id: null,
  poller: null,
  details: new Map(),
  init() {
    this.poller = new Poller(() => this.load(), 2000, 'event');
  },
  enter(args) {
    this.id = args.id;
    this.details.clear();
    fill(tid('event-detail'), h('p', { class: 'muted' }, 'Loading…'));
    fill(tid('event-deliveries'));
    loadEndpointCache().catch(() => {});
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  async load() {
    const id = this.id;
    const ev = await api('GET', `/v1/events/${enc(id)}`);
    if (id !== this.id || state.view !== this) return;
    document.title = `${ev.type} · herald`;
    fill(tid('event-detail'),
      h(
        'div',
        { class: 'card' },
        h('h1', { class: 'wrap' }, ev.type),
        h(
          'dl',
          { class: 'facts' },
          h('dt', null, 'id'),
          h('dd', { class: 'mono wrap' }, ev.id),
          h('dt', null, 'seq'),
          h('dd', null, String(ev.seq ?? '—')),
          h('dt', null, 'version'),
          h('dd', { 'data-testid': 'event-version' }, String(ev.version ?? 1)),
          h('dt', null, 'created'),
          h('dd', null, timeEl(ev.created_at)),
          ev.correlation_id ? [h('dt', null, 'correlation id'), h('dd', { class: 'mono wrap' }, ev.correlation_id)] : null,
        ),
        h('details', null, h('summary', null, 'data'), h('pre', { class: 'json' }, prettyJson(ev.data))),
      ),
    );
    const deliveries = ev.deliveries || [];
    // Attempts of each delivery (at most 20): fetched again only while still pending.
    const wanted = deliveries.slice(0, 20).filter((d) => {
      const known = this.details.get(d.id);
      return !known || known.status === 'pending' || known.status !== d.status;
    });
    await Promise.all(
      wanted.map(async (d) => {
        try {
          this.details.set(d.id, await api('GET', `/v1/deliveries/${enc(d.id)}`));
        } catch (e) {
          if (e.status !== 404) throw e;
        }
      }),
    );
    if (id !== this.id || state.view !== this) return;
    const box = tid('event-deliveries');
    if (!deliveries.length) {
      fill(box, h('p', { class: 'empty', 'data-testid': 'event-no-deliveries' }, 'No endpoint subscribes to this event type, so it was not delivered anywhere (it still reached live streams).'));
    } else {
      fill(box,
        ...deliveries.map((d) => deliveryCard({ ...d, ...(this.details.get(d.id) || {}) }, { onRetry: (did) => this.retried(did) })),
        deliveries.length > 20 ? h('p', { class: 'muted small' }, `Attempts are shown for the first 20 of ${deliveries.length} deliveries.`) : null,
      );
    }
    // Refresh often only while something can still change.
    this.poller.ms = deliveries.some((d) => d.status === 'pending') ? 1000 : 10000;
  },
  retried(deliveryId) {
    this.details.delete(deliveryId);
    this.poller.ms = 1000;
    this.poller.schedule(200);
  },
};

export const deliveryView = {
  name: 'delivery',
  tab: 'endpoints',
  title: 'Delivery',
  id: null,
  poller: null,
  init() {
    this.poller = new Poller(() => this.load(), 2000, 'delivery');
  },
  enter(args) {
    this.id = args.id;
    fill(tid('delivery-detail'), h('p', { class: 'muted' }, 'Loading…'));
    loadEndpointCache().catch(() => {});
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  async load() {
    const id = this.id;
    const d = await api('GET', `/v1/deliveries/${enc(id)}`);
    if (id !== this.id || state.view !== this) return;
    fill(tid('delivery-detail'),
      d.event_id ? h('p', { class: 'small' }, 'Event ', h('a', { href: `#/events/${enc(d.event_id)}`, class: 'mono' }, d.event_id)) : null,
      deliveryCard(d, {
        onRetry: () => {
          this.poller.ms = 1000;
          this.poller.schedule(200);
        },
      }),
    );
    this.poller.ms = d.status === 'pending' ? 1000 : 10000;
  },
};
