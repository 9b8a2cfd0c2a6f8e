// End-to-end test of the dashboard in headless Chromium, against a running herald.
//
//   node tests/browser/dashboard.mjs
//
// Environment (set by the Rust integration test that starts herald and its receivers):
//   HERALD_URL           base URL of herald, e.g. http://127.0.0.1:41234
//   HERALD_KEY           an API key of the organisation
//   CIRCUIT_ENDPOINT_ID  an endpoint whose receiver answers 500 and whose circuit is open
//   DEAD_ENDPOINT_ID     an endpoint with one dead letter, whose receiver now answers 200
//   DEAD_DELIVERY_ID     that dead letter (a delivery id)
//   SHOT_DIR             where screenshots go (created if missing)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//   DASHBOARD_TIMEOUT_MS overall limit (default 60000)
//
// herald must accept http://127.0.0.1 endpoint URLs (the test configuration does): the
// script runs its own receiver for the endpoints it creates. Prints one `ok - …` line per
// step; exits 1 with `not ok - …` on the first failure (and saves failure.png).

import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

// ---------------------------------------------------------------------------------------
// Settings

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`not ok - setup: the environment variable ${name} is not set`);
    process.exit(1);
  }
  return v;
}

const BASE = required('HERALD_URL').replace(/\/+$/, '');
const KEY = required('HERALD_KEY');
const CIRCUIT_ENDPOINT_ID = required('CIRCUIT_ENDPOINT_ID');
const DEAD_ENDPOINT_ID = required('DEAD_ENDPOINT_ID');
const FIFO_ENDPOINT_ID = required('FIFO_ENDPOINT_ID');
const DEAD_DELIVERY_ID = required('DEAD_DELIVERY_ID');
const SHOT_DIR = required('SHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.DASHBOARD_TIMEOUT_MS || 60000);
const FEED_LIMIT_MS = 1000;

const T = (id) => `[data-testid="${id}"]`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();

// ---------------------------------------------------------------------------------------
// Harness: steps, failures, clean-up

let currentStep = 'setup';
let browser = null;
let page = null;
let receiver = null;
const cleanups = [];
const pageProblems = [];

class StepError extends Error {}

function fail(message) {
  throw new StepError(message);
}

function check(cond, message) {
  if (!cond) fail(message);
}

async function step(name, fn) {
  currentStep = name;
  const t0 = Date.now();
  const detail = await fn();
  const took = Date.now() - t0;
  console.log(`ok - ${name}${detail ? ` (${detail})` : ''} [${took} ms]`);
  checkPageProblems();
}

function checkPageProblems() {
  if (pageProblems.length) fail(`the page reported problems:\n  ${pageProblems.join('\n  ')}`);
}

async function shot(name) {
  if (!page) return;
  const file = path.join(SHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

/** Waits until `fn` returns a truthy value (polled), or fails with `message`. */
async function until(fn, { timeout = 10000, interval = 100, message }) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      fail(`${message} (waited ${timeout} ms${why})`);
    }
    await sleep(interval);
  }
}

/** Waits for a locator to be visible (or another state), failing with a plain description. */
async function see(locator, what, { timeout = 10000, state = 'visible' } = {}) {
  try {
    await locator.first().waitFor({ state, timeout });
  } catch (e) {
    if (e instanceof StepError) throw e;
    const banner = page.locator(T('error-message'));
    const shown = (await banner.isVisible().catch(() => false)) ? `; the page shows the error "${(await banner.innerText()).trim()}"` : '';
    fail(`${what}: not ${state} after ${timeout} ms${shown}`);
  }
}

/** Fails when the error banner is showing, with its text. */
async function assertNoBanner(where) {
  const el = page.locator(T('error-banner'));
  if (await el.isVisible()) {
    fail(`${where}: the page shows an error: ${(await el.innerText()).trim()}`);
  }
}

// ---------------------------------------------------------------------------------------
// herald's API from node (with the key), and a webhook receiver

