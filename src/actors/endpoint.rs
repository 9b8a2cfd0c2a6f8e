//! One actor per endpoint (in a cluster, on the endpoint's owner node only): its queue, its
//! in-flight and per-second limits, its circuit breaker. A slow or dead endpoint only ever
//! fills its own queue. Work it cannot send now (circuit open, probe out) goes back to the
//! store with a due time instead of being held. It renews the leases of exactly what it
//! holds, and stops when it has had nothing to do for `delivery.idle_actor_ttl`.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{AttemptSummary, Record, WakeAt};
use super::scheduler::Refill;
use super::writer::ResultWriter;
use super::{DeliveryContext, EndpointSnapshot, Job};
use crate::delivery::circuit::{Admission, CircuitBreaker, CircuitState};
use crate::delivery::retry::{AttemptOutcome, classify, jitter, parse_retry_after};
use crate::delivery::sender::{SendOutcome, is_reserved_header, send};
use crate::delivery::signing::signature_headers;
use crate::ids::now_ms;
use crate::store::deliveries::{self, AttemptRow, DeliveryUpdate, NextState};
use crate::store::endpoints::CircuitUpdate;

/// Deliveries claimed at most per refill.
const MAX_REFILL: i64 = 500;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue {
    pub endpoint: Arc<EndpointSnapshot>,
    pub jobs: Vec<Job>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Configure(pub Arc<EndpointSnapshot>);

/// The endpoint is gone, disabled, or moves to another node: drop the queue and give its
/// leases back, finish what is in flight, then stop (and with `give_up`, hand the
/// endpoint's ownership back so its next owner need not wait for it to expire).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire {
    pub give_up: bool,
}

/// A refill's claim has been answered (sent by the Registry after the work it claimed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refilled;

/// This node's ownership was renewed: send what waits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Pump;

/// The Registry agrees this idle actor may go: nothing was sent to it since it said so.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// An actor idle for `delivery.idle_actor_ttl`, and how many `Enqueue`s it has received.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Idle {
    pub endpoint_id: String,
    pub addr: Addr<EndpointActor>,
    pub received: u64,
}

pub struct EndpointActor {
    ctx: Arc<DeliveryContext>,
    client: awc::Client,
    cfg: Arc<EndpointSnapshot>,
    writer: Addr<ResultWriter>,
    scheduler: Recipient<WakeAt>,
    registry: Recipient<Idle>,
    breaker: CircuitBreaker,
    queue: VecDeque<Job>,
    /// Payload bytes held, queued or in flight: at most `delivery.queue_bytes` (and one
    /// payload), so no tenant can grow a node's memory through one endpoint.
    held_bytes: usize,
    /// Work was sent back to the store for want of room (claims skip this endpoint then,
    /// and the actor asks for it as room frees), and whether such a refill is under way.
    full: bool,
    refilling: bool,
    refill: Recipient<Refill>,
    /// Payload bytes and jobs received, for the size of a refill.
    seen_bytes: u64,
    seen_jobs: u64,
    /// Ids queued or in flight, so a delivery handed over twice is attempted once.
    held: HashSet<String>,
    in_flight: usize,
    tokens: f64,
    tokens_at: Instant,
    pump_timer: Option<SpawnHandle>,
    retired: Option<Retire>,
    /// Whether this actor's circuit is counted in the open-circuits gauge.
    counted_open: bool,
    /// `Enqueue`s received, for the idle hand-shake with the Registry.
    received: u64,
    last_busy: Instant,
    idle_reported: bool,
}

