//! The supervisor: one `EndpointActor` per endpoint with work on this node (in a cluster,
//! only endpoints this node owns), started on first need, replaced if it died (a panic ends
//! its task), retired when its endpoint is deleted, disabled or moves to another node,
//! stopped when idle. Changes made on any node reach the actor: announced by the cluster
//! listener, and checked against the store's version every second as the safety net.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::DeliveryContext;
use super::EndpointSnapshot;
use super::endpoint::{Configure, EndpointActor, Enqueue, Idle, Pump, Refilled, Retire, Stop};
use super::messages::{Dispatch, EndpointChanged, EndpointGone, EndpointUpdated, Owned, RefillDone, WakeAt};
use super::sse_session::{Session, StreamEvent, comment};
use super::writer::ResultWriter;
use crate::delivery::sender::build_client;
use crate::store::events;

pub struct Registry {
    ctx: Arc<DeliveryContext>,
    writer: Addr<ResultWriter>,
    scheduler: Recipient<WakeAt>,
    refill: Recipient<super::scheduler::Refill>,
    client: Option<awc::Client>,
    endpoints: HashMap<String, ActorEntry>,
    streams: HashMap<u64, Arc<Session>>,
    /// Every event with seq <= hub_cursor has been fanned out to the open streams.
    hub_cursor: i64,
    hub_reading: bool,
    hub_read_again: bool,
    /// When the last hub read started, and whether a later one is planned.
    hub_read_at: std::time::Instant,
    hub_read_planned: bool,
    /// Shutting down: work handed over now goes back to the store instead of to an actor.
    stopping: bool,
}

/// One endpoint actor as the Registry knows it.
struct ActorEntry {
    addr: Addr<EndpointActor>,
    /// `Enqueue`s sent to it: it may stop when it has received them all and is idle.
    sent: u64,
    /// The endpoint version it was last given.
    version: i64,
}

/// How often actors' endpoint versions are compared with the store's.
const VERSION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// A stream asks for live events (those after the hub cursor H); the answer is the range
/// it must replay from the store first, if its client missed events up to H, or `Err` when
/// its organisation already holds `max` open streams on this node.
#[derive(Message)]
#[rtype(result = "Result<Option<(i64, i64)>, StreamQuotaReached>")]
pub struct StreamSubscription {
    pub session: Arc<Session>,
    pub max: usize,
}

/// The organisation holds its `max_streams` open streams already.
#[derive(Debug)]
pub struct StreamQuotaReached;

/// The node is shutting down: every endpoint actor drops its queue (its attempts in flight
/// finish and are written) and no new one starts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetireAll;

/// The node is shutting down: every stream ends now (clients reconnect, to another node).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStreams;

#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamClosed(pub u64);

/// Events up to this seq are committed (published here, or announced by another node).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Committed(pub i64);

/// Streams get events at least this promptly even if a commit signal was lost.
const HUB_SAFETY_READ: std::time::Duration = std::time::Duration::from_secs(1);

/// The hub reads at most once per this much per open stream, and at least every
/// `HUB_MAX_GAP`: 10,000 streams get their events in 20 ms rounds, 100 in 0.2 ms ones.
const HUB_GAP_PER_STREAM: std::time::Duration = std::time::Duration::from_micros(2);
const HUB_MAX_GAP: std::time::Duration = std::time::Duration::from_millis(25);
/// Events read per hub round.
const HUB_BATCH: i64 = 1000;