async function api(method, p, body, { expect } = {}) {
  const headers = { Authorization: `Bearer ${KEY}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  if (expect !== undefined && res.status !== expect) {
    fail(`${method} ${p} answered ${res.status}, expected ${expect}: ${text.slice(0, 300)}`);
  }
  return { status: res.status, body: json, headers: res.headers };
}

async function publish(type, data) {
  const r = await api('POST', '/v1/events', { type, data }, { expect: 202 });
  return r.body;
}

function startReceiver() {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({ path: req.url, id: req.headers['webhook-id'], body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"received":true}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, seen, url: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

/** A request to an hmac-sha256 inbound source, signed as herald expects (or not). */
async function sendInbound(sourceId, secret, { id, type, good }) {
  const body = JSON.stringify({ type, data: { from: 'browser test' } });
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = crypto.createHmac('sha256', good ? secret : 'not-the-secret').update(`${ts}.${body}`).digest('hex');
  const res = await fetch(`${BASE}/v1/inbound/${sourceId}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Webhook-Id': id, 'X-Webhook-Timestamp': ts, 'X-Webhook-Signature': `sha256=${sig}` },
    body,
  });
  return res.status;
}

// ---------------------------------------------------------------------------------------
// The test

async function main() {
  fs.mkdirSync(SHOT_DIR, { recursive: true });
  check(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM} (set CHROMIUM)`);
  const health = await fetch(`${BASE}/healthz`).catch((e) => fail(`herald is not reachable at ${BASE}: ${e.message}`));
  check(health.ok, `${BASE}/healthz answered ${health.status}`);

  receiver = await startReceiver();
  const marker = crypto.randomBytes(4).toString('hex');

  // An endpoint for the events this test publishes, answering 200, so they have attempts.
  const browserEp = await api('POST', '/v1/endpoints', { url: `${receiver.url}/browser`, events: ['browser.*'], description: `browser test ${marker}` }, { expect: 201 });
  const browserEndpointId = browserEp.body.id;
  cleanups.push(() => api('DELETE', `/v1/endpoints/${browserEndpointId}`));

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => pageProblems.push(`uncaught exception: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(text)) pageProblems.push(`console: ${text}`);
  });
  page.on('dialog', (d) => d.accept());

  // 1 ------------------------------------------------------------------------------------
  await step('sign-in with a bad key shows the API error', async () => {
    const expected = await fetch(`${BASE}/v1/sessions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'hk_not_a_real_key' }),
    });
    check(expected.status === 401, `POST /v1/sessions with a bad key answered ${expected.status}, expected 401`);
    const message = (await expected.json()).message;
    check(typeof message === 'string' && message, 'the 401 carries no message');

    await page.goto(`${BASE}/`);
    await page.locator(T('signin')).waitFor({ state: 'visible' });
    await page.fill(T('signin-key'), 'hk_not_a_real_key');
    await page.click(T('signin-submit'));
    const err = page.locator(T('signin-error'));
    await err.waitFor({ state: 'visible' });
    const shown = (await err.innerText()).trim();
    check(shown.includes(message), `the page shows "${shown}", not the API's message "${message}"`);
    check(/invalid api key/i.test(shown), `expected "Invalid API key" in "${shown}"`);
    await shot('signin-error');
    return `shown: "${shown}"`;
  });

  // 2 ------------------------------------------------------------------------------------
  await step('sign-in with the key shows the dashboard; key not kept, cookie HttpOnly', async () => {
    await page.fill(T('signin-key'), KEY);
    await page.click(T('signin-submit'));
    await page.locator(T('view-live')).waitFor({ state: 'visible' });
    await page.locator(T('signin')).waitFor({ state: 'hidden' });
    check((await page.inputValue(T('signin-key'))) === '', 'the key input was not cleared');
    const stored = await page.evaluate((key) => {
      const found = [];
      for (const [name, store] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]]) {
        for (let i = 0; i < store.length; i += 1) {
          const k = store.key(i);
          if (k.includes(key) || String(store.getItem(k)).includes(key)) found.push(`${name}[${k}]`);
        }
      }
      if (document.cookie.includes(key)) found.push('document.cookie');
      if (document.cookie.includes('herald_session')) found.push('herald_session readable by script');
      return found;
    }, KEY);
    check(stored.length === 0, `the key or session is reachable from script: ${stored.join(', ')}`);
    const cookies = await page.context().cookies(BASE);
    const session = cookies.find((c) => c.name === 'herald_session');
    check(session, `no herald_session cookie (cookies: ${cookies.map((c) => c.name).join(', ') || 'none'})`);
    check(session.httpOnly === true, 'herald_session is not HttpOnly');
    check(session.sameSite === 'Strict', `herald_session is SameSite=${session.sameSite}, expected Strict`);
    check(!session.value.includes(KEY), 'the cookie carries the API key itself');
    await assertNoBanner('after sign-in');
    return `cookie herald_session httpOnly sameSite=${session.sameSite}`;
  });

  // 3 ------------------------------------------------------------------------------------
  let firstEventId = null;
  await step(`live feed shows a published event within ${FEED_LIMIT_MS} ms; the type filter works`, async () => {
    await see(page.locator(`${T('live-state')}[data-state="live"]`), 'the live feed state "live"');
    const tPublish = Date.now();
    const ev = await publish('browser.test', { n: 1, marker });
    const t202 = Date.now();
    firstEventId = ev.id;
    await see(page.locator(`${T('feed-item')}[data-event-id="${ev.id}"]`), `the published event ${ev.id} in the feed`, { timeout: 5000 });
    const tShown = Date.now();
    const after202 = Math.max(0, tShown - t202);
    check(after202 <= FEED_LIMIT_MS, `the event appeared ${after202} ms after the 202, limit ${FEED_LIMIT_MS} ms`);
    const row = page.locator(`${T('feed-item')}[data-event-id="${ev.id}"]`);
    check((await row.getAttribute('data-type')) === 'browser.test', 'the feed item has the wrong type');
    check((await row.innerText()).includes(ev.id), 'the feed item does not show the event id');
    // Its data expands.
    await row.locator(T('feed-toggle')).click();
    const data = await row.locator(T('feed-data')).innerText();
    check(data.includes(marker), `the expanded data does not show the payload: ${data}`);
    await row.locator(T('feed-toggle')).click();
    const timing = `shown ${after202} ms after the 202, ${tShown - tPublish} ms after publishing`;

    // Filter to other.*: a browser.test event must not show, an other.* event must.
    await page.fill(T('live-filter'), 'other.*');
    await page.press(T('live-filter'), 'Enter');
    await page.locator(`${T('live-state')}[data-state="live"]`).waitFor({ timeout: 10000 });
    check(await row.isHidden(), 'the earlier browser.test event still shows under the filter other.*');
    const hidden = await publish('browser.test', { n: 2, marker });
    const other = await publish('other.thing', { n: 3, marker });
    await see(page.locator(`${T('feed-item')}[data-event-id="${other.id}"]`), `the other.thing event ${other.id} under the filter other.*`, { timeout: 5000 });
    await sleep(300);
    const leaked = await page.locator(`${T('feed-item')}[data-event-id="${hidden.id}"]`).count();
    check(leaked === 0, 'a browser.test event reached the feed while filtering other.*');

    // Clear the filter: everything shows again.
    await page.fill(T('live-filter'), '');
    await page.press(T('live-filter'), 'Enter');
    await page.locator(`${T('live-state')}[data-state="live"]`).waitFor({ timeout: 10000 });
    await row.waitFor({ state: 'visible' });
    await assertNoBanner('live feed');
    await shot('live');
    return timing;
  });

  // 4 ------------------------------------------------------------------------------------
  await step('endpoints: circuit open shown; create, test, disable, enable, delete from the page', async () => {
    await page.click(T('tab-endpoints'));
    await page.locator(T('view-endpoints')).waitFor({ state: 'visible' });
    const circuitRow = page.locator(`${T('endpoint-row')}[data-endpoint-id="${CIRCUIT_ENDPOINT_ID}"]`);
    await see(circuitRow, `the endpoint ${CIRCUIT_ENDPOINT_ID} in the list`, { timeout: 5000 });
    await see(circuitRow.locator(`${T('endpoint-circuit')}[data-state="open"]`), `circuit "open" on ${CIRCUIT_ENDPOINT_ID}`, { timeout: 5000 });
    const circuitText = (await circuitRow.locator(T('endpoint-circuit-detail')).innerText()).trim();
    check(/open/i.test(circuitText) && /until/i.test(circuitText), `the open circuit does not say when it reopens: "${circuitText}"`);
    await see(circuitRow.locator(`${T('endpoint-counts')} [data-count="succeeded"]`), `delivery counts on ${CIRCUIT_ENDPOINT_ID}`, { timeout: 5000 });
    const filterText = (await circuitRow.locator(T('endpoint-filter')).innerText()).trim();
    check(filterText.includes('data.i') && filterText.includes('$gte'), `the endpoint's payload filter is not shown: "${filterText}"`);
    const fifoRow = page.locator(`${T('endpoint-row')}[data-endpoint-id="${FIFO_ENDPOINT_ID}"]`);
    await see(fifoRow.locator(T('endpoint-fifo')), `the FIFO mark on ${FIFO_ENDPOINT_ID}`, { timeout: 5000 });
    check(await circuitRow.locator(T('endpoint-fifo')).count() === 0, 'an endpoint without ordering is marked FIFO');
    const pinText = (await circuitRow.locator(T('endpoint-version-pin')).innerText()).trim();
    check(pinText === 'scene.circuit v1', `the endpoint's version pin is not shown: "${pinText}"`);

    // Create one from the form.
    await page.click(`${T('endpoint-create')} summary`);
    await page.fill(T('endpoint-url'), `${receiver.url}/ui`);
    await page.fill(T('endpoint-events'), 'ui.created, ui.other.*');
    await page.fill(T('endpoint-description'), `made by the browser test ${marker}`);
    await page.click(T('endpoint-create-submit'));
    const created = page.locator(`${T('endpoint-create-result')}[data-endpoint-id]`);
    await see(created, 'the created endpoint and its secret');
    const uiEndpointId = await created.getAttribute('data-endpoint-id');
    check(uiEndpointId && uiEndpointId.startsWith('ep_'), `no endpoint id after creating: "${await created.innerText()}"`);
    cleanups.push(() => api('DELETE', `/v1/endpoints/${uiEndpointId}`));
    const uiRow = page.locator(`${T('endpoint-row')}[data-endpoint-id="${uiEndpointId}"]`);
    await uiRow.waitFor({ state: 'visible' });
    const stored = await api('GET', `/v1/endpoints/${uiEndpointId}`, undefined, { expect: 200 });
    check(JSON.stringify(stored.body.events) === JSON.stringify(['ui.created', 'ui.other.*']), `created with events ${JSON.stringify(stored.body.events)}`);

    // Send a test event and see its outcome.
    await uiRow.locator(T('endpoint-test')).click();
    const result = uiRow.locator(`${T('endpoint-test-result')}[data-status="succeeded"]`);
    await see(result, 'the outcome "succeeded" of the test event');
    const outcome = (await result.innerText()).replace(/\s+/g, ' ').trim();
    check(/HTTP 200/.test(outcome) && /\d+(\.\d+)? m?s/.test(outcome), `the test outcome lacks status code or duration: "${outcome}"`);
    await until(() => receiver.seen.some((r) => r.path === '/ui' && r.body.includes('webhook.test')), { timeout: 3000, message: 'the receiver did not get the webhook.test event' });
    await assertNoBanner('endpoints');
    await shot('endpoints');

    // Disable, enable.
    await uiRow.locator(T('endpoint-toggle')).click();
    await page.locator(`${T('endpoint-row')}[data-endpoint-id="${uiEndpointId}"][data-status="disabled"]`).waitFor();
    check(await uiRow.locator(T('endpoint-test')).isDisabled(), 'a disabled endpoint still offers "send test"');
    check((await api('GET', `/v1/endpoints/${uiEndpointId}`)).body.status === 'disabled', 'the API does not show the endpoint disabled');
    await uiRow.locator(T('endpoint-toggle')).click();
    await page.locator(`${T('endpoint-row')}[data-endpoint-id="${uiEndpointId}"][data-status="active"]`).waitFor();

    // Delete (the confirmation is accepted).
    await uiRow.locator(T('endpoint-delete')).click();
    await uiRow.waitFor({ state: 'detached' });
    const gone = await api('GET', `/v1/endpoints/${uiEndpointId}`);
    check(gone.status === 404, `the deleted endpoint answers ${gone.status}`);
    await assertNoBanner('endpoints after delete');
    return `circuit: "${circuitText}"; test event: "${outcome}"`;
  });

  // 5 ------------------------------------------------------------------------------------
  await step("clicking the feed's event opens its deliveries and attempts; retry adds an attempt", async () => {
    await page.click(T('tab-live'));
    const row = page.locator(`${T('feed-item')}[data-event-id="${firstEventId}"]`);
    await row.waitFor({ state: 'visible' });
    await row.locator('.feed-id').click();
    await page.locator(T('view-event')).waitFor({ state: 'visible' });
    check(decodeURIComponent(new URL(page.url()).hash) === `#/events/${firstEventId}`, `the URL is ${page.url()}`);
    const delivery = page.locator(`${T('delivery-row')}:has-text("${browserEndpointId}")`);
    await see(delivery, `the delivery to ${browserEndpointId} on the event page`, { timeout: 5000 });
    const attempt = delivery.locator(`${T('attempt-row')}[data-status-code="200"]`);
    await see(attempt, 'an attempt answered 200 on the event page', { timeout: 8000 });
    const text = (await attempt.innerText()).replace(/\s+/g, ' ').trim();
    const all = await page.locator(T('delivery-row')).count();
    await assertNoBanner('event deliveries');
    await shot('deliveries');
    // Send it again: a second attempt shows up.
    await delivery.locator(T('delivery-retry')).click();
    await until(async () => (await delivery.locator(`${T('attempt-row')}[data-status-code="200"]`).count()) >= 2, {
      timeout: 8000,
      message: 'no second attempt shown after "retry"',
    });
    await assertNoBanner('event deliveries after retry');
    return `${all} deliveries; attempt: ${text}; retried: 2 attempts shown`;
  });

  // 6 ------------------------------------------------------------------------------------
  await step('dead letters: select, replay selected, result shown, delivered', async () => {
    await page.click(T('tab-dead-letters'));
    await page.locator(T('view-dead-letters')).waitFor({ state: 'visible' });
    await see(page.locator(T('dead-row')), 'a dead letter in the list', { timeout: 5000 });
    // Narrow the list to that endpoint, as a user would.
    const row = page.locator(`${T('dead-row')}[data-delivery-id="${DEAD_DELIVERY_ID}"]`);
    await page.selectOption(T('dead-endpoint'), DEAD_ENDPOINT_ID);
    await page.waitForFunction((id) => location.hash.includes(id), DEAD_ENDPOINT_ID);
    await see(row, `the dead letter ${DEAD_DELIVERY_ID} under endpoint ${DEAD_ENDPOINT_ID}`, { timeout: 5000 });
    await row.locator(T('dead-select')).check();
    const button = page.locator(T('dead-replay-selected'));
    check(await button.isEnabled(), 'replay selected is not enabled after selecting a row');
    await shot('dead-letters-selected');
    await button.click();
    const result = page.locator(`${T('dead-result')}[data-state="done"]`);
    await see(result, 'the replay result', { timeout: 5000 });
    const text = (await result.innerText()).trim();
    check((await result.getAttribute('data-replayed')) === '1' && /Replayed 1\b/.test(text), `the result says "${text}", expected 1 replayed`);
    const delivered = await until(
      async () => {
        const d = await api('GET', `/v1/deliveries/${DEAD_DELIVERY_ID}`, undefined, { expect: 200 });
        return d.body.status === 'succeeded' ? d.body : null;
      },
      { timeout: 10000, interval: 200, message: `${DEAD_DELIVERY_ID} did not become succeeded after the replay` },
    );
    await assertNoBanner('dead letters');
    await shot('dead-letters');
    return `"${text}"; ${DEAD_DELIVERY_ID} succeeded after ${delivered.attempt_count} attempts`;
  });

  // 7 ------------------------------------------------------------------------------------
  await step('sources and their receipts render without an error', async () => {
    const secret = `browser-test-secret-${marker}`;
    const src = await api('POST', '/v1/sources', { name: `Browser test ${marker}`, kind: 'hmac-sha256', secret, event_type_prefix: 'inbound.' }, { expect: 201 });
    cleanups.push(() => api('DELETE', `/v1/sources/${src.body.id}`));
    const ok = await sendInbound(src.body.id, secret, { id: `wh_${marker}_1`, type: 'order.paid', good: true });
    check(ok === 200, `a correctly signed inbound webhook answered ${ok}`);
    const bad = await sendInbound(src.body.id, secret, { id: `wh_${marker}_2`, type: 'order.paid', good: false });
    check(bad === 401, `a badly signed inbound webhook answered ${bad}, expected 401`);

    await page.click(T('tab-sources'));
    const card = page.locator(`${T('source-row')}[data-source-id="${src.body.id}"]`);
    await see(card, `the source ${src.body.id} in the list`, { timeout: 5000 });
    await assertNoBanner('sources');
    await shot('sources');
    await card.locator(T('source-open')).click();
    await page.locator(T('view-source')).waitFor({ state: 'visible' });
    await see(page.locator(`${T('receipt-row')}[data-verified="true"]`), 'a verified receipt', { timeout: 5000 });
    await see(page.locator(`${T('receipt-row')}[data-verified="false"]`), 'a rejected receipt', { timeout: 5000 });
    const verifiedRow = page.locator(`${T('receipt-row')}[data-verified="true"]`);
    check((await verifiedRow.locator('a[href^="#/events/"]').count()) === 1, 'the verified receipt does not link the event it became');
    await assertNoBanner('source receipts');
    await shot('source-receipts');
    return `source ${src.body.id}: one verified, one rejected receipt`;
  });

  await step('charts render bars without an error', async () => {
    await page.click(T('tab-charts'));
    await page.locator(T('view-charts')).waitFor({ state: 'visible' });
    await see(page.locator(`${T('chart-minutes')} ${T('chart-bar')}`), 'a bar in the per-minute chart', { timeout: 5000 });
    await see(page.locator(`${T('chart-histogram')} ${T('histogram-bar')}`), 'a bar in the latency histogram', { timeout: 5000 });
    const bars = await page.locator(`${T('chart-minutes')} ${T('chart-bar')}`).count();
    const legend = (await page.locator(T('chart-legend')).innerText()).replace(/\s+/g, ' ').trim();
    await assertNoBanner('charts');
    await shot('charts');
    return `${bars} bar segments; ${legend}`;
  });

  // 8 ------------------------------------------------------------------------------------
  await step('phone width (390×844): no horizontal overflow', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const widths = [];
    for (const view of ['charts', 'sources', 'dead-letters', 'endpoints', 'live']) {
      await page.click(T(`tab-${view}`));
      await page.locator(T(`view-${view}`)).waitFor({ state: 'visible' });
      await sleep(view === 'live' ? 100 : 400);
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      widths.push(`${view} ${w}px`);
      check(w <= 390, `the ${view} view is ${w} px wide at 390 px`);
      if (view !== 'live') await shot(`phone-${view}`);
    }
    await page.locator(`${T('live-state')}[data-state="live"]`).waitFor();
    check((await page.locator(`${T('feed-item')}:visible`).count()) > 0, 'the live feed is empty at phone width');
    check(await page.locator(T('signout')).isVisible(), 'sign out is not reachable at phone width');
    await shot('phone-live');
    return widths.join(', ');
  });

  // 9 ------------------------------------------------------------------------------------
  await step('sign out shows the sign-in form; the session no longer works', async () => {
    const before = (await page.context().cookies(BASE)).find((c) => c.name === 'herald_session');
    await page.click(T('signout'));
    await page.locator(T('signin')).waitFor({ state: 'visible' });
    await page.locator(T('view-live')).waitFor({ state: 'hidden' });
    const status = await page.evaluate(async () => (await fetch('/v1/sessions', { credentials: 'same-origin' })).status);
    check(status === 401, `GET /v1/sessions from the page answers ${status} after signing out`);
    if (before) {
      // A copy of the old cookie must not work either (the session is gone on the server).
      const res = await fetch(`${BASE}/v1/sessions`, { headers: { Cookie: `herald_session=${before.value}` } });
      check(res.status === 401, `the old session cookie still answers ${res.status}`);
    }
    return 'GET /v1/sessions: 401';
  });
}

