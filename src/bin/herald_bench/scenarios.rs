//! The scenarios. Each starts its own herald on a fresh database, measures one thing within
//! the scenario's time limit, reports what it got (marking the run incomplete when it ran
//! out of time or lost something), and stops herald.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::cli::{Options, Scenario};
use crate::herald::{Backend, Herald, Launch};
use crate::load::{self, MakeRequest, Pace, Plan, Request};
use crate::measure::{STALL, Settled, Usage, answers_note, delivery_checks, finish, latency_figures};
use crate::receiver::Receiver;
use crate::report::{Goal, ScenarioResult};
use crate::sse;
use crate::util::{percentiles, wait_for};

const WARM_UP_EVENTS: u64 = 50;
const STRIPE_SECRET: &str = "whsec_bench_stripe_secret";
const SSE_PUBLISHERS: usize = 32;

pub struct Ctx {
    pub opts: Options,
    pub launch: Launch,
    pub receiver: Receiver,
    /// This process's open-files limit (herald gets the same).
    pub fd_limit: u64,
}

pub fn run(ctx: &Ctx, scenario: Scenario, backend: Option<Backend>) -> ScenarioResult {
    let started = Instant::now();
    let mut r = ScenarioResult::new(scenario.name(), backend);
    let label = format!("{} {}", scenario.name(), backend.map_or("", Backend::name)).trim().to_string();
    eprintln!("[{label}] starting");
    let outcome = match (scenario, backend) {
        (Scenario::Limit, _) => limit(ctx, &mut r),
        (Scenario::E2e, Some(b)) => e2e(ctx, b, &mut r),
        (Scenario::Latency, Some(b)) => latency(ctx, b, &mut r),
        (Scenario::Fanout, Some(b)) => fanout(ctx, b, &mut r),
        (Scenario::Sse, Some(b)) => sse_streams(ctx, b, &mut r),
        (Scenario::Inbound, Some(b)) => inbound(ctx, b, &mut r),
        _ => Err(format!("{} needs a backend", scenario.name())),
    };
    if let Err(e) = outcome {
        r.complete = false;
        r.note(format!("error: {e}"));
    }
    r.wall_s = started.elapsed().as_secs_f64();
    eprintln!("[{label}] done in {:.1} s{}", r.wall_s, if r.complete { "" } else { " (INCOMPLETE)" });
    r
}