impl EndpointActor {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        client: awc::Client,
        cfg: Arc<EndpointSnapshot>,
        writer: Addr<ResultWriter>,
        scheduler: Recipient<WakeAt>,
        refill: Recipient<Refill>,
        registry: Recipient<Idle>,
    ) -> Self {
        let mut breaker = CircuitBreaker::new(&ctx.circuit);
        breaker.consecutive_failures = cfg.consecutive_failures;
        if cfg.circuit_state != CircuitState::Closed {
            breaker.state = CircuitState::Open;
            breaker.open_until = Some(cfg.circuit_open_until.unwrap_or(0));
        }
        Self {
            tokens: cfg.rate_limit_per_second.unwrap_or(0) as f64,
            ctx,
            client,
            cfg,
            writer,
            scheduler,
            registry,
            breaker,
            queue: VecDeque::new(),
            held_bytes: 0,
            full: false,
            refilling: false,
            refill,
            seen_bytes: 0,
            seen_jobs: 0,
            held: HashSet::new(),
            in_flight: 0,
            tokens_at: Instant::now(),
            pump_timer: None,
            retired: None,
            counted_open: false,
            received: 0,
            last_busy: Instant::now(),
            idle_reported: false,
        }
    }

    /// Renews the leases of what this actor holds, queued or in flight (and nothing else).
    fn renew_leases(&self) {
        if self.held.is_empty() {
            return;
        }
        let (db, owner) = (self.ctx.db.clone(), self.ctx.node_id.clone());
        let ids: Vec<String> = self.held.iter().cloned().collect();
        let expires_at = now_ms() + self.ctx.lease_ms();
        actix::spawn(async move {
            if let Err(e) = db.run(move |conn| deliveries::renew_ids(conn, &owner, &ids, expires_at)).await {
                log::warn!("renewing leases failed: {e}");
            }
        });
    }

    /// Gives back the leases of work this actor will not attempt.
    fn release_ids(&self, ids: Vec<String>) {
        Self::release_held(&self.ctx, ids);
    }

    /// Gives back this node's leases on these deliveries (not attempted here).
    pub fn release_held(ctx: &Arc<DeliveryContext>, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let (db, owner) = (ctx.db.clone(), ctx.node_id.clone());
        actix::spawn(async move {
            if let Err(e) = db.run(move |conn| deliveries::release_ids(conn, &owner, &ids)).await {
                log::warn!("could not release leases: {e}");
            }
        });
    }

    /// Says so to the Registry once idle for the TTL; a burst's queue memory goes at once.
    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.queue.is_empty() || self.in_flight > 0 || self.retired.is_some() {
            self.last_busy = Instant::now();
            return;
        }
        if self.queue.capacity() > 64 {
            self.queue.shrink_to_fit();
        }
        if self.held.capacity() > 64 {
            self.held.shrink_to_fit();
        }
        if !self.idle_reported && self.last_busy.elapsed() >= self.ctx.settings.delivery.idle_actor_ttl {
            self.idle_reported = true;
            let addr = ctx.address();
            self.registry.do_send(Idle { endpoint_id: self.cfg.id.clone(), addr, received: self.received });
        }
    }

    /// Once retired and nothing is in flight: hand the endpoint back if asked, and stop.
    fn finish_retiring(&mut self, ctx: &mut Context<Self>) {
        let Some(retire) = &self.retired else { return };
        if self.in_flight > 0 {
            return;
        }
        // Not when this node has taken the endpoint again meanwhile: its new row stays.
        if retire.give_up && !self.owned_now() {
            self.ctx.give_up(&self.cfg.id);
        }
        ctx.stop();
    }

    /// Whether this node may send for the endpoint now: always on a single node; in a
    /// cluster while its last ownership renewal holds (it lapses before any other node may
    /// take the endpoint over, so a node cut off from the database stops sending first).
    fn owned_now(&self) -> bool {
        self.ctx.ownership.snapshot(now_ms()).is_none_or(|owned| owned.contains(&self.cfg.id))
    }

    /// Sends as much of the queue as the limits, the circuit and ownership allow. Work held
    /// while ownership is in doubt waits for the Registry's next `Pump`.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.queue.is_empty() || !self.owned_now() {
            return;
        }
        while !self.queue.is_empty() && self.in_flight < self.cfg.max_in_flight && self.retired.is_none() {
            if let Some(wait) = self.rate_wait() {
                if self.pump_timer.is_none() {
                    self.pump_timer = Some(ctx.run_later(wait, |act, ctx| {
                        act.pump_timer = None;
                        act.pump(ctx);
                    }));
                }
                return;
            }
            let now = now_ms();
            match self.breaker.admit(now, &self.ctx.circuit) {
                Admission::Allow => {}
                Admission::Probe => {
                    log::info!("endpoint {}: circuit half-open, sending a probe", self.cfg.id);
                }
                Admission::Wait { until } => {
                    self.release_queue(until);
                    self.check_room();
                    return;
                }
            }
            if self.cfg.rate_limit_per_second.is_some() {
                self.tokens -= 1.0;
            }
            let job = self.queue.pop_front().expect("queue is not empty");
            self.start_attempt(job, ctx);
        }
    }

    /// Time to wait for the per-second rate limit, if any.
    fn rate_wait(&mut self) -> Option<Duration> {
        let rps = self.cfg.rate_limit_per_second? as f64;
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.tokens_at).as_secs_f64() * rps).min(rps);
        self.tokens_at = now;
        (self.tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - self.tokens) / rps))
    }

    /// A full actor with room again (half its budget free) asks for as much of its waiting
    /// work as fits, judged by the payloads it has seen.
    fn check_room(&mut self) {
        let budget = self.ctx.settings.delivery.queue_bytes;
        if !self.full || self.refilling || self.retired.is_some() || self.held_bytes > budget / 2 {
            return;
        }
        let typical = (self.seen_bytes / self.seen_jobs.max(1)).max(1) as usize;
        let rows = ((budget - self.held_bytes) / typical).clamp(1, MAX_REFILL as usize) as i64;
        self.refilling = true;
        self.refill.do_send(Refill { endpoint_id: self.cfg.id.clone(), rows });
    }

    /// Everything queued goes back to the store, due at `until` (not counted as attempts).
    fn release_queue(&mut self, until: i64) {
        if self.queue.is_empty() {
            return;
        }
        let updates: Vec<DeliveryUpdate> = self
            .queue
            .drain(..)
            .map(|job| {
                self.held_bytes -= job.body.len();
                self.held.remove(&job.delivery_id);
                DeliveryUpdate {
                    delivery_id: job.delivery_id,
                    attempt: None,
                    next: NextState::Release(until),
                }
            })
            .collect();
        self.writer.do_send(Record { updates, circuit: None, wake_scheduler: false });
        self.scheduler.do_send(WakeAt(until));
    }

    fn start_attempt(&mut self, job: Job, ctx: &mut Context<Self>) {
        self.in_flight += 1;
        let started_at = now_ms();
        let secrets: Vec<&str> = self.cfg.secrets.iter().map(String::as_str).collect();
        let mut headers: Vec<(String, String)> =
            signature_headers(self.cfg.scheme, &job.event_id, started_at / 1000, &job.body, &secrets)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        for (name, value) in &self.cfg.headers {
            if !is_reserved_header(name) && !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(name)) {
                headers.push((name.clone(), value.clone()));
            }
        }
        let (client, policy, url) = (self.client.clone(), self.ctx.policy.clone(), self.cfg.url.clone());
        let (body, timeout) = (job.body.clone(), self.ctx.settings.delivery.timeout);
        let attempt = async move { send(&client, &policy, &url, &headers, body, timeout).await };
        ctx.spawn(attempt.into_actor(self).map(move |outcome, act, ctx| {
            act.finish_attempt(job, started_at, outcome);
            act.pump(ctx);
            act.check_room();
            act.finish_retiring(ctx);
        }));
    }

    fn finish_attempt(&mut self, job: Job, started_at: i64, outcome: SendOutcome) {
        self.in_flight -= 1;
        self.held_bytes -= job.body.len();
        self.held.remove(&job.delivery_id);
        let now = now_ms();
        let before = self.breaker.state(now);
        let next = self.judge(&job, &outcome, now);
        self.count_outcome(&next, outcome.duration_ms);
        let after = self.breaker.state(now);
        if before != after {
            self.circuit_changed(before, after);
        }
        if let NextState::Retry(at) = next {
            self.scheduler.do_send(WakeAt(at));
        }
        self.ctx.waiters.notify(
            &job.delivery_id,
            AttemptSummary {
                status: next.status(),
                attempt_count: job.attempt_count + 1,
                status_code: outcome.status,
                error: outcome.error.clone(),
            },
        );
        self.record(job, started_at, outcome, next, after, now);
        if after == CircuitState::Open
            && let Some(until) = self.breaker.open_until
        {
            self.release_queue(until);
        }
    }

    /// What an attempt's outcome makes of its delivery, told to the circuit breaker: done,
    /// failed for good, or retried on the schedule (dead once it runs out).
    fn judge(&mut self, job: &Job, outcome: &SendOutcome, now: i64) -> NextState {
        let class = if outcome.refused { AttemptOutcome::Failed } else { classify(outcome.status) };
        match class {
            AttemptOutcome::Succeeded => {
                self.breaker.on_success();
                NextState::Succeeded
            }
            AttemptOutcome::Failed => {
                self.breaker.on_non_retriable();
                NextState::Failed
            }
            AttemptOutcome::Retriable => {
                self.breaker.on_retriable_failure(now, &self.ctx.circuit);
                let retry_after =
                    outcome.retry_after.as_deref().and_then(|v| parse_retry_after(v, now / 1000));
                let made = (job.attempt_count + 1 - job.retry_base).max(1) as u32;
                match self.ctx.retry.next_delay(made, retry_after, jitter()) {
                    Some(delay) => NextState::Retry(now + delay.as_millis() as i64),
                    None => NextState::Dead,
                }
            }
        }
    }

    /// Hands the attempt, the delivery's next state and the circuit (now `after`) to the
    /// result writer.
    fn record(
        &self,
        job: Job,
        started_at: i64,
        outcome: SendOutcome,
        next: NextState,
        after: CircuitState,
        now: i64,
    ) {
        let row = AttemptRow {
            id: 0,
            delivery_id: job.delivery_id.clone(),
            attempt: job.attempt_count + 1,
            started_at,
            duration_ms: outcome.duration_ms,
            status_code: outcome.status.map(i32::from),
            response_body: outcome.response_body,
            error: outcome.error,
        };
        let succeeded = matches!(next, NextState::Succeeded);
        let circuit = CircuitUpdate {
            endpoint_id: self.cfg.id.clone(),
            state: after,
            consecutive_failures: self.breaker.consecutive_failures as i32,
            open_until: self.breaker.open_until.filter(|_| after != CircuitState::Closed),
            succeeded_at: succeeded.then_some(now),
            failed_at: (!succeeded).then_some(now),
        };
        self.writer.do_send(Record {
            updates: vec![DeliveryUpdate { delivery_id: job.delivery_id, attempt: Some(row), next }],
            circuit: Some(circuit),
            wake_scheduler: self.cfg.fifo,
        });
    }

    fn circuit_changed(&mut self, before: CircuitState, after: CircuitState) {
        if after == CircuitState::Open {
            log::warn!(
                "endpoint {}: circuit opened after {} consecutive failures, until {:?}",
                self.cfg.id,
                self.breaker.consecutive_failures,
                self.breaker.open_until.map(crate::timefmt::rfc3339)
            );
        } else {
            log::info!("endpoint {}: circuit {} (was {})", self.cfg.id, after.as_str(), before.as_str());
        }
        self.count_open(after != CircuitState::Closed);
    }

    /// Keeps the open-circuits gauge equal to the actors whose circuit is not closed.
    fn count_open(&mut self, open: bool) {
        if open != self.counted_open {
            let gauge = &self.ctx.metrics.open_circuits;
            if open {
                gauge.inc();
            } else {
                gauge.dec();
            }
            self.counted_open = open;
        }
    }

    fn count_outcome(&self, next: &NextState, duration_ms: i64) {
        let m = &self.ctx.metrics;
        m.observe_attempt(duration_ms);
        let counter = match next {
            NextState::Succeeded => &m.deliveries_succeeded,
            NextState::Failed => &m.deliveries_failed,
            NextState::Dead => &m.deliveries_dead,
            NextState::Retry(_) | NextState::Release(_) => &m.attempts_retried,
        };
        counter.inc();
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A circuit that was open when this actor started counts from the start.
        self.count_open(self.breaker.state(now_ms()) != CircuitState::Closed);
        let renew = (self.ctx.settings.delivery.lease / 3).max(Duration::from_millis(100));
        ctx.run_interval(renew, |act, _| act.renew_leases());
        let idle_check = (self.ctx.settings.delivery.idle_actor_ttl / 4)
            .clamp(Duration::from_millis(25), Duration::from_secs(30));
        ctx.run_interval(idle_check, EndpointActor::check_idle);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.count_open(false);
        if self.full {
            // Its waiting work goes back to general claims.
            self.ctx.full_endpoints.set(&self.cfg.id, false);
            self.scheduler.do_send(WakeAt(0));
        }
    }
}

