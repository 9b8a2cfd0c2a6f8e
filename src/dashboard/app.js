// herald dashboard: plain JavaScript modules, no dependencies, nothing fetched from elsewhere.
// This entry wires the views to the page: the routing between them, the session's start and
// end, and the start of it all. Each view is an object with a name, a tab and a title, and
// optionally init() (once), enter(args) and leave().

import { api, onUnauthorized } from './api.js';
import { chartsView } from './charts.js';
import { deadLettersView } from './dead_letters.js';
import { endpointLogView } from './endpoint_log.js';
import { endpointsView } from './endpoints.js';
import { deliveryView, eventView } from './events.js';
import { live, liveView } from './live.js';
import { banner, report } from './messages.js';
import { onSession, sessionLost, showSignin, signIn, signOut, signedIn } from './session.js';
import { sourcesView, sourceView } from './sources.js';
import { state } from './state.js';
import { sleep, tid } from './util.js';

const views = {
  live: liveView,
  endpoints: endpointsView,
  endpointLog: endpointLogView,
  event: eventView,
  delivery: deliveryView,
  dead: deadLettersView,
  sources: sourcesView,
  source: sourceView,
  charts: chartsView,
  notfound: { name: 'notfound', tab: null, title: 'Not found' },
};

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

// The session: what signing in starts, and what signing out or losing it stops.

onSession(
  () => {
    live.start();
    route();
  },
  () => {
    if (state.view && state.view.leave) state.view.leave();
    state.view = null;
    live.stop();
    live.reset();
    endpointsView.reset();
  },
);
onUnauthorized(sessionLost);

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
