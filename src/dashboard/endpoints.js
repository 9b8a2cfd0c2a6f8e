// The endpoints: status, circuit, delivery counts; create, disable, enable, delete, and send a
// test event and follow its outcome.

import { api } from './api.js';
import { banner, notice, report } from './messages.js';
import { Poller } from './poller.js';
import { state } from './state.js';
import { badge, enc, fill, fmtMs, fmtPct, fmtRelative, fmtTime, h, parseTypes, sleep, statusKind, tid } from './util.js';

export const endpointsView = {
  name: 'endpoints',
  tab: 'endpoints',
  title: 'Endpoints',
  cards: new Map(),
  tests: new Map(), // endpoint id -> {status, text, deliveryId}
  detailAt: new Map(),
  poller: null,

  init() {
    this.poller = new Poller(() => this.refresh(), 2000, 'endpoints');
    tid('endpoint-create-form').addEventListener('submit', (e) => this.create(e));
    // The cards say "in 42 s": keep that current between refreshes.
    setInterval(() => {
      if (state.view !== this) return;
      for (const [id, card] of this.cards) {
        const ep = state.endpoints.get(id);
        if (ep) this.update(card, ep);
      }
    }, 1000);
  },
  enter() {
    this.poller.start();
  },
  leave() {
    this.poller.stop();
  },
  reset() {
    this.cards.clear();
    this.tests.clear();
    this.detailAt.clear();
    fill(tid('endpoint-list'));
  },

  async refresh() {
    const epoch = state.epoch;
    const page = await api('GET', '/v1/endpoints?limit=250');
    if (epoch !== state.epoch) return;
    const list = (page && page.data) || [];
    const seen = new Set();
    for (const ep of list) {
      const prev = state.endpoints.get(ep.id);
      const merged = ep.counts ? ep : { ...ep, counts: prev && prev.counts };
      state.endpoints.set(ep.id, merged);
      seen.add(ep.id);
    }
    for (const id of [...state.endpoints.keys()]) if (!seen.has(id)) state.endpoints.delete(id);
    state.endpointsLoadedAt = Date.now();
    this.render(list.map((ep) => state.endpoints.get(ep.id)));
    tid('endpoints-updated').textContent = `updated ${fmtTime(new Date().toISOString())}${page && page.next_cursor ? ' · showing the first 250' : ''}`;
    // Counts by delivery status come with GET /v1/endpoints/{id}; refresh them less often.
    const stale = list.filter((ep) => !ep.counts && Date.now() - (this.detailAt.get(ep.id) || 0) > 8000).slice(0, 10);
    await Promise.all(stale.map((ep) => this.loadDetail(ep.id, epoch)));
  },

  async loadDetail(id, epoch) {
    this.detailAt.set(id, Date.now());
    try {
      const ep = await api('GET', `/v1/endpoints/${enc(id)}`);
      if (epoch !== state.epoch || !state.endpoints.has(id)) return;
      state.endpoints.set(id, ep);
      const card = this.cards.get(id);
      if (card) this.update(card, ep);
    } catch (e) {
      if (e.status !== 404) throw e;
    }
  },

  render(list) {
    const container = tid('endpoint-list');
    tid('endpoints-empty').hidden = list.length > 0;
    const ids = new Set(list.map((ep) => ep.id));
    for (const [id, card] of this.cards) {
      if (!ids.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    let prevEl = null;
    for (const ep of list) {
      let card = this.cards.get(ep.id);
      if (!card) {
        card = this.build(ep);
        this.cards.set(ep.id, card);
      }
      const want = prevEl ? prevEl.nextSibling : container.firstChild;
      if (want !== card.el) container.insertBefore(card.el, want);
      prevEl = card.el;
      this.update(card, ep);
    }
  },

  build(ep) {
    const c = {};
    c.status = h('span');
    c.circuit = h('span');
    c.url = h('span', { class: 'ep-url mono wrap', 'data-testid': 'endpoint-url-text' });
    c.meta = h('div', { class: 'small muted wrap' });
    c.events = h('div', { class: 'chips' });
    c.counts = h('div', { class: 'counts', 'data-testid': 'endpoint-counts' });
    c.circuitLine = h('div', { class: 'small', 'data-testid': 'endpoint-circuit-detail' });
    c.queueLine = h('div', { class: 'small warn-text', 'data-testid': 'endpoint-queue', hidden: true });
    c.cancelBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'endpoint-cancel-blocker', hidden: true }, 'Cancel the blocking delivery');
    c.cancelBtn.addEventListener('click', () => this.cancelBlocker(ep.id, c.cancelBtn.dataset.deliveryId));
    c.testBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'endpoint-test' }, 'Send test event');
    c.toggleBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'endpoint-toggle' }, 'Disable');
    c.deleteBtn = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'endpoint-delete' }, 'Delete');
    c.logLink = h('a', { class: 'btn btn-small btn-quiet', 'data-testid': 'endpoint-log' }, 'Delivery log');
    c.deadLink = h('a', { class: 'btn btn-small btn-quiet', 'data-testid': 'endpoint-dead' }, 'Dead letters');
    c.result = h('div', { class: 'test-result small', 'data-testid': 'endpoint-test-result', role: 'status', hidden: true });
    c.testBtn.addEventListener('click', () => this.sendTest(ep.id));
    c.toggleBtn.addEventListener('click', () => this.toggle(ep.id));
    c.deleteBtn.addEventListener('click', () => this.remove(ep.id));
    c.el = h(
      'article',
      { class: 'card endpoint', 'data-testid': 'endpoint-row', 'data-endpoint-id': ep.id },
      h('div', { class: 'card-head' }, c.status, c.circuit, c.url),
      c.meta,
      c.events,
      c.counts,
      c.circuitLine,
      c.queueLine,
      h('div', { class: 'actions' }, c.testBtn, c.toggleBtn, c.logLink, c.deadLink, c.cancelBtn, c.deleteBtn),
      c.result,
    );
    return c;
  },

  update(c, ep) {
    c.el.dataset.status = ep.status;
    const circuit = ep.circuit || { state: 'closed' };
    c.el.dataset.circuit = circuit.state;
    fill(c.status, badge(ep.status, statusKind(ep.status), 'endpoint-status'));
    fill(c.circuit, badge(`circuit ${circuit.state.replace('_', '-')}`, statusKind(circuit.state), 'endpoint-circuit'));
    c.circuit.firstChild.dataset.state = circuit.state;
    c.url.textContent = ep.url;
    fill(c.meta,
      h('span', { class: 'mono' }, ep.id),
      ep.description ? ` · ${ep.description}` : null,
      ep.signature_scheme ? ` · ${ep.signature_scheme}` : null,
    );
    fill(c.events,
      ...(ep.events || []).map((t) => h('span', { class: 'chip mono' }, t)),
      ep.ordering === 'fifo' ? h('span', { class: 'chip', 'data-testid': 'endpoint-fifo', title: 'one delivery at a time, in event order' }, 'FIFO') : null,
      ...Object.entries(ep.versions || {}).map(([type, v]) =>
        h('span', { class: 'chip mono', 'data-testid': 'endpoint-version-pin', title: `receives version ${v} of ${type} only` }, `${type} v${v}`)),
      ep.filter ? h('span', { class: 'chip mono', 'data-testid': 'endpoint-filter', title: 'payload filter: only events that meet it are delivered' }, `filter ${JSON.stringify(ep.filter)}`) : null,
    );
    const n = ep.counts;
    if (n) {
      const item = (label, value, kind) =>
        h('span', { class: `count count-${value ? kind : 'zero'}`, 'data-count': label }, h('b', null, String(value ?? 0)), ` ${label}`);
      const rate = n.success_rate;
      const rateKind = rate === null || rate === undefined ? 'zero' : rate >= 0.99 ? 'ok' : rate >= 0.9 ? 'warn' : 'bad';
      fill(c.counts,
        item('pending', n.pending, 'info'),
        item('succeeded', n.succeeded, 'ok'),
        item('failed', n.failed, 'bad'),
        item('dead', n.dead, 'bad'),
        h('span', { class: `count count-${rateKind}`, 'data-count': 'success_rate', title: 'succeeded ÷ (succeeded + failed + dead)' }, h('b', null, fmtPct(rate)), ' success'),
      );
    } else if (!c.counts.firstChild) {
      fill(c.counts, h('span', { class: 'muted small' }, 'counting deliveries…'));
    }
    const lines = [];
    if (circuit.state === 'open' && circuit.open_until) {
      lines.push(`Circuit open: no requests until ${fmtTime(circuit.open_until)} (${fmtRelative(circuit.open_until)}), then one probe.`);
    } else if (circuit.state === 'half_open') {
      lines.push('Circuit half-open: the next delivery is a probe.');
    }
    if (circuit.consecutive_failures) lines.push(`${circuit.consecutive_failures} consecutive failure${circuit.consecutive_failures === 1 ? '' : 's'}.`);
    c.circuitLine.textContent = lines.join(' ');
    c.circuitLine.hidden = lines.length === 0;
    c.circuitLine.className = `small ${circuit.state === 'closed' ? 'muted' : 'warn-text'}`;
    const blocked = ep.queue && ep.queue.blocked_by;
    c.queueLine.hidden = !blocked;
    c.cancelBtn.hidden = !blocked;
    if (blocked) {
      const b = ep.queue.blocked_by;
      c.queueLine.textContent = `Queue blocked by ${b.delivery_id}: ${b.attempts} failed attempt${b.attempts === 1 ? '' : 's'}${b.last_status_code ? ` (HTTP ${b.last_status_code})` : b.last_error ? ` (${b.last_error})` : ''}; next attempt ${b.next_attempt_at ? fmtRelative(b.next_attempt_at) : 'soon'}.`;
      c.cancelBtn.dataset.deliveryId = b.delivery_id;
    }
    c.toggleBtn.textContent = ep.status === 'active' ? 'Disable' : 'Enable';
    c.testBtn.disabled = ep.status !== 'active';
    c.testBtn.title = ep.status !== 'active' ? 'Enable the endpoint to send a test event' : '';
    c.logLink.href = `#/endpoints/${enc(ep.id)}/deliveries`;
    c.deadLink.href = `#/dead-letters?endpoint_id=${enc(ep.id)}`;
    const t = this.tests.get(ep.id);
    if (t) {
      c.result.hidden = false;
      c.result.dataset.status = t.status;
      fill(c.result,
        badge(t.status, statusKind(t.status)),
        ' ',
        t.text,
        t.deliveryId ? h('a', { href: `#/deliveries/${enc(t.deliveryId)}`, class: 'small' }, ' details') : null,
      );
    } else {
      c.result.hidden = true;
    }
  },

  setTest(id, test) {
    this.tests.set(id, test);
    const card = this.cards.get(id);
    const ep = state.endpoints.get(id);
    if (card && ep) this.update(card, ep);
  },

  async cancelBlocker(id, deliveryId) {
    if (!deliveryId) return;
    const epoch = state.epoch;
    try {
      await api('POST', `/v1/deliveries/${enc(deliveryId)}/cancel`);
    } catch (e) {
      // Already final or being attempted: the next refresh shows where the queue is.
    }
    this.loadDetail(id, epoch).catch(() => {});
  },

  async sendTest(id) {
    const epoch = state.epoch;
    const card = this.cards.get(id);
    if (card) card.testBtn.disabled = true;
    this.setTest(id, { status: 'sending', text: 'Sending a webhook.test event…' });
    try {
      const r = await api('POST', `/v1/endpoints/${enc(id)}/test`);
      const deliveryId = r && r.delivery_id;
      if (!deliveryId) {
        this.setTest(id, { status: 'failed', text: 'herald answered without a delivery id.' });
        return;
      }
      this.setTest(id, { status: 'pending', text: 'Queued; waiting for the first attempt…', deliveryId });
      const deadline = Date.now() + 30000;
      let d = null;
      while (Date.now() < deadline && epoch === state.epoch) {
        await sleep(d ? 500 : 250);
        d = await api('GET', `/v1/deliveries/${enc(deliveryId)}`);
        const last = d.attempts && d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
        const outcome = last
          ? [last.status_code ? `HTTP ${last.status_code}` : 'no answer', fmtMs(last.duration_ms), last.error ? `error: ${last.error}` : null].filter(Boolean).join(' · ')
          : null;
        if (d.status !== 'pending') {
          this.setTest(id, { status: d.status, text: outcome || `${d.status} without an attempt`, deliveryId });
          this.loadDetail(id, epoch).catch(() => {});
          return;
        }
        const ep = state.endpoints.get(id);
        const open = ep && ep.circuit && ep.circuit.state === 'open';
        this.setTest(id, {
          status: 'pending',
          text: last
            ? `attempt ${d.attempt_count} answered ${outcome}; retrying${d.next_attempt_at ? ` at ${fmtTime(d.next_attempt_at)}` : ''}…`
            : open
              ? 'waiting: the endpoint’s circuit is open.'
              : 'waiting for the first attempt…',
          deliveryId,
        });
      }
      if (d && d.status === 'pending') {
        const t = this.tests.get(id);
        this.setTest(id, { ...t, text: `${t.text} (still pending after 30 s; see details)` });
      }
    } catch (e) {
      this.setTest(id, { status: 'failed', text: e.message });
      if (!e.silent) report(e);
    } finally {
      const c = this.cards.get(id);
      const ep = state.endpoints.get(id);
      if (c && ep) c.testBtn.disabled = ep.status !== 'active';
    }
  },

  async toggle(id) {
    const ep = state.endpoints.get(id);
    if (!ep) return;
    const next = ep.status === 'active' ? 'disabled' : 'active';
    const card = this.cards.get(id);
    if (card) card.toggleBtn.disabled = true;
    try {
      const updated = await api('PATCH', `/v1/endpoints/${enc(id)}`, { status: next });
      state.endpoints.set(id, { ...ep, ...updated, counts: ep.counts });
      if (card) this.update(card, state.endpoints.get(id));
      notice.show(next === 'active' ? 'Endpoint enabled.' : 'Endpoint disabled: nothing is sent to it until enabled.');
    } catch (e) {
      report(e);
    } finally {
      if (card) card.toggleBtn.disabled = false;
    }
  },

  async remove(id) {
    const ep = state.endpoints.get(id);
    const label = ep ? ep.url : id;
    if (!window.confirm(`Delete the endpoint ${label}?\n\nIts pending deliveries stop. This cannot be undone.`)) return;
    try {
      await api('DELETE', `/v1/endpoints/${enc(id)}`);
      state.endpoints.delete(id);
      const card = this.cards.get(id);
      if (card) card.el.remove();
      this.cards.delete(id);
      this.tests.delete(id);
      tid('endpoints-empty').hidden = this.cards.size > 0;
      notice.show('Endpoint deleted.');
    } catch (e) {
      report(e);
    }
  },

  async create(e) {
    e.preventDefault();
    const form = e.target;
    const url = tid('endpoint-url').value.trim();
    const events = parseTypes(tid('endpoint-events').value);
    const description = tid('endpoint-description').value.trim();
    const submit = tid('endpoint-create-submit');
    let result = tid('endpoint-create-result');
    if (!result) {
      result = h('div', { class: 'create-result small', 'data-testid': 'endpoint-create-result', role: 'status' });
      form.after(result);
    }
    fill(result);
    result.hidden = true;
    delete result.dataset.endpointId;
    if (!url) {
      banner.show('Give the endpoint a URL.');
      return;
    }
    submit.disabled = true;
    try {
      const body = { url, events: events.length ? events : ['*'] };
      if (description) body.description = description;
      const ep = await api('POST', '/v1/endpoints', body);
      result.dataset.endpointId = ep.id;
      result.hidden = false;
      tid('endpoint-url').value = '';
      tid('endpoint-description').value = '';
      const copy = h('button', { type: 'button', class: 'btn btn-small btn-quiet' }, 'Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(ep.secret);
          copy.textContent = 'Copied';
        } catch {
          copy.textContent = 'Select and copy it';
        }
      });
      fill(result,
        h('p', null, 'Created ', h('span', { class: 'mono' }, ep.id), '. Its signing secret (verify webhook signatures with it):'),
        h('p', null, h('code', { class: 'secret mono wrap' }, ep.secret || ''), ' ', copy),
      );
      banner.hide();
      await this.refresh();
    } catch (err) {
      report(err);
    } finally {
      submit.disabled = false;
    }
  },
};
