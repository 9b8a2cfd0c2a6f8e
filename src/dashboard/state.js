// State shared by the views.

export const state = {
  session: null, // {org_id, expires_at}
  epoch: 0, // bumped on every sign-in and sign-out; stale async work checks it
  view: null, // the active view object
  endpoints: new Map(), // id -> endpoint as last seen (with counts when known)
  endpointsLoadedAt: 0,
};
