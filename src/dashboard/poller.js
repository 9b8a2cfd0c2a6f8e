// Polling for the views: a task run every so often, its errors in the banner.

import { banner, report } from './messages.js';

/** Runs `fn` every `ms` while started; waits for each run to finish; skips while the tab is hidden. */
export class Poller {
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
