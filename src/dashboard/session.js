// Session: sign in, sign out, a lost session. The key is exchanged for the session cookie
// and the input cleared at once; what a session starts and stops is app.js's to say.

import { api } from './api.js';
import { banner, notice, report } from './messages.js';
import { state } from './state.js';
import { fmtDateTime, tid } from './util.js';

const hooks = { start() {}, stop() {} };

/** `start` runs on signing in; `stop` on signing out and on losing the session. */
export function onSession(start, stop) {
  hooks.start = start;
  hooks.stop = stop;
}

export function showSignin(message) {
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

export function signedIn(session) {
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
  hooks.start();
}

function stopEverything() {
  hooks.stop();
  state.endpoints.clear();
  state.endpointsLoadedAt = 0;
}

export function sessionLost() {
  if (!state.session) return;
  state.session = null;
  state.epoch += 1;
  stopEverything();
  banner.hide();
  showSignin('Your session has ended. Sign in again.');
}

export async function signIn(event) {
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

export async function signOut() {
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