impl Registry {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        writer: Addr<ResultWriter>,
        scheduler: Recipient<WakeAt>,
        refill: Recipient<super::scheduler::Refill>,
        hub_cursor: i64,
    ) -> Self {
        Self {
            ctx,
            writer,
            scheduler,
            refill,
            client: None,
            endpoints: HashMap::new(),
            streams: HashMap::new(),
            hub_cursor,
            hub_reading: false,
            hub_read_again: false,
            hub_read_at: std::time::Instant::now(),
            hub_read_planned: false,
            stopping: false,
        }
    }

    /// Reads what committed after the hub cursor, once, and hands it to matching streams.
    fn read_committed(&mut self, ctx: &mut Context<Self>) {
        if self.hub_reading {
            self.hub_read_again = true;
            return;
        }
        if self.hub_read_planned {
            return;
        }
        // With many streams, events that commit close together go out together: one write
        // per connection instead of one per event, which is what a stream costs the most.
        let gap = (HUB_GAP_PER_STREAM * self.streams.len() as u32).min(HUB_MAX_GAP);
        let since = self.hub_read_at.elapsed();
        if since < gap {
            self.hub_read_planned = true;
            ctx.run_later(gap - since, |act, ctx| {
                act.hub_read_planned = false;
                act.read_committed(ctx);
            });
            return;
        }
        self.hub_read_at = std::time::Instant::now();
        self.hub_reading = true;
        let (db, after) = (self.ctx.db.clone(), self.hub_cursor);
        let read = async move { db.run(move |conn| events::committed_after(conn, after, HUB_BATCH)).await };
        ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
            act.hub_reading = false;
            match result {
                Ok(batch) => {
                    let full = batch.len() as i64 == HUB_BATCH;
                    act.hub_cursor = batch.last().map_or(act.hub_cursor, |e| e.seq);
                    // Only events some open stream's organisation can see are encoded.
                    let orgs: std::collections::HashSet<&str> =
                        act.streams.values().map(|s| s.org_id()).collect();
                    let events: Vec<Arc<StreamEvent>> = batch
                        .iter()
                        .filter(|e| orgs.contains(e.org_id.as_str()))
                        .map(|e| Arc::new(StreamEvent::new(e)))
                        .collect();
                    let mut over = Vec::new();
                    for s in act.streams.values() {
                        if !s.offer(&events) {
                            over.push(s.id);
                        }
                    }
                    for id in over {
                        act.streams.remove(&id);
                    }
                    if full || std::mem::take(&mut act.hub_read_again) {
                        act.read_committed(ctx);
                    }
                }
                Err(e) => {
                    log::warn!("stream hub could not read events: {}", e.message);
                    ctx.run_later(std::time::Duration::from_millis(500), |act, ctx| act.read_committed(ctx));
                }
            }
        }));
    }

    /// Stops an endpoint's actor (it finishes what is in flight first).
    fn retire(&mut self, id: &str, give_up: bool) {
        match self.endpoints.remove(id) {
            Some(entry) => entry.addr.do_send(Retire { give_up }),
            None if give_up => self.ctx.give_up(id),
            None => {}
        }
        self.count_actors();
    }

    fn count_actors(&self) {
        self.ctx
            .metrics
            .endpoint_actors
            .store(self.endpoints.len() as i64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads these endpoints again and brings their actors up to date (or retires them).
    fn reload(&mut self, ids: Vec<String>, ctx: &mut Context<Self>) {
        let ids: Vec<String> = ids.into_iter().filter(|id| self.endpoints.contains_key(id)).collect();
        if ids.is_empty() {
            return;
        }
        let db = self.ctx.db.clone();
        let read = async move {
            db.run(move |conn| {
                let mut rows = Vec::with_capacity(ids.len());
                for id in &ids {
                    rows.push((id.clone(), crate::store::endpoints::find_any(conn, id)?));
                }
                Ok(rows)
            })
            .await
        };
        ctx.spawn(read.into_actor(self).map(move |result, act, _| match result {
            Ok(rows) => {
                let now = crate::ids::now_ms();
                for (id, row) in rows {
                    let snapshot = row.map(|ep| Arc::new(EndpointSnapshot::from_row(&ep, &act.ctx, now)));
                    act.apply(&id, snapshot);
                }
            }
            Err(e) => log::warn!("could not reload endpoints: {}", e.message),
        }));
    }

    /// Gives an endpoint's actor its newest settings, or retires it when the endpoint is
    /// gone or no longer active.
    fn apply(&mut self, id: &str, snapshot: Option<Arc<EndpointSnapshot>>) {
        match snapshot {
            Some(s) if s.active => {
                if let Some(entry) = self.endpoints.get_mut(id)
                    && s.version > entry.version
                {
                    entry.version = s.version;
                    entry.addr.do_send(Configure(s));
                }
            }
            _ => self.retire(id, true),
        }
    }

    /// Reloads every endpoint whose stored version is newer than its actor's (a change
    /// whose announcement this node missed).
    fn check_versions(&mut self, ctx: &mut Context<Self>) {
        if self.endpoints.is_empty() {
            return;
        }
        let ids: Vec<String> = self.endpoints.keys().cloned().collect();
        let db = self.ctx.db.clone();
        let read = async move { db.run(move |conn| crate::store::endpoints::versions(conn, &ids)).await };
        ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
            if let Ok(versions) = result {
                let stale = versions
                    .into_iter()
                    .filter(|(id, v)| act.endpoints.get(id).is_some_and(|e| *v > e.version))
                    .map(|(id, _)| id)
                    .collect();
                act.reload(stale, ctx);
            }
        }));
    }

    fn client(&mut self) -> awc::Client {
        let (policy, timeout) = (self.ctx.policy.clone(), self.ctx.settings.delivery.timeout);
        self.client.get_or_insert_with(|| build_client(policy, timeout)).clone()
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Actors of deleted endpoints go when their work is done; forget dead addresses.
        // A dead actor (a panic ends its task) leaves claims behind that nobody renews:
        // they are claimable again once their lease runs out.
        ctx.run_interval(std::time::Duration::from_secs(30), |act, _| {
            act.endpoints.retain(|_, entry| entry.addr.connected());
            act.count_actors();
        });
        // The safety net under endpoint-change announcements (from other nodes, or a change
        // that overtook the work it applies to).
        ctx.run_interval(VERSION_CHECK, |act, ctx| act.check_versions(ctx));
        // One timer for every stream's keep-alive comment; a write to a closed connection
        // ends its body, which takes the stream off the hub.
        let keep_alive = self.ctx.settings.sse.keep_alive;
        ctx.run_interval(keep_alive, |act, _| {
            let frame = comment("keep-alive");
            act.streams.retain(|_, s| s.comment(&frame));
        });
        // The safety net under commit signals and cluster notifications.
        ctx.run_interval(HUB_SAFETY_READ, |act, ctx| {
            if !act.streams.is_empty() {
                act.read_committed(ctx);
            }
        });
    }
}