impl Handler<Enqueue> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        self.received += 1;
        self.idle_reported = false;
        self.last_busy = Instant::now();
        if msg.endpoint.version > self.cfg.version {
            self.cfg = msg.endpoint;
        }
        let mut overflow = Vec::new();
        for job in msg.jobs {
            if !self.held.insert(job.delivery_id.clone()) {
                continue;
            }
            self.seen_bytes += job.body.len() as u64;
            self.seen_jobs += 1;
            let room = self.ctx.settings.delivery.queue_bytes.saturating_sub(self.held_bytes);
            if job.body.len() > room && self.held_bytes > 0 {
                self.held.remove(&job.delivery_id);
                overflow.push(DeliveryUpdate {
                    delivery_id: job.delivery_id,
                    attempt: None,
                    next: NextState::Release(now_ms()),
                });
            } else {
                self.held_bytes += job.body.len();
                self.queue.push_back(job);
            }
        }
        if !overflow.is_empty() {
            self.writer.do_send(Record { updates: overflow, circuit: None, wake_scheduler: false });
            self.full = true;
            self.ctx.full_endpoints.set(&self.cfg.id, true);
        }
        self.pump(ctx);
    }
}

impl Handler<Configure> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Configure, ctx: &mut Context<Self>) {
        if msg.0.version >= self.cfg.version {
            self.cfg = msg.0;
            self.pump(ctx);
        }
    }
}