// ---------------------------------------------------------------------------------------

async function finish(code) {
  for (const c of cleanups.reverse()) {
    try {
      await Promise.race([c(), sleep(2000)]);
    } catch {
      /* best effort */
    }
  }
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  if (receiver) receiver.server.close();
  process.exit(code);
}

const timer = setTimeout(async () => {
  console.error(`not ok - ${currentStep}: the whole test took longer than ${TOTAL_TIMEOUT_MS} ms`);
  await shot('failure').catch(() => {});
  await finish(1);
}, TOTAL_TIMEOUT_MS);

try {
  await main();
  clearTimeout(timer);
  console.log(`ok - all steps passed in ${Date.now() - started} ms; screenshots in ${SHOT_DIR}`);
  await finish(0);
} catch (e) {
  clearTimeout(timer);
  // eslint-disable-next-line no-control-regex
  const plain = (t) => String(t).replace(/\u001b\[[0-9;]*m/g, '');
  const why = e instanceof StepError ? e.message : e && e.name === 'TimeoutError' ? plain(e.message) : plain(e && e.stack ? e.stack : e);
  console.error(`not ok - ${currentStep}: ${why}`);
  if (pageProblems.length) console.error(`page problems:\n  ${pageProblems.join('\n  ')}`);
  if (page) {
    try {
      const banner = page.locator(T('error-message'));
      if (await banner.isVisible().catch(() => false)) console.error(`error banner: ${(await banner.innerText()).trim()}`);
      console.error(`page URL: ${page.url()}`);
      await shot('failure');
    } catch {
      /* the page may be gone */
    }
  }
  await finish(1);
}