impl Handler<Dispatch> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Dispatch, ctx: &mut Context<Self>) {
        if !msg.endpoint.active || self.stopping {
            // Disabled or deleted meanwhile, or this node is stopping: give this work back
            // so it is not held here; it is claimed again (if the endpoint is active). (Only these jobs: an
            // attempt another actor has in flight keeps its lease.)
            EndpointActor::release_held(&self.ctx, msg.jobs.into_iter().map(|j| j.delivery_id).collect());
            return;
        }
        let id = msg.endpoint.id.clone();
        if !self.endpoints.contains_key(&id)
            && self.ctx.ownership.snapshot(crate::ids::now_ms()).is_some_and(|owned| !owned.contains(&id))
        {
            // Claimed while this node was handing the endpoint over (or its ownership went
            // stale): no new actor here; the work goes back for the endpoint's next owner.
            EndpointActor::release_held(&self.ctx, msg.jobs.into_iter().map(|j| j.delivery_id).collect());
            return;
        }
        let alive = self.endpoints.get(&id).is_some_and(|a| a.addr.connected());
        if !alive {
            if self.endpoints.remove(&id).is_some() {
                // What it held is renewed by nobody now: claimable again after its lease.
                log::error!("endpoint actor {id} died; starting a new one");
            }
            let actor = EndpointActor::new(
                self.ctx.clone(),
                self.client(),
                msg.endpoint.clone(),
                self.writer.clone(),
                self.scheduler.clone(),
                self.refill.clone(),
                ctx.address().recipient(),
            );
            let version = msg.endpoint.version;
            self.endpoints.insert(id.clone(), ActorEntry { addr: actor.start(), sent: 0, version });
            self.count_actors();
        }
        if let Some(entry) = self.endpoints.get_mut(&id) {
            entry.sent += 1;
            entry.version = entry.version.max(msg.endpoint.version);
            entry.addr.do_send(Enqueue { endpoint: msg.endpoint, jobs: msg.jobs });
        }
    }
}

