// Messages: the error banner (role=alert) and a short-lived notice (role=status).

import { state } from './state.js';
import { tid } from './util.js';

export const banner = {
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

export const notice = {
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
export function report(err, source) {
  if (!err || err.silent) return;
  if (err.status === 401 && !state.session) return;
  banner.show(err.message || String(err), source);
}
