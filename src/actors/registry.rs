//! The endpoint supervisor: one `EndpointActor` per endpoint with work on this node (in a
//! cluster, only endpoints this node owns), started on first need on one of the delivery
//! arbiters (by a hash of its id, so sending uses every core), replaced if it died (a panic
//! ends its task: the Registry notices within a second and hands its work to a new one),
//! retired when its endpoint is deleted, disabled or moves to another node, stopped when
//! idle. Changes made on any node reach the actor: announced by the cluster listener, and
//! checked against the store's version every second as the safety net.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use actix::{Arbiter, ArbiterHandle};

use super::DeliveryContext;
use super::EndpointSnapshot;
use super::endpoint::{Configure, EndpointActor, Enqueue, Idle, Pump, Refilled, Retire, Stop};
use super::messages::{Dispatch, EndpointChanged, EndpointGone, EndpointUpdated, Owned, RefillDone, WakeAt};
use super::writer::ResultWriter;
use crate::delivery::sender::build_client;

pub struct Registry {
    ctx: Arc<DeliveryContext>,
    writer: Addr<ResultWriter>,
    scheduler: Recipient<WakeAt>,
    refill: Recipient<super::scheduler::Refill>,
    arbiters: Arbiters,
    endpoints: HashMap<String, ActorEntry>,
    /// Endpoints whose actor died and whose claims are being handed back: no new actor
    /// starts for them until that is done (it would lose its work to the release).
    recovering: std::collections::HashSet<String>,
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

/// The node is shutting down: every endpoint actor drops its queue (its attempts in flight
/// finish and are written) and no new one starts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetireAll;

impl Registry {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        writer: Addr<ResultWriter>,
        scheduler: Recipient<WakeAt>,
        refill: Recipient<super::scheduler::Refill>,
    ) -> Self {
        Self {
            writer,
            scheduler,
            refill,
            arbiters: Arbiters::start(ctx.settings.delivery.arbiters),
            endpoints: HashMap::new(),
            recovering: Default::default(),
            stopping: false,
            ctx,
        }
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
        self.ctx.metrics.endpoint_actors.set(self.endpoints.len() as i64);
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
            Err(e) => log::warn!("could not reload endpoints: {e}"),
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

    /// Notices endpoint actors that died (a panic ends an actor's task) and hands their
    /// work to new ones at once instead of after the lease: results the dead actor already
    /// gave the writer are written first, then what it held is released and claimed again,
    /// which starts its replacement.
    fn supervise(&mut self, ctx: &mut Context<Self>) {
        let dead: Vec<String> =
            self.endpoints.iter().filter(|(_, e)| !e.addr.connected()).map(|(id, _)| id.clone()).collect();
        if dead.is_empty() {
            return;
        }
        for id in &dead {
            self.endpoints.remove(id);
            log::error!("endpoint actor {id} died; its work goes to a new one");
            self.ctx.metrics.endpoint_actor_restarts.inc();
        }
        self.count_actors();
        self.recovering.extend(dead.iter().cloned());
        let (delivery_ctx, writer) = (self.ctx.clone(), self.writer.clone());
        let release = async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            writer.do_send(super::writer::Drain(tx));
            let _ = rx.await;
            let (owner, ids) = (delivery_ctx.node_id.clone(), dead.clone());
            let released = delivery_ctx
                .db
                .run(move |conn| {
                    let mut n = 0;
                    for id in &ids {
                        n += crate::store::deliveries::release_endpoint(conn, &owner, id)?;
                    }
                    Ok(n)
                })
                .await;
            match released {
                Ok(n) => log::info!("released {n} deliveries held by endpoint actors that died"),
                Err(e) => {
                    log::warn!("could not release a dead actor's work ({e}); it lapses with its lease");
                }
            }
            dead
        };
        ctx.spawn(release.into_actor(self).map(|dead, act, _| {
            for id in &dead {
                act.recovering.remove(id);
            }
            act.scheduler.do_send(WakeAt(0));
        }));
    }