impl Handler<EndpointUpdated> for Registry {
    type Result = ();

    fn handle(&mut self, msg: EndpointUpdated, _: &mut Context<Self>) {
        let id = msg.0.id.clone();
        self.apply(&id, Some(msg.0));
    }
}

impl Handler<EndpointChanged> for Registry {
    type Result = ();

    fn handle(&mut self, msg: EndpointChanged, ctx: &mut Context<Self>) {
        self.reload(vec![msg.0], ctx);
    }
}

impl Handler<Owned> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Owned, _: &mut Context<Self>) {
        let lost: Vec<String> =
            self.endpoints.keys().filter(|id| !msg.owned.contains(*id)).cloned().collect();
        for id in &lost {
            let give_up = msg.give_up.contains(id);
            if !give_up {
                log::warn!("endpoint {id}: this node no longer owns it; stopping its actor");
            }
            // An actor hands its endpoint back itself, once its attempts in flight are done.
            self.retire(id, give_up);
        }
        for id in msg.give_up.iter().filter(|id| !lost.contains(id)) {
            self.retire(id, true);
        }
        // Work held while the renewal was late goes out now.
        for entry in self.endpoints.values() {
            entry.addr.do_send(Pump);
        }
    }
}

impl Handler<RefillDone> for Registry {
    type Result = ();

    fn handle(&mut self, msg: RefillDone, _: &mut Context<Self>) {
        if let Some(entry) = self.endpoints.get(&msg.0) {
            entry.addr.do_send(Refilled);
        }
    }
}

impl Handler<Idle> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Idle, _: &mut Context<Self>) {
        // Equal counts: no Enqueue is on its way to the actor, and none will be sent once
        // it is off the map, so it can stop without dropping anything.
        if self.endpoints.get(&msg.endpoint_id).is_some_and(|e| e.addr == msg.addr && e.sent == msg.received)
            && let Some(entry) = self.endpoints.remove(&msg.endpoint_id)
        {
            entry.addr.do_send(Stop);
            self.count_actors();
        }
    }
}

impl Handler<EndpointGone> for Registry {
    type Result = ();

    fn handle(&mut self, msg: EndpointGone, _: &mut Context<Self>) {
        self.retire(&msg.0, true);
    }
}

impl Handler<StreamSubscription> for Registry {
    type Result = Result<Option<(i64, i64)>, StreamQuotaReached>;

    fn handle(&mut self, msg: StreamSubscription, _: &mut Context<Self>) -> Self::Result {
        let org = msg.session.org_id();
        if self.streams.values().filter(|s| s.org_id() == org).count() >= msg.max {
            msg.session.end(None);
            return Err(StreamQuotaReached);
        }
        let replay = msg.session.subscribed(self.hub_cursor);
        self.streams.insert(msg.session.id, msg.session);
        Ok(replay)
    }
}

impl Handler<StreamClosed> for Registry {
    type Result = ();

    fn handle(&mut self, msg: StreamClosed, _: &mut Context<Self>) {
        self.streams.remove(&msg.0);
    }
}

impl Handler<Committed> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Context<Self>) {
        if msg.0 <= self.hub_cursor {
            return;
        }
        if self.streams.is_empty() {
            // Commits are in seq order, so everything up to here is committed: nobody
            // listens, nothing to read.
            if !self.hub_reading {
                self.hub_cursor = msg.0;
            }
            return;
        }
        self.read_committed(ctx);
    }
}

impl Handler<RetireAll> for Registry {
    type Result = ();

    fn handle(&mut self, _: RetireAll, _: &mut Context<Self>) {
        self.stopping = true;
        for (_, entry) in self.endpoints.drain() {
            entry.addr.do_send(Retire { give_up: false });
        }
        self.count_actors();
    }
}

impl Handler<CloseStreams> for Registry {
    type Result = ();

    fn handle(&mut self, _: CloseStreams, _: &mut Context<Self>) {
        let last = comment("server shutting down; reconnect");
        for (_, s) in self.streams.drain() {
            s.end(Some(last.clone()));
        }
    }
}
