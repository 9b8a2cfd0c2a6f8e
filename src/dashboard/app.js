// herald dashboard: plain JavaScript, no dependencies, nothing fetched from elsewhere.
//
// Authentication is the HttpOnly session cookie set by POST /v1/sessions; this script never
// stores the API key (the input is cleared as soon as it has been sent). Every API call goes
// through api(), which shows error messages and returns to the sign-in form on a 401.
//
// The live feed is an EventSource on /v1/events/stream?unnamed=true (frames without an
// `event:` line, so onmessage sees every type), authenticated by the session cookie. The
// browser reconnects by itself with Last-Event-ID; when the server answers an error instead
// (a restart in progress, a bad filter, a lost session) the page shows the server's message
// and reconnects with ?last_event_id=<last seq seen>, with backoff.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------
  // Small helpers

  const tid = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);
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
  function fill(el, ...children) {
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
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  /** Builds an SVG element. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    }
    return append(el, children);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const pad = (n) => String(n).padStart(2, '0');

  function toDate(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function fmtTime(iso) {
    const d = toDate(iso);
    return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : '—';
  }

  function fmtDateTime(iso) {
    const d = toDate(iso);
    if (!d) return '—';
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    return sameDay ? fmtTime(iso) : `${date} ${fmtTime(iso)}`;
  }

  function fmtRelative(iso) {
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

  function fmtMs(ms) {
    if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '—';
    const n = Number(ms);
    if (n < 1000) return `${Math.round(n * 10) / 10} ms`;
    return `${Math.round(n / 100) / 10} s`;
  }

  function fmtPct(rate) {
    if (rate === null || rate === undefined) return '—';
    const p = rate * 100;
    return `${p >= 99.95 || p === 0 ? Math.round(p) : p.toFixed(1)} %`;
  }

  function timeEl(iso, fmt = fmtDateTime) {
    return h('time', { datetime: iso || null, title: iso || null }, fmt(iso));
  }

  function badge(text, kind, testid) {
    return h('span', { class: `badge badge-${kind || 'neutral'}`, 'data-testid': testid || null, 'data-value': text }, text);
  }

  function statusKind(status) {
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

  function prettyJson(value) {
    try {
      return JSON.stringify(value, null, 2);
    } catch {
      return String(value);
    }
  }

  /** Parses "a, b.*, c" into ["a","b.*","c"]. */
  function parseTypes(text) {
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

  const matchesAny = (filters, type) => filters.length === 0 || filters.some((f) => typeMatches(f, type));

  const enc = encodeURIComponent;

  // ---------------------------------------------------------------------------------
  // Messages: the error banner (role=alert) and a short-lived notice (role=status)

  const banner = {
    el: null,
    text: null,
    source: null,
    init() {
      this.el = tid('error-banner');
      this.text = tid('error-message');
      this.el.querySelector('.banner-close').addEventListener('click', () => this.hide());
    },
    /** Shows a message; `source` lets a later success of the same source clear it. */
    show(message, source = null) {
      this.text.textContent = message;
      this.source = source;
      this.el.hidden = false;
    },
    clear(source) {
      if (!this.el.hidden && source && this.source === source) this.hide();
    },
    hide() {
      this.el.hidden = true;
      this.text.textContent = '';
      this.source = null;
    },
  };

  const notice = {
    timer: null,
    show(message, ms = 4000) {
      const el = tid('notice');
      el.textContent = message;
      el.hidden = false;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        el.hidden = true;
      }, ms);
    },
  };

  /** Reports an error from a background task (polling) or a user action. */
  function report(err, source) {
    if (!err || err.silent) return;
    if (err.status === 401 && !state.session) return;
    banner.show(err.message || String(err), source);
  }

  // ---------------------------------------------------------------------------------
  // The API

  class ApiError extends Error {
    constructor(status, code, message, issues, retryAfter) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
      this.issues = issues || [];
      this.retryAfter = retryAfter;
    }
  }

  /** Builds an ApiError from an error answer: `{code, message, issues}` (or `{error: {...}}`). */
  async function errorFrom(res) {
    let body = null;
    try {
      const text = await res.text();
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    const err = body && typeof body.error === 'object' && body.error !== null ? body.error : body;
    let message = (err && typeof err.message === 'string' && err.message) || `HTTP ${res.status} ${res.statusText || ''}`.trim();
    const issues = err && Array.isArray(err.issues) ? err.issues : [];
    if (issues.length) {
      const details = issues
        .slice(0, 5)
        .map((i) => {
          const path = Array.isArray(i.path) && i.path.length ? `${i.path.join('.')}: ` : '';
          return `${path}${i.message}`;
        })
        .join('; ');
      message = `${message} (${details})`;
    }
    const retry = Number(res.headers.get('retry-after'));
    return new ApiError(res.status, err && err.code, message, issues, Number.isFinite(retry) && retry > 0 ? retry : null);
  }

  /**
   * Calls the API with the session cookie. Resolves with the JSON body (null for 204);
   * rejects with an ApiError whose message is the server's. A 401 (except while signing in)
   * ends the session in the page.
   */
  async function api(method, path, body, opts = {}) {
    const headers = { Accept: 'application/json' };
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers };
    if (method !== 'GET' && method !== 'HEAD') {
      headers['Content-Type'] = 'application/json';
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    const epoch = state.epoch;
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'NETWORK', `Cannot reach herald (${e && e.message ? e.message : 'network error'}). Is the server running?`);
    }
    if (!res.ok) {
      const err = await errorFrom(res);
      if (res.status === 401 && !opts.signin) {
        if (epoch === state.epoch) sessionLost();
        err.silent = true;
      }
      throw err;
    }
    if (res.status === 204) return null;
    const text = await res.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(res.status, 'BAD_RESPONSE', `Unexpected answer from ${path} (not JSON)`);
    }
  }

  // ---------------------------------------------------------------------------------
  // State shared by the views

  const state = {
    session: null, // {org_id, expires_at}
    epoch: 0, // bumped on every sign-in and sign-out; stale async work checks it
    view: null, // the active view object
    endpoints: new Map(), // id -> endpoint as last seen (with counts when known)
    endpointsLoadedAt: 0,
  };

  async function loadEndpointCache(maxAgeMs = 30000) {
    if (Date.now() - state.endpointsLoadedAt < maxAgeMs) return;
    const page = await api('GET', '/v1/endpoints?limit=250');
    for (const ep of page.data || []) {
      const prev = state.endpoints.get(ep.id);
      state.endpoints.set(ep.id, prev && prev.counts && !ep.counts ? { ...ep, counts: prev.counts } : ep);
    }
    state.endpointsLoadedAt = Date.now();
  }

  function endpointLabel(id) {
    const ep = state.endpoints.get(id);
    return h(
      'span',
      { class: 'ep-label' },
      ep ? h('span', { class: 'mono wrap' }, ep.url) : null,
      ' ',
      h('span', { class: 'mono muted small' }, id),
    );
  }

  /** Runs `fn` every `ms` while started; waits for each run to finish; skips while the tab is hidden. */
  class Poller {
    constructor(fn, ms, source) {
      this.fn = fn;
      this.ms = ms;
      this.source = source;
      this.timer = null;
      this.active = false;
      this.running = false;
    }
    start(immediately = true) {
      this.stop();
      this.active = true;
      if (immediately) this.tick();
      else this.schedule(this.ms);
    }
    stop() {
      this.active = false;
      clearTimeout(this.timer);
      this.timer = null;
    }
    schedule(ms) {
      clearTimeout(this.timer);
      if (this.active) this.timer = setTimeout(() => this.tick(), ms);
    }
    /** Runs now (used when the tab becomes visible again). */
    async tick() {
      if (!this.active || this.running) return;
      if (document.hidden) {
        this.schedule(this.ms);
        return;
      }
      this.running = true;
      let delay = null;
      try {
        await this.fn();
        banner.clear(this.source);
      } catch (e) {
        report(e, this.source);
        if (e && e.status === 429) delay = (e.retryAfter || 5) * 1000;
        else if (e && e.status === 0) delay = 3000;
      } finally {
        this.running = false;
      }
      // Read after the run: it may have changed how often it wants to run.
      this.schedule(Math.max(delay || 0, this.ms));
    }
  }

  // ---------------------------------------------------------------------------------
  // Session: sign in, sign out, a lost session

  function showSignin(message) {
    for (const el of document.querySelectorAll('[data-view]')) el.hidden = el.dataset.view !== 'signin';
    tid('tabs').hidden = true;
    tid('signout').hidden = true;
    tid('who').hidden = true;
    tid('conn-indicator').hidden = true;
    const err = tid('signin-error');
    err.textContent = message || '';
    err.hidden = !message;
    document.title = 'Sign in · herald';
    const input = tid('signin-key');
    setTimeout(() => input.focus(), 0);
  }

  function signedIn(session) {
    state.session = session;
    state.epoch += 1;
    state.endpoints.clear();
    state.endpointsLoadedAt = 0;
    tid('signin-error').hidden = true;
    tid('tabs').hidden = false;
    tid('signout').hidden = false;
    const who = tid('who');
    who.hidden = false;
    who.textContent = session.org_id || '';
    who.title = session.expires_at ? `Session valid until ${fmtDateTime(session.expires_at)}` : '';
    tid('conn-indicator').hidden = false;
    live.start();
    route();
  }

  function stopEverything() {
    if (state.view && state.view.leave) state.view.leave();
    state.view = null;
    live.stop();
    live.reset();
    views.endpoints.reset();
    state.endpoints.clear();
    state.endpointsLoadedAt = 0;
  }

  function sessionLost() {
    if (!state.session) return;
    state.session = null;
    state.epoch += 1;
    stopEverything();
    banner.hide();
    showSignin('Your session has ended. Sign in again.');
  }

  async function signIn(event) {
    event.preventDefault();
    const input = tid('signin-key');
    const submit = tid('signin-submit');
    const key = input.value.trim();
    const errEl = tid('signin-error');
    if (!key) {
      errEl.textContent = 'Enter an API key.';
      errEl.hidden = false;
      return;
    }
    submit.disabled = true;
    errEl.hidden = true;
    try {
      const session = await api('POST', '/v1/sessions', { key }, { signin: true });
      input.value = '';
      banner.hide();
      signedIn(session || {});
    } catch (e) {
      errEl.textContent = e.message;
      errEl.hidden = false;
      input.select();
    } finally {
      submit.disabled = false;
    }
  }

  async function signOut() {
    const btn = tid('signout');
    btn.disabled = true;
    try {
      await api('DELETE', '/v1/sessions', undefined, { signin: true });
    } catch (e) {
      if (e.status !== 401) {
        report(e);
        btn.disabled = false;
        return;
      }
    }
    btn.disabled = false;
    state.session = null;
    state.epoch += 1;
    stopEverything();
    banner.hide();
    showSignin();
    notice.show('Signed out.');
  }

  // ---------------------------------------------------------------------------------
  // Live feed (Server-Sent Events read with fetch)

  const FEED_MAX = 200;
  const PREFILL = 25;

  const live = {
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

  // ---------------------------------------------------------------------------------
  // Deliveries: a card per delivery with its attempts (shared by several views)

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

  // ---------------------------------------------------------------------------------
  // Views

  const views = {};

  views.live = {
    name: 'live',
    tab: 'live',
    title: 'Live',
    enter() {
      live.render();
    },
  };

  // Endpoints -----------------------------------------------------------------------

  views.endpoints = {
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

  // An endpoint's delivery log ----------------------------------------------------------

  views.endpointLog = {
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

  // One event and its deliveries ------------------------------------------------------------

  views.event = {
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

  // One delivery ----------------------------------------------------------------------------

  views.delivery = {
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

  // Dead letters ------------------------------------------------------------------------------

  views.dead = {
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

  // Sources ----------------------------------------------------------------------------------

  views.sources = {
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

  views.source = {
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

  // Charts -----------------------------------------------------------------------------------

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

  views.charts = {
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

  views.notfound = { name: 'notfound', tab: null, title: 'Not found' };

  // ---------------------------------------------------------------------------------
  // Routing (#/live, #/endpoints, #/endpoints/{id}/deliveries, #/events/{id},
  // #/deliveries/{id}, #/dead-letters?endpoint_id=, #/sources, #/sources/{id}, #/charts)

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [path, query] = raw.split('?');
    let parts;
    try {
      parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      parts = ['?'];
    }
    return { parts, params: new URLSearchParams(query || '') };
  }

  function resolve({ parts, params }) {
    const [a, b, c] = parts;
    if (!a || (a === 'live' && !b)) return [views.live, {}];
    if (a === 'endpoints' && !b) return [views.endpoints, {}];
    if (a === 'endpoints' && b && c === 'deliveries') return [views.endpointLog, { id: b, params }];
    if (a === 'events' && b && !c) return [views.event, { id: b }];
    if (a === 'deliveries' && b && !c) return [views.delivery, { id: b }];
    if (a === 'dead-letters' && !b) return [views.dead, { params }];
    if (a === 'sources' && !b) return [views.sources, {}];
    if (a === 'sources' && b && !c) return [views.source, { id: b }];
    if (a === 'charts' && !b) return [views.charts, {}];
    return [views.notfound, {}];
  }

  function route() {
    if (!state.session) return;
    const [view, args] = resolve(parseHash());
    if (state.view && state.view.leave) state.view.leave();
    state.view = view;
    for (const el of document.querySelectorAll('[data-view]')) el.hidden = el.dataset.view !== view.name;
    for (const a of document.querySelectorAll('[data-tab]')) {
      if (a.dataset.tab === view.tab) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = `${view.title} · herald`;
    if (view.enter) {
      Promise.resolve(view.enter(args || {})).catch((e) => report(e, view.name));
    }
  }

  // ---------------------------------------------------------------------------------
  // Start

  async function boot() {
    banner.init();
    live.init();
    for (const v of Object.values(views)) if (v.init) v.init();
    tid('signin-form').addEventListener('submit', signIn);
    tid('signout').addEventListener('click', signOut);
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && state.view && state.view.poller && state.view.poller.active) state.view.poller.tick();
    });
    // The endpoint cards say "in 42 s": keep that current between refreshes.
    setInterval(() => {
      if (state.view === views.endpoints) {
        for (const [id, card] of views.endpoints.cards) {
          const ep = state.endpoints.get(id);
          if (ep) views.endpoints.update(card, ep);
        }
      }
    }, 1000);
    for (;;) {
      try {
        const session = await api('GET', '/v1/sessions', undefined, { signin: true });
        banner.clear('boot');
        signedIn(session || {});
        return;
      } catch (e) {
        if (e.status === 401) {
          banner.clear('boot');
          showSignin();
          return;
        }
        // herald is unreachable or failing: say so, keep trying.
        banner.show(`${e.message} Retrying…`, 'boot');
        await sleep(3000);
      }
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