    /// Starts an endpoint's actor on its arbiter.
    fn start_actor(&self, endpoint: Arc<EndpointSnapshot>, registry: Recipient<Idle>) -> Addr<EndpointActor> {
        let (ctx, writer, scheduler, refill) =
            (self.ctx.clone(), self.writer.clone(), self.scheduler.clone(), self.refill.clone());
        let arbiter = self.arbiters.for_endpoint(&endpoint.id);
        EndpointActor::start_in_arbiter(&arbiter, move |_| {
            let client = thread_client(&ctx);
            EndpointActor::new(ctx, client, endpoint, writer, scheduler, refill, registry)
        })
    }
}

thread_local! {
    /// One delivery client (and connection pool) per arbiter thread: awc clients are not
    /// `Send`, and a thread's actors share its connections.
    static CLIENT: std::cell::RefCell<Option<awc::Client>> = const { std::cell::RefCell::new(None) };
}

fn thread_client(ctx: &DeliveryContext) -> awc::Client {
    CLIENT.with(|c| {
        c.borrow_mut().get_or_insert_with(|| build_client(ctx.policy.clone(), &ctx.settings)).clone()
    })
}

/// The threads endpoint actors run on, stopped with the Registry.
struct Arbiters(Vec<Arbiter>);

impl Arbiters {
    /// `n` arbiters; 0: one per core.
    fn start(n: usize) -> Self {
        let n =
            if n == 0 { std::thread::available_parallelism().map_or(1, std::num::NonZero::get) } else { n };
        Self((0..n).map(|_| Arbiter::new()).collect())
    }

    /// An endpoint's actor always starts on the same arbiter (a hash of its id).
    fn for_endpoint(&self, id: &str) -> ArbiterHandle {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        id.hash(&mut h);
        self.0[(h.finish() % self.0.len() as u64) as usize].handle()
    }
}

impl Drop for Arbiters {
    fn drop(&mut self) {
        for arbiter in &self.0 {
            arbiter.stop();
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Actors that died, and (the safety net under endpoint-change announcements from
        // other nodes, or a change that overtook the work it applies to) stale settings.
        ctx.run_interval(VERSION_CHECK, |act, ctx| {
            act.supervise(ctx);
            act.check_versions(ctx);
        });
    }
}

impl Handler<Dispatch> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Dispatch, ctx: &mut Context<Self>) {
        let id = msg.endpoint.id.clone();
        if self.endpoints.get(&id).is_some_and(|a| !a.addr.connected()) {
            // Died since the last check: recovered the same way (its claims handed back first).
            self.supervise(ctx);
        }
        let handing_over = !self.endpoints.contains_key(&id)
            && self.ctx.ownership.snapshot(crate::ids::now_ms()).is_some_and(|owned| !owned.contains(&id));
        // Disabled or deleted meanwhile; this node is stopping; its dead actor's claims are
        // being handed back; or claimed while this node was handing the endpoint over (or
        // its ownership went stale): no actor takes this work, it goes back to the store and
        // is claimed again. (Only these jobs: an attempt another actor has in flight keeps its
        // lease.)
        if !msg.endpoint.active || self.stopping || self.recovering.contains(&id) || handing_over {
            EndpointActor::release_held(&self.ctx, msg.jobs.into_iter().map(|j| j.delivery_id).collect());
            return;
        }
        if !self.endpoints.contains_key(&id) {
            let version = msg.endpoint.version;
            let addr = self.start_actor(msg.endpoint.clone(), ctx.address().recipient());
            self.endpoints.insert(id.clone(), ActorEntry { addr, sent: 0, version });
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

/// Test builds only: an endpoint's actor panics, as a bug would.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "bool")]
pub struct PanicEndpoint(pub String);

#[cfg(feature = "fault-injection")]
impl Handler<PanicEndpoint> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: PanicEndpoint, _: &mut Context<Self>) -> bool {
        self.endpoints.get(&msg.0).map(|e| e.addr.do_send(super::messages::Panic)).is_some()
    }
}