/// Request k of a publish: its number and its send (or due) time in `data`.
fn publish_requests(key: &str, event_type: &'static str) -> Arc<MakeRequest> {
    let auth = format!("Bearer {key}");
    Arc::new(move |k, t| Request {
        headers: vec![("Authorization", auth.clone()), ("Content-Type", "application/json".into())],
        body: format!(r#"{{"type":"{event_type}","data":{{"i":{k},"t":{t}}}}}"#).into_bytes(),
    })
}

fn plan(ctx: &Ctx, h: &Herald, total: u64, concurrency: usize, pace: Pace, deadline: Instant) -> Plan {
    Plan {
        addr: h.addr,
        path: "/v1/events".into(),
        concurrency,
        total,
        pace,
        deadline,
        threads: ctx.opts.threads,
        client: ctx.opts.client,
        make: publish_requests(&h.key, "bench.e2e"),
        marker: None,
    }
}

/// A few events through every endpoint first, so connections and actors exist.
fn warm_up(
    ctx: &Ctx,
    h: &Herald,
    endpoints: usize,
    deadline: Instant,
    r: &mut ScenarioResult,
) -> Result<(), String> {
    let recorder = &ctx.receiver.recorder;
    for _ in 0..WARM_UP_EVENTS {
        h.publish("bench.warmup", &json!({"w": 1}))?;
    }
    let expected = WARM_UP_EVENTS * endpoints as u64;
    let until = deadline.min(Instant::now() + Duration::from_secs(30));
    if !wait_for(expected, || recorder.other(), STALL, until) {
        r.note(format!("warm-up: {} of {expected} deliveries arrived", recorder.other()));
    }
    Ok(())
}

/// `--filtered`: a payload filter every event the bench publishes meets, the warm-up's
/// `{"w": 1}` included (the type, then a number in `data`).
fn filter_every_event_meets() -> Value {
    json!({"$and": [
        {"type": {"$regex": "^bench\\."}},
        {"$or": [{"data.i": {"$gte": 0}}, {"data.w": {"$gte": 0}}]}
    ]})
}

/// `--filtered`: a payload filter no event the bench publishes meets (`data.i` counts from
/// 0, and the warm-up has none), checked as far as `filter_every_event_meets`'s is.
fn filter_no_event_meets() -> Value {
    json!({"$and": [
        {"type": {"$regex": "^bench\\."}},
        {"data.i": {"$lt": -1}}
    ]})
}

/// The endpoints a scenario publishes to, all for every `bench.*` event.
struct Endpoints {
    /// On the receiver's counted paths (`/hook/0`, …), each with `filter` when given.
    counted: usize,
    filter: Option<Value>,
    /// More, each with a filter no event meets, on a path the receiver counts apart.
    filtered_out: usize,
}

impl Endpoints {
    fn plain(counted: usize) -> Self {
        Self { counted, filter: None, filtered_out: 0 }
    }
}

/// Starts herald with the endpoints on the receiver, warmed up, and the receiver ready to
/// record `n` events to each counted one; returns herald and the scenario's deadline.
fn start_with_endpoints(
    ctx: &Ctx,
    backend: Backend,
    endpoints: &Endpoints,
    n: u64,
    r: &mut ScenarioResult,
) -> Result<(Herald, Instant), String> {
    let h = Herald::start(&ctx.launch, backend)?;
    for e in 0..endpoints.counted {
        h.create_endpoint(&ctx.receiver.url(e), endpoints.filter.as_ref(), ctx.opts.fifo)?;
    }
    if endpoints.filtered_out > 0 {
        let none = filter_no_event_meets();
        for e in 0..endpoints.filtered_out {
            h.create_endpoint(&ctx.receiver.filtered_out_url(e), Some(&none), false)?;
        }
    }
    // Creating the endpoints is setup (thousands of them with --filtered take a while).
    let deadline = Instant::now() + ctx.opts.timeout;
    let counted = endpoints.counted;
    let recorder = &ctx.receiver.recorder;
    recorder.reset(counted, n as usize);
    warm_up(ctx, &h, counted, deadline, r)?;
    recorder.reset(counted, n as usize);
    Ok((h, deadline))
}

/// Deliveries that reached the endpoints whose filter no event meets: any means a filter
/// let an event through, and makes the run incomplete.
fn filtered_out_check(r: &mut ScenarioResult, delivered: u64) {
    r.count("filtered_out_deliveries", "deliveries to endpoints whose filter no event meets", delivered);
    if delivered > 0 {
        r.complete = false;
        r.note(format!("{delivered} deliveries reached endpoints whose payload filter no event meets"));
    }
}

fn e2e(ctx: &Ctx, backend: Backend, r: &mut ScenarioResult) -> Result<(), String> {
    let n = ctx.opts.events.unwrap_or(20_000);
    let c = ctx.opts.concurrency.unwrap_or(32);
    let filtered = ctx.opts.filtered;
    let recorder = &ctx.receiver.recorder;
    let filtered_out_before = recorder.filtered_out();
    let setup = Endpoints { counted: 1, filter: None, filtered_out: filtered.unwrap_or(0) };
    let (h, deadline) = start_with_endpoints(ctx, backend, &setup, n, r)?;
    r.count("events", "events to publish", n);
    r.count("concurrency", "publishers in flight", c as u64);
    if let Some(k) = filtered {
        r.count("filtered", "endpoints with payload filters", k as u64);
    }
    if ctx.opts.fifo {
        r.count("fifo", "endpoint ordering fifo (one delivery at a time)", 1);
    }

    let before = Usage::read(Some(h.pid));
    let out = load::run(plan(ctx, &h, n, c, Pace::Closed, deadline));
    wait_for(out.ok, || recorder.unique(), STALL, deadline);
    let got = recorder.take();
    let settled = Settled::wait(&h, out.started_us, deadline);
    let after = Usage::read(Some(h.pid));

    let goal = if backend == Backend::Sqlite { 10_000.0 } else { 7_000.0 };
    r.num("events_accepted_per_s", "events accepted/s (202)", out.ok_per_second()).goal(Goal::AtLeast(goal));
    let delivered_s = got.last_us.saturating_sub(out.started_us) as f64 / 1e6;
    let deliveries_per_s = if delivered_s > 0.0 { got.unique as f64 / delivered_s } else { 0.0 };
    r.num("deliveries_per_s", "deliveries/s (first publish to last delivery)", deliveries_per_s);
    let mut latencies = got.latencies_us;
    latency_figures(r, "latency", "publish-to-receive", percentiles(&mut latencies));
    let mut answer_times = out.latencies_us.clone();
    latency_figures(r, "publish", "publish answer (202)", percentiles(&mut answer_times));
    settled.report(r);
    delivery_checks(r, out.ok, got.unique, got.duplicates);
    if filtered.is_some() {
        filtered_out_check(r, recorder.filtered_out().saturating_sub(filtered_out_before));
    }
    answers_note(r, "publish", &out);
    before.report(&after, Some((&h, backend)), ("events", out.ok as f64), r);
    r.set_goal("herald_peak_rss_mb", Goal::AtMost(100.0));
    finish(h, &format!("e2e-{}", backend.name()), ("event", (out.sent + WARM_UP_EVENTS) as f64), r);
    Ok(())
}

fn latency(ctx: &Ctx, backend: Backend, r: &mut ScenarioResult) -> Result<(), String> {
    let rate = ctx.opts.rate.unwrap_or(1_000.0);
    let seconds = ctx.opts.duration.unwrap_or(20.0);
    let c = ctx.opts.concurrency.unwrap_or(128);
    let n = (rate * seconds).round() as u64;
    let (h, deadline) = start_with_endpoints(ctx, backend, &Endpoints::plain(1), n, r)?;
    let recorder = &ctx.receiver.recorder;
    r.num("offered_per_s", "offered events/s (open loop)", rate);
    r.num("offered_s", "offered for s", seconds);
    r.count("connections", "publisher connections", c as u64);

    let before = Usage::read(Some(h.pid));
    let out = load::run(plan(ctx, &h, n, c, Pace::Open { per_second: rate }, deadline));
    wait_for(out.ok, || recorder.unique(), STALL, deadline);
    let got = recorder.take();
    let settled = Settled::wait(&h, out.started_us, deadline);
    let after = Usage::read(Some(h.pid));

    r.num("accepted_per_s", "events accepted/s", out.ok_per_second());
    let mut latencies = got.latencies_us;
    if let Some(p) = percentiles(&mut latencies) {
        r.num("latency_p50_ms", "scheduled-send-to-receive p50 ms", p.p50_ms).goal(Goal::AtMost(5.0));
        r.num("latency_p90_ms", "scheduled-send-to-receive p90 ms", p.p90_ms);
        r.num("latency_p99_ms", "scheduled-send-to-receive p99 ms", p.p99_ms).goal(Goal::AtMost(25.0));
        r.num("latency_max_ms", "scheduled-send-to-receive max ms", p.max_ms);
    }
    let mut answer_times = out.latencies_us.clone();
    latency_figures(r, "publish", "scheduled-send-to-202", percentiles(&mut answer_times));
    r.num(
        "generator_max_lag_ms",
        "generator's latest send after schedule ms",
        out.max_lag_us as f64 / 1000.0,
    );
    if out.max_lag_us > 10_000 {
        r.note("requests left late (every connection was busy, or the generator was starved): latency still counts from the schedule");
    }
    settled.report(r);
    delivery_checks(r, out.ok, got.unique, got.duplicates);
    answers_note(r, "publish", &out);
    before.report(&after, Some((&h, backend)), ("events", out.ok as f64), r);
    finish(h, &format!("latency-{}", backend.name()), ("event", (out.sent + WARM_UP_EVENTS) as f64), r);
    Ok(())
}

fn fanout(ctx: &Ctx, backend: Backend, r: &mut ScenarioResult) -> Result<(), String> {
    let endpoints = ctx.opts.endpoints.unwrap_or(50);
    let n = ctx.opts.events.unwrap_or(1_000);
    let c = ctx.opts.concurrency.unwrap_or(32);
    // --filtered: each endpoint gets a filter every event meets, so the deliveries are the
    // same and what changes is the filters' evaluation on the publish path.
    let setup = Endpoints {
        counted: endpoints,
        filter: ctx.opts.filtered.map(|_| filter_every_event_meets()),
        filtered_out: 0,
    };
    let (h, deadline) = start_with_endpoints(ctx, backend, &setup, n, r)?;
    let recorder = &ctx.receiver.recorder;
    r.count("endpoints", "endpoints", endpoints as u64);
    if let Some(k) = ctx.opts.filtered {
        r.count("filtered", "endpoints with payload filters", endpoints as u64);
        if k != endpoints {
            r.note(format!("--filtered {k}: all {endpoints} endpoints have a filter every event meets"));
        }
    }
    r.count("events", "events published", n);

    let before = Usage::read(Some(h.pid));
    let out = load::run(plan(ctx, &h, n, c, Pace::Closed, deadline));
    let expected = out.ok * endpoints as u64;
    wait_for(expected, || recorder.unique(), STALL, deadline);
    let got = recorder.take();
    let settled = Settled::wait(&h, out.started_us, deadline);
    let after = Usage::read(Some(h.pid));

    let done_s = got.last_us.saturating_sub(out.started_us) as f64 / 1e6;
    let per_s = if done_s > 0.0 { got.unique as f64 / done_s } else { 0.0 };
    r.count("deliveries", "deliveries received", got.unique);
    r.num("deliveries_per_s", "deliveries/s", per_s).goal(Goal::AtLeast(30_000.0));
    r.num("completion_s", "first publish to last delivery s", done_s);
    r.num("publish_s", "publishing took s", out.last_answer_us.saturating_sub(out.started_us) as f64 / 1e6);
    let mut latencies = got.latencies_us;
    latency_figures(r, "latency", "publish-to-receive", percentiles(&mut latencies));
    settled.report(r);
    delivery_checks(r, expected, got.unique, got.duplicates);
    answers_note(r, "publish", &out);
    before.report(&after, Some((&h, backend)), ("deliveries", got.unique as f64), r);
    let deliveries = (out.sent + WARM_UP_EVENTS) * endpoints as u64;
    finish(h, &format!("fanout-{}", backend.name()), ("delivery", deliveries as f64), r);
    Ok(())
}

fn sse_streams(ctx: &Ctx, backend: Backend, r: &mut ScenarioResult) -> Result<(), String> {
    let wanted = ctx.opts.streams.unwrap_or(1_000);
    let rate = ctx.opts.rate.unwrap_or(100.0);
    let seconds = ctx.opts.duration.unwrap_or(10.0);
    let n = (rate * seconds).round() as u64;
    // herald and the bench each hold one descriptor per stream, plus a few hundred of their own.
    let cap = ctx.fd_limit.saturating_sub(400) as usize;
    let k = wanted.min(cap);
    if k < wanted {
        r.note(format!(
            "{wanted} streams asked, {k} opened at most: the open-files limit is {}",
            ctx.fd_limit
        ));
    }
    let h = Herald::start(&ctx.launch, backend)?;
    let deadline = Instant::now() + ctx.opts.timeout;
    let rss_before = h.rss_kib();
    let progress = Arc::new(sse::Progress::default());
    let streams = sse::Plan {
        addr: h.addr,
        key: h.key.clone(),
        streams: k,
        events: n as usize,
        threads: ctx.opts.threads,
    };
    let opening = Instant::now();
    let clients =
        sse::start(streams, progress.clone()).map_err(|e| format!("cannot start the stream threads: {e}"))?;
    let settled = || sse::Progress::get(&progress.opened) + sse::Progress::get(&progress.failed);
    wait_for(k as u64, settled, STALL, deadline);
    let open_s = opening.elapsed().as_secs_f64();
    let opened = sse::Progress::get(&progress.opened);
    r.count("streams_asked", "streams asked", wanted as u64);
    r.count("streams_open", "streams open", opened)
        .goal(Goal::AtLeast(50_000.0))
        .goal_note(format!("open-files limit here: {}", ctx.fd_limit));
    r.num("open_s", "opening them took s", open_s);
    let failed = sse::Progress::get(&progress.failed);
    if failed > 0 {
        r.count("streams_failed", "streams that failed to open", failed);
        r.complete = false;
    }

    // Sessions register with herald's hub after the answer's head: warm up until every open
    // stream has seen an event, so none misses the first measured one.
    let mut warm_ups = 0;
    while warm_ups < 20 && Instant::now() < deadline {
        h.publish("bench.warmup", &json!({"w": 1}))?;
        warm_ups += 1;
        let alive = opened.saturating_sub(sse::Progress::get(&progress.ended));
        let until = deadline.min(Instant::now() + Duration::from_secs(5));
        if wait_for(alive, || sse::Progress::get(&progress.warmed), Duration::from_secs(5), until) {
            break;
        }
    }
    let warmed = sse::Progress::get(&progress.warmed);
    if warmed < opened {
        r.note(format!("only {warmed} of {opened} streams saw a warm-up event ({warm_ups} sent)"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_open = h.rss_kib();
    r.num("rss_before_mb", "herald RSS before the streams MB", rss_before as f64 / 1024.0);
    r.num("rss_open_mb", "herald RSS with the streams open MB", rss_open as f64 / 1024.0);
    if opened > 0 {
        let per_stream = rss_open.saturating_sub(rss_before) as f64 / opened as f64;
        r.num("rss_per_stream_kib", "herald RSS per stream KiB", per_stream).goal(Goal::AtMost(10.0));
    }

    progress.measuring.store(true, Ordering::SeqCst);
    let alive_at_start = opened.saturating_sub(sse::Progress::get(&progress.ended));
    r.num("rate_per_s", "events published per s (open loop)", rate);
    r.count("events", "events published", n);
    let before = Usage::read(Some(h.pid));
    let mut publish = plan(ctx, &h, n, SSE_PUBLISHERS, Pace::Open { per_second: rate }, deadline);
    publish.make = publish_requests(&h.key, "bench.sse");
    let out = load::run(publish);
    let expected_frames = out.ok * alive_at_start;
    wait_for(expected_frames, || sse::Progress::get(&progress.frames), Duration::from_secs(10), deadline);
    let after = Usage::read(Some(h.pid));
    let ended = sse::Progress::get(&progress.ended);
    let stats = clients.stop(out.ok);

    r.count("frames", "frames received (first copies)", sse::Progress::get(&progress.frames));
    let mut latencies = stats.latencies_us;
    if let Some(p) = percentiles(&mut latencies) {
        r.num("latency_p50_ms", "publish-to-stream p50 ms", p.p50_ms);
        r.num("latency_p90_ms", "publish-to-stream p90 ms", p.p90_ms);
        r.num("latency_p99_ms", "publish-to-stream p99 ms", p.p99_ms)
            .goal(Goal::AtMost(50.0))
            .goal_note("target at 10,000 streams");
        r.num("latency_max_ms", "publish-to-stream max ms", p.max_ms);
    }
    r.count("complete_streams", "streams that got every event", stats.complete_streams);
    r.count("frames_missing", "frames missing", stats.missing);
    r.count("duplicates", "duplicate frames", stats.duplicates);
    r.count("streams_ended", "streams herald closed", ended);
    if stats.missing > 0 || ended > 0 {
        r.complete = false;
    }
    if let Some(e) = progress.first_error() {
        r.note(e);
    }
    answers_note(r, "publish", &out);
    before.report(&after, Some((&h, backend)), ("events", out.ok as f64), r);
    finish(h, &format!("sse-{}", backend.name()), ("event", (out.sent + warm_ups) as f64), r);
    Ok(())
}

fn stripe_signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn inbound(ctx: &Ctx, backend: Backend, r: &mut ScenarioResult) -> Result<(), String> {
    let n = ctx.opts.events.unwrap_or(10_000);
    let c = ctx.opts.concurrency.unwrap_or(32);
    let h = Herald::start(&ctx.launch, backend)?;
    let deadline = Instant::now() + ctx.opts.timeout;
    let source = h.create_stripe_source(STRIPE_SECRET)?;
    r.count("requests", "Stripe-signed requests", n);
    let make: Arc<MakeRequest> = Arc::new(|k, t| {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let body = format!(
            r#"{{"id":"evt_bench_{k}","object":"event","type":"payment_intent.succeeded","created":{unix},"data":{{"object":{{"id":"pi_{k}","object":"payment_intent","amount":2000,"currency":"eur","metadata":{{"t":"{t}"}}}}}}}}"#
        )
        .into_bytes();
        let signature = stripe_signature(STRIPE_SECRET, unix, &body);
        Request {
            headers: vec![("Content-Type", "application/json".into()), ("Stripe-Signature", signature)],
            body,
        }
    });
    let before = Usage::read(Some(h.pid));
    let out = load::run(Plan {
        addr: h.addr,
        path: format!("/v1/inbound/{source}"),
        concurrency: c,
        total: n,
        pace: Pace::Closed,
        deadline,
        threads: ctx.opts.threads,
        client: ctx.opts.client,
        make,
        marker: Some(r#""duplicate":true"#),
    });
    let after = Usage::read(Some(h.pid));

    let secs = out.last_answer_us.saturating_sub(out.started_us) as f64 / 1e6;
    let verified = out.ok - out.marked;
    r.num(
        "verified_per_s",
        "verified requests/s (200, new)",
        if secs > 0.0 { verified as f64 / secs } else { 0.0 },
    );
    r.count("duplicates", "answered as duplicates", out.marked);
    let mut answer_times = out.latencies_us.clone();
    latency_figures(r, "answer", "request answer", percentiles(&mut answer_times));
    if out.ok < n || out.marked > 0 {
        r.complete = false;
    }
    answers_note(r, "inbound", &out);
    before.report(&after, Some((&h, backend)), ("requests", out.ok as f64), r);
    finish(h, &format!("inbound-{}", backend.name()), ("request", out.sent as f64), r);
    Ok(())
}

// Every scenario has this signature (they are called through one table).
#[allow(clippy::unnecessary_wraps)]
fn limit(ctx: &Ctx, r: &mut ScenarioResult) -> Result<(), String> {
    let n = ctx.opts.limit_events.unwrap_or(100_000);
    let c = ctx.opts.concurrency.unwrap_or(32);
    let deadline = Instant::now() + ctx.opts.timeout;
    let recorder = &ctx.receiver.recorder;
    recorder.reset(1, n as usize);
    r.count("requests", "requests to the receiver", n);
    r.count("concurrency", "requests in flight", c as u64);
    if ctx.opts.tls {
        r.note("over plain HTTP: --tls is for herald's deliveries, and this load generator has no TLS");
    }
    let before = Usage::read(None);
    let out = load::run(Plan {
        addr: ctx.receiver.addr,
        path: "/hook/0".into(),
        concurrency: c,
        total: n,
        pace: Pace::Closed,
        deadline,
        threads: ctx.opts.threads,
        client: ctx.opts.client,
        make: publish_requests("hk_the_same_length_as_a_real_herald_key_000000", "bench.e2e"),
        marker: None,
    });
    let after = Usage::read(None);
    let got = recorder.take();
    r.num("requests_per_s", "requests/s (the machine's ceiling)", out.ok_per_second());
    let mut answer_times = out.latencies_us.clone();
    latency_figures(r, "answer", "request answer", percentiles(&mut answer_times));
    r.count("recorded", "requests the receiver recorded", got.unique);
    if got.unique < out.ok {
        r.complete = false;
    }
    answers_note(r, "limit", &out);
    before.report(&after, None, ("requests", out.ok as f64), r);
    Ok(())
}

/// `all`: each backend's e2e throughput as a fraction of the limit scenario's.
pub fn add_ratios(results: &mut [ScenarioResult]) {
    let Some(limit) = results
        .iter()
        .find(|r| r.scenario == "limit")
        .and_then(|r| r.figure("requests_per_s"))
        .and_then(super::report::Figure::number)
        .filter(|v| *v > 0.0)
    else {
        return;
    };
    for r in results.iter_mut().filter(|r| r.scenario == "e2e") {
        let accepted =
            r.figure("events_accepted_per_s").and_then(super::report::Figure::number).unwrap_or(0.0);
        let delivered = r.figure("deliveries_per_s").and_then(super::report::Figure::number).unwrap_or(0.0);
        r.num("limit_per_s", "limit: receiver alone, requests/s", limit);
        let sqlite = r.backend == Some(Backend::Sqlite);
        let ratio = r.num(
            "ratio_to_limit",
            "ratio to limit (min of accepted/s, deliveries/s)",
            accepted.min(delivered) / limit,
        );
        if sqlite {
            ratio.goal(Goal::AtLeast(0.25));
        }
    }
}
