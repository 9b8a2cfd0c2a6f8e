// The endpoints as last seen (state.endpoints), for the views that name them.

import { api } from './api.js';
import { state } from './state.js';
import { h } from './util.js';

export async function loadEndpointCache(maxAgeMs = 30000) {
  if (Date.now() - state.endpointsLoadedAt < maxAgeMs) return;
  const page = await api('GET', '/v1/endpoints?limit=250');
  for (const ep of page.data || []) {
    const prev = state.endpoints.get(ep.id);
    state.endpoints.set(ep.id, prev && prev.counts && !ep.counts ? { ...ep, counts: prev.counts } : ep);
  }
  state.endpointsLoadedAt = Date.now();
}

export function endpointLabel(id) {
  const ep = state.endpoints.get(id);
  return h(
    'span',
    { class: 'ep-label' },
    ep ? h('span', { class: 'mono wrap' }, ep.url) : null,
    ' ',
    h('span', { class: 'mono muted small' }, id),
  );
}
