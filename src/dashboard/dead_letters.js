// Dead letters, by endpoint: replay the selected ones or all of an endpoint's.

import { api } from './api.js';
import { endpointLabel, loadEndpointCache } from './endpoint_cache.js';
import { banner, report } from './messages.js';
import { state } from './state.js';
import { enc, fill, fmtDateTime, h, sleep, tid, timeEl } from './util.js';

export const deadLettersView = {
  name: 'dead-letters',
  tab: 'dead-letters',
  title: 'Dead letters',
  selected: new Set(),
  rows: new Map(),
  cursor: null,
  endpointId: '',
  init() {
    tid('dead-endpoint').addEventListener('change', (e) => {
      const v = e.target.value;
      location.hash = v ? `#/dead-letters?endpoint_id=${enc(v)}` : '#/dead-letters';
    });
    tid('dead-refresh').addEventListener('click', () => this.load(false).catch((e) => report(e, 'dead')));
    tid('dead-more').addEventListener('click', () => this.load(true).catch((e) => report(e, 'dead')));
    tid('dead-select-all').addEventListener('change', (e) => {
      for (const [id, row] of this.rows) {
        row.box.checked = e.target.checked;
        if (e.target.checked) this.selected.add(id);
        else this.selected.delete(id);
      }
      this.sync();
    });
    tid('dead-replay-selected').addEventListener('click', () => this.replay({ ids: [...this.selected] }));
    tid('dead-replay-endpoint').addEventListener('click', () => {
      const ep = state.endpoints.get(this.endpointId);
      const label = ep ? ep.url : this.endpointId;
      if (window.confirm(`Replay every dead letter of ${label}?`)) this.replay({ endpoint_id: this.endpointId });
    });
  },
  async enter(args) {
    this.endpointId = args.params.get('endpoint_id') || '';
    this.selected.clear();
    this.rows.clear();
    tid('dead-result').textContent = '';
    fill(tid('view-dead-letters').querySelector('tbody'));
    tid('dead-empty').hidden = true;
    this.sync();
    try {
      await loadEndpointCache(5000);
      this.fillEndpoints();
    } catch (e) {
      report(e, 'dead');
    }
    await this.load(false).catch((e) => report(e, 'dead'));
  },
  fillEndpoints() {
    const select = tid('dead-endpoint');
    const options = [h('option', { value: '' }, 'all endpoints')];
    for (const ep of state.endpoints.values()) options.push(h('option', { value: ep.id }, `${ep.url} (${ep.id})`));
    if (this.endpointId && !state.endpoints.has(this.endpointId)) options.push(h('option', { value: this.endpointId }, this.endpointId));
    fill(select, ...options);
    select.value = this.endpointId;
  },
  async load(more) {
    const params = new URLSearchParams({ limit: '100' });
    if (this.endpointId) params.set('endpoint_id', this.endpointId);
    if (more && this.cursor) params.set('cursor', this.cursor);
    const page = await api('GET', `/v1/dead-letters?${params}`);
    if (state.view !== this) return;
    banner.clear('dead');
    const body = tid('view-dead-letters').querySelector('tbody');
    if (!more) {
      fill(body);
      this.rows.clear();
    }
    for (const d of page.data || []) {
      const box = h('input', { type: 'checkbox', 'data-testid': 'dead-select', 'aria-label': `Select ${d.id}`, checked: this.selected.has(d.id) });
      box.addEventListener('change', () => {
        if (box.checked) this.selected.add(d.id);
        else this.selected.delete(d.id);
        this.sync();
      });
      const tr = h(
        'tr',
        { 'data-testid': 'dead-row', 'data-delivery-id': d.id },
        h('td', { class: 'check' }, box),
        h(
          'td',
          { 'data-label': 'Event' },
          d.event ? h('a', { href: `#/events/${enc(d.event.id)}` }, d.event.type) : '—',
          h('div', { class: 'mono muted small' }, h('a', { href: `#/deliveries/${enc(d.id)}` }, d.id)),
        ),
        h('td', { 'data-label': 'Endpoint' }, endpointLabel(d.endpoint_id)),
        h('td', { 'data-label': 'Attempts' }, String(d.attempt_count ?? 0)),
        h('td', { 'data-label': 'Last error', class: 'error-text' }, d.last_error || (d.last_status_code ? `HTTP ${d.last_status_code}` : '—')),
        h('td', { 'data-label': 'Last attempt' }, timeEl(d.last_attempt_at), d.first_attempt_at ? h('div', { class: 'muted small' }, `first ${fmtDateTime(d.first_attempt_at)}`) : null),
      );
      this.rows.set(d.id, { tr, box });
      body.append(tr);
    }
    for (const id of [...this.selected]) if (!this.rows.has(id)) this.selected.delete(id);
    this.cursor = page.next_cursor || null;
    tid('dead-more').hidden = !this.cursor;
    tid('dead-empty').hidden = this.rows.size > 0;
    this.sync();
  },
  sync() {
    const n = this.selected.size;
    const btn = tid('dead-replay-selected');
    btn.disabled = n === 0;
    btn.textContent = n ? `Replay selected (${n})` : 'Replay selected';
    const all = tid('dead-select-all');
    all.checked = n > 0 && n === this.rows.size;
    all.indeterminate = n > 0 && n < this.rows.size;
    const epBtn = tid('dead-replay-endpoint');
    epBtn.disabled = !this.endpointId || this.rows.size === 0;
    epBtn.title = this.endpointId ? '' : 'Choose an endpoint first';
  },
  async replay(body) {
    const result = tid('dead-result');
    result.textContent = 'Replaying…';
    result.dataset.state = 'pending';
    try {
      const r = await api('POST', '/v1/dead-letters/replay', body);
      const n = r && typeof r.replayed === 'number' ? r.replayed : 0;
      result.textContent = `Replayed ${n} dead letter${n === 1 ? '' : 's'}: queued for delivery now.`;
      result.dataset.state = 'done';
      result.dataset.replayed = String(n);
      if (body.ids) {
        for (const id of body.ids) {
          const row = this.rows.get(id);
          if (row) row.tr.remove();
          this.rows.delete(id);
        }
      }
      this.selected.clear();
      this.sync();
      tid('dead-empty').hidden = this.rows.size > 0;
      await sleep(500);
      if (state.view === this) await this.load(false);
    } catch (e) {
      result.textContent = '';
      report(e);
    }
  },
};
