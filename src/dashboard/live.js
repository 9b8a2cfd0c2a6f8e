// The live feed: an EventSource on /v1/events/stream?unnamed=true (frames without an
// `event:` line, so onmessage sees every type), authenticated by the session cookie. The
// browser reconnects by itself with Last-Event-ID; when the server answers an error instead
// (a restart in progress, a bad filter, a lost session) the page shows the server's message
// and reconnects with ?last_event_id=<last seq seen>, with backoff.

import { api, errorFrom } from './api.js';
import { banner } from './messages.js';
import { sessionLost } from './session.js';
import { state } from './state.js';
import { enc, fmtTime, h, matchesAny, parseTypes, prettyJson, tid, timeEl } from './util.js';

const FEED_MAX = 200;
const PREFILL = 25;

export const live = {
  items: [], // newest first: {seq, ev, el}
  seqs: new Set(),
  pending: [],
  flushTimer: null,
  filter: [],
  lastSeq: null,
  gen: 0,
  source: null,
  wake: null,
  retryHint: 2000,
  status: 'idle',
  prefilled: false,

  init() {
    tid('live-filter-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.setFilter(tid('live-filter').value);
    });
    tid('live-filter').addEventListener('change', () => this.setFilter(tid('live-filter').value));
    tid('live-clear').addEventListener('click', () => {
      for (const it of this.items) it.el.remove();
      this.items = [];
      this.seqs.clear();
      this.render();
    });
    tid('live-feed').addEventListener('click', (e) => this.onClick(e));
    // The highlight of a new event plays once (not again each time the view is shown).
    tid('live-feed').addEventListener('animationend', (e) => e.target.classList.remove('fresh'));
    window.addEventListener('online', () => this.kick());
  },

  reset() {
    for (const it of this.items) it.el.remove();
    this.items = [];
    this.seqs.clear();
    this.pending = [];
    this.lastSeq = null;
    this.prefilled = false;
    this.render();
  },

  setFilter(text) {
    const next = parseTypes(text);
    if (next.join(',') === this.filter.join(',')) return;
    this.filter = next;
    tid('live-filter').value = next.join(', ');
    this.applyFilter();
    banner.clear('stream');
    if (state.session) this.restart();
  },

  start() {
    this.stop();
    const gen = ++this.gen;
    this.run(gen);
  },

  restart() {
    this.start();
  },

  stop() {
    this.gen += 1;
    if (this.wake) this.wake();
    this.setStatus('idle');
  },

  /** Reconnect now instead of waiting for the backoff (the network came back). */
  kick() {
    if (this.wake) this.wake();
  },

  /** Shows the stream's state; `note` is a short addition, `why` the full reason (a tooltip). */
  setStatus(status, note, why) {
    this.status = status;
    const labels = { idle: 'stopped', connecting: 'connecting', live: 'live', reconnecting: 'reconnecting', error: 'error' };
    const label = labels[status] || status;
    const badgeEl = tid('live-state');
    badgeEl.textContent = note ? `${label} · ${note}` : label;
    badgeEl.dataset.state = status;
    badgeEl.title = why || '';
    const ind = tid('conn-indicator');
    ind.dataset.state = status;
    ind.querySelector('.conn-text').textContent = `stream: ${label}`;
    ind.title = why || '';
  },

  async prefill(gen) {
    // The most recent events, so the feed is not empty on arrival; the stream then
    // resumes right after the newest of them (no gap between the two).
    const page = await api('GET', `/v1/events?limit=${PREFILL}`);
    if (gen !== this.gen) return;
    const events = (page && page.data) || [];
    let max = 0;
    for (const ev of events) {
      if (typeof ev.seq === 'number') {
        max = Math.max(max, ev.seq);
        this.enqueue(ev.seq, ev, false);
      }
    }
    this.lastSeq = Math.max(this.lastSeq || 0, max);
    this.prefilled = true;
  },

  async run(gen) {
    let failures = 0;
    let first = true;
    while (gen === this.gen) {
      this.setStatus(first ? 'connecting' : 'reconnecting');
      let lastError = null;
      try {
        if (!this.prefilled) await this.prefill(gen);
        if (gen !== this.gen) return;
        const outcome = await this.listen(gen);
        if (outcome === 'stop') return;
        if (outcome === 'served') failures = 0;
      } catch (e) {
        if (gen !== this.gen) return;
        if (e && e.silent) return;
        lastError = e;
      }
      if (gen !== this.gen) return;
      first = false;
      failures += 1;
      let delay = Math.min(30000, this.retryHint * 2 ** Math.max(0, failures - 1));
      if (lastError && lastError.status === 429 && lastError.retryAfter) delay = Math.max(delay, lastError.retryAfter * 1000);
      delay = Math.round(delay * (0.8 + Math.random() * 0.4));
      const why = lastError ? lastError.message : 'connection closed';
      this.setStatus('reconnecting', `next try in ${Math.max(1, Math.round(delay / 1000))} s`, why);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  },

  streamUrl() {
    // unnamed=true: frames carry no `event:` line, so onmessage receives every type (the
    // type is in the data). The session cookie authenticates the stream.
    const params = new URLSearchParams({ unnamed: 'true' });
    if (this.filter.length) params.set('types', this.filter.join(','));
    if (this.lastSeq !== null) params.set('last_event_id', String(this.lastSeq));
    return `/v1/events/stream?${params}`;
  },

  /**
   * Follows the stream with an EventSource until it gives up. While the server is merely
   * unreachable the browser reconnects by itself, sending Last-Event-ID; an EventSource
   * that receives an HTTP error closes for good, and then the answer is fetched once to
   * show its message. Resolves 'served' (it was open a while), 'closed' or 'stop'.
   */
  listen(gen) {
    return new Promise((resolve, reject) => {
      const url = this.streamUrl();
      const es = new EventSource(url, { withCredentials: true });
      let openedAt = 0;
      this.source = es;
      const finish = (value, error) => {
        es.close();
        if (this.source === es) this.source = null;
        this.wake = null;
        if (error) reject(error);
        else resolve(value);
      };
      // stop() and kick() reach a connection that is up through wake().
      this.wake = () => finish(gen === this.gen ? 'closed' : 'stop');
      es.onopen = () => {
        if (gen !== this.gen) return finish('stop');
        openedAt = Date.now();
        this.setStatus('live');
        banner.clear('stream');
      };
      es.onmessage = (m) => {
        if (gen !== this.gen) return finish('stop');
        this.onFrame(m.lastEventId || null, '', m.data);
      };
      es.onerror = async () => {
        if (gen !== this.gen) return finish('stop');
        if (es.readyState === EventSource.CONNECTING) {
          this.setStatus('reconnecting', 'the browser retries', 'connection lost');
          return;
        }
        const served = openedAt && Date.now() - openedAt > 5000;
        es.close();
        try {
          const why = await this.explain(url);
          if (gen !== this.gen) return finish('stop');
          if (why === 'stop') return finish('stop');
          finish(served ? 'served' : 'closed', why || undefined);
        } catch (e) {
          finish('closed', e);
        }
      };
    });
  },

  /** Why the stream was refused: a request of its own, read for its status and message. */
  async explain(url) {
    const ctrl = new AbortController();
    let res;
    try {
      res = await fetch(url, { credentials: 'same-origin', cache: 'no-store', signal: ctrl.signal });
    } catch (e) {
      return e; // the server is down: back off and try again
    }
    if (res.ok) {
      ctrl.abort();
      return null;
    }
    const err = await errorFrom(res);
    if (res.status === 401) {
      sessionLost();
      return 'stop';
    }
    if (res.status === 400 || res.status === 403) {
      // A filter the server refuses: retrying will not help.
      this.setStatus('error', 'see the message above', err.message);
      banner.show(`Live feed: ${err.message}`, 'stream');
      return 'stop';
    }
    return err;
  },

  onFrame(id, type, text) {
    let ev;
    try {
      ev = JSON.parse(text);
    } catch {
      ev = { type, data: text };
    }
    if (!ev || typeof ev !== 'object') ev = { type, data: ev };
    if (!ev.type) ev.type = type;
    const seq = id !== null && /^\d+$/.test(id) ? Number(id) : typeof ev.seq === 'number' ? ev.seq : null;
    if (seq === null) return;
    ev.seq = seq;
    if (this.lastSeq === null || seq > this.lastSeq) this.lastSeq = seq;
    this.enqueue(seq, ev, true);
  },

  enqueue(seq, ev, fresh) {
    if (this.seqs.has(seq)) return; // at-least-once: the last event may come again
    this.pending.push({ seq, ev, fresh });
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 16);
  },

  flush() {
    this.flushTimer = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    batch.sort((a, b) => b.seq - a.seq);
    const list = tid('live-feed');
    for (const item of batch.slice(0, FEED_MAX)) {
      if (this.seqs.has(item.seq)) continue;
      if (this.items.length >= FEED_MAX && item.seq < this.items[this.items.length - 1].seq) continue;
      item.el = this.renderItem(item);
      // Insert in seq order (newest first); live events almost always go to the top.
      let i = 0;
      while (i < this.items.length && this.items[i].seq > item.seq) i += 1;
      const before = this.items[i];
      list.insertBefore(item.el, before ? before.el : null);
      this.items.splice(i, 0, item);
      this.seqs.add(item.seq);
      while (this.items.length > FEED_MAX) {
        const gone = this.items.pop();
        gone.el.remove();
        this.seqs.delete(gone.seq);
      }
    }
    this.render();
  },

  renderItem(item) {
    const ev = item.ev;
    const hidden = !matchesAny(this.filter, ev.type || '');
    const toggle = h('button', { type: 'button', class: 'btn-link', 'data-testid': 'feed-toggle', 'aria-expanded': 'false' }, 'data');
    return h(
      'li',
      {
        class: `feed-item${item.fresh ? ' fresh' : ''}`,
        'data-testid': 'feed-item',
        'data-event-id': ev.id || '',
        'data-seq': item.seq,
        'data-type': ev.type || '',
        hidden,
      },
      h(
        'div',
        { class: 'feed-row' },
        timeEl(ev.created_at, fmtTime),
        h('a', { class: 'feed-type', href: ev.id ? `#/events/${enc(ev.id)}` : null, 'data-testid': 'feed-open', title: 'Show deliveries' }, ev.type || '(no type)'),
        h('span', { class: 'feed-id mono' }, ev.id || ''),
        h('span', { class: 'feed-seq muted' }, `#${item.seq}`),
        toggle,
      ),
    );
  },

  onClick(e) {
    const li = e.target.closest('[data-testid="feed-item"]');
    if (!li) return;
    const toggle = e.target.closest('[data-testid="feed-toggle"]');
    if (toggle) {
      let pre = li.querySelector('pre');
      if (!pre) {
        const item = this.items.find((it) => it.el === li);
        pre = h('pre', { class: 'json', 'data-testid': 'feed-data', hidden: true }, prettyJson(item ? item.ev.data : null));
        if (item && item.ev.correlation_id) pre.prepend(`correlation_id: ${item.ev.correlation_id}\n`);
        li.append(pre);
      }
      pre.hidden = !pre.hidden;
      toggle.setAttribute('aria-expanded', String(!pre.hidden));
      return;
    }
    if (e.target.closest('pre, a')) return;
    const id = li.dataset.eventId;
    if (id) location.hash = `#/events/${enc(id)}`;
  },

  applyFilter() {
    for (const it of this.items) it.el.hidden = !matchesAny(this.filter, it.ev.type || '');
    this.render();
  },

  render() {
    const shown = this.items.filter((it) => !it.el.hidden).length;
    tid('live-empty').hidden = shown > 0;
    tid('live-feed').hidden = shown === 0;
    tid('live-empty').textContent = this.items.length
      ? 'No event here matches the filter yet. Matching events appear as they happen.'
      : 'No events yet. Published events appear here as they happen.';
    const parts = [`${shown} event${shown === 1 ? '' : 's'} shown`];
    if (this.items.length !== shown) parts.push(`${this.items.length} kept`);
    parts.push(this.filter.length ? `types: ${this.filter.join(', ')}` : 'all types');
    if (this.lastSeq) parts.push(`last seq ${this.lastSeq}`);
    parts.push(`newest first, last ${FEED_MAX} kept`);
    tid('live-summary').textContent = parts.join(' · ');
  },
};

export const liveView = {
  name: 'live',
  tab: 'live',
  title: 'Live',
  enter() {
    live.render();
  },
};