impl Handler<Retire> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Retire, ctx: &mut Context<Self>) {
        // Queued work is given back; work in flight keeps its lease until its result is
        // written, so nothing is sent twice if the endpoint comes straight back.
        let queued: Vec<String> = self
            .queue
            .drain(..)
            .map(|job| {
                self.held_bytes -= job.body.len();
                job.delivery_id
            })
            .collect();
        for id in &queued {
            self.held.remove(id);
        }
        self.release_ids(queued);
        let give_up = msg.give_up || self.retired.as_ref().is_some_and(|r| r.give_up);
        self.retired = Some(Retire { give_up });
        self.finish_retiring(ctx);
    }
}

impl Handler<Refilled> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Refilled, _: &mut Context<Self>) {
        self.refilling = false;
        // The scheduler clears the mark when the backlog is done.
        self.full = self.ctx.full_endpoints.contains(&self.cfg.id);
        self.check_room();
    }
}

impl Handler<Pump> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Pump, ctx: &mut Context<Self>) {
        self.pump(ctx);
    }
}

/// Test builds only: the actor panics, as a bug would.
#[cfg(feature = "fault-injection")]
impl Handler<super::messages::Panic> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: super::messages::Panic, _: &mut Context<Self>) {
        panic!("endpoint {}: injected fault", self.cfg.id);
    }
}

impl Handler<Stop> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        // Nothing was sent to this actor since it reported idle, so it holds nothing.
        ctx.stop();
    }
}
