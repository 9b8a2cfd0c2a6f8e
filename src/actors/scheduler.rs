//! Claims due deliveries from the store (retries, work released by an open circuit, work
//! published on other nodes for endpoints this node owns, and whatever a crashed node left
//! behind once its leases lapse) and hands them to the Registry; says in the store that
//! this node is alive and, in a cluster, renews the endpoints it owns; disables endpoints
//! that only fail.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use std::collections::HashSet;

use super::messages::{Owned, WakeAt};
use super::ownership::rendezvous;
use super::registry::Registry;
use super::{DeliveryContext, dispatches};
use crate::ids::now_ms;
use crate::store::deliveries::{self, ClaimScope, Claimable};
use crate::store::events::NewEvent;
use crate::store::{endpoints, owners, write_txn};

/// The safety net: claim at least this often even when nothing asked for it.
const TICK: Duration = Duration::from_secs(1);
const CLAIM_BATCH: i64 = 500;

pub struct Scheduler {
    ctx: Arc<DeliveryContext>,
    registry: Addr<Registry>,
    /// Told of events a replay re-published.
    hub: Addr<super::stream_hub::StreamHub>,
    claiming: bool,
    claim_again: bool,
    /// When claims last looked at lapsed leases too.
    expired_checked: Option<std::time::Instant>,
    /// The earliest wake-up already planned, and its timer.
    planned: Option<(i64, SpawnHandle)>,
    renewing: bool,
    renew_again: bool,
    /// Shutting down: no more claims or renewals.
    stopped: bool,
}

/// The node is shutting down: claim and renew nothing more.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopWork;

/// An endpoint was created or changed somewhere in the cluster: renew ownership now, so a
/// new or re-enabled endpoint gets its owner without waiting for the next round.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewOwnership;

impl Scheduler {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        registry: Addr<Registry>,
        hub: Addr<super::stream_hub::StreamHub>,
    ) -> Self {
        Self {
            ctx,
            registry,
            hub,
            claiming: false,
            claim_again: false,
            expired_checked: None,
            planned: None,
            renewing: false,
            renew_again: false,
            stopped: false,
        }
    }

    fn claim(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        if self.claiming {
            self.claim_again = true;
            return;
        }
        self.claiming = true;
        // Lapsed leases are rare (a node died) and finding them reads every held row, so
        // they are looked for a few times per lease, not on every claim.
        let every = (self.ctx.settings.delivery.lease / 3).clamp(Duration::from_millis(100), TICK * 5);
        let expired = self.expired_checked.is_none_or(|at| at.elapsed() >= every);
        if expired {
            self.expired_checked = Some(std::time::Instant::now());
        }
        let delivery_ctx = self.ctx.clone();
        let work = async move {
            let lease = delivery_ctx.lease();
            let full = delivery_ctx.full_endpoints.list();
            let for_dispatch = delivery_ctx.clone();
            delivery_ctx
                .db
                .run(move |conn| {
                    let (now, scope) = (now_ms(), ClaimScope::AllBut(&full));
                    if let Err(e) = deliveries::promote_queue_heads(conn, now) {
                        // FIFO queues wait for the next round; other work goes on now.
                        log::warn!("could not date FIFO queue heads: {e}");
                    }
                    let mut ids =
                        deliveries::claim_due(conn, &lease, now, CLAIM_BATCH, Claimable::Unleased, scope)?;
                    let room = CLAIM_BATCH - ids.len() as i64;
                    if expired && room > 0 {
                        ids.extend(deliveries::claim_due(
                            conn,
                            &lease,
                            now,
                            room,
                            Claimable::Expired,
                            scope,
                        )?);
                    }
                    Ok((ids.len(), load_dispatches(conn, &ids, &for_dispatch)?))
                })
                .await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            act.claiming = false;
            match result {
                Ok((claimed, batches)) => {
                    for batch in batches {
                        act.registry.do_send(batch);
                    }
                    if claimed as i64 == CLAIM_BATCH || std::mem::take(&mut act.claim_again) {
                        act.claim(ctx);
                    }
                }
                Err(e) => log::warn!("claiming due deliveries failed: {e}"),
            }
        }));
    }

    /// Says in the nodes table that this node is alive and, in a cluster, takes or renews
    /// the endpoints that belong on it (rendezvous over the live nodes) and hands back the
    /// ones that belong elsewhere now. The Registry hears the outcome.
    fn renew_ownership(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        if self.renewing {
            self.renew_again = true;
            return;
        }
        self.renewing = true;
        let delivery_ctx = self.ctx.clone();
        let work = async move {
            let (me, started_at, lease_ms) =
                (delivery_ctx.node_id.clone(), delivery_ctx.started_at, delivery_ctx.lease_ms());
            let cluster = delivery_ctx.ownership.cluster();
            let metrics = delivery_ctx.metrics.clone();
            delivery_ctx
                .db
                .run(move |conn| {
                    let now = now_ms();
                    crate::store::nodes::heartbeat(conn, &me, started_at, now)?;
                    if !cluster {
                        return Ok(None);
                    }
                    // Heartbeats come every third of a lease: a node silent for a whole
                    // lease is gone, and its rows expire about then too.
                    let nodes = owners::live_nodes(conn, now - lease_ms)?;
                    metrics.nodes_alive.set((nodes.len() as i64).max(1));
                    let wanted: Vec<String> = owners::active_endpoints(conn)?
                        .into_iter()
                        .filter(|ep| rendezvous(&nodes, ep) == Some(me.as_str()))
                        .collect();
                    let owned: HashSet<String> =
                        owners::acquire(conn, &me, &wanted, now, now + lease_ms)?.into_iter().collect();
                    let give_up =
                        owners::rows_of(conn, &me)?.into_iter().filter(|id| !owned.contains(id)).collect();
                    Ok(Some((Owned { owned, give_up }, now)))
                })
                .await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            act.renewing = false;
            match result {
                Ok(Some((renewed, at))) => act.owned(renewed, at, ctx),
                Ok(None) => {}
                Err(e) => log::warn!("renewing this node's endpoints failed: {e}"),
            }
            if std::mem::take(&mut act.renew_again) {
                act.renew_ownership(ctx);
            }
        }));
    }

    /// Once a second: if some active endpoint has no owner (a new one whose announcement
    /// was missed, or one whose owner died), renew now instead of at the next round.
    fn check_unowned(&mut self, ctx: &mut Context<Self>) {
        if self.stopped || self.renewing || !self.ctx.ownership.cluster() {
            return;
        }
        let db = self.ctx.db.clone();
        let work = async move { db.run(|conn| owners::any_unowned(conn, now_ms())).await };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            if let Ok(true) = result {
                act.renew_ownership(ctx);
            }
        }));
    }

    /// What this node owns as of a renewal made at `at`.
    fn owned(&mut self, renewed: Owned, at: i64, ctx: &mut Context<Self>) {
        // Counted on for two thirds of the lease: renewed (every third) well before any
        // other node may take the rows over.
        let valid_until = at + self.ctx.lease_ms() * 2 / 3;
        let gained = self
            .ctx
            .ownership
            .snapshot(at)
            .is_none_or(|before| renewed.owned.iter().any(|id| !before.contains(id)));
        self.ctx.ownership.set(renewed.owned.clone(), valid_until);
        self.registry.do_send(renewed);
        if gained {
            self.claim(ctx);
        }
    }

    /// Endpoints failing without a success for `delivery.disable_after` are disabled, and
    /// their organisation hears of it through an `endpoint.disabled` event. The change and
    /// the event commit together, and the change is conditional: however many nodes look,
    /// one disables the endpoint and publishes once.
    fn disable_failing(&self, ctx: &mut Context<Self>) {
        let delivery_ctx = self.ctx.clone();
        let work = async move {
            let cutoff = now_ms() - delivery_ctx.settings.delivery.disable_after.as_millis() as i64;
            let lease = delivery_ctx.lease();
            delivery_ctx
                .db
                .run(move |conn| {
                    let mut disabled = Vec::new();
                    for candidate in endpoints::failing_since_before(conn, cutoff)? {
                        let done = write_txn(conn, |c| {
                            let now = now_ms();
                            let Some(ep) = endpoints::disable_if_failing(c, &candidate.id, cutoff, now)?
                            else {
                                return Ok(None);
                            };
                            let data = serde_json::json!({
                                "endpoint_id": ep.id,
                                "url": ep.url,
                                "failing_since": ep.failing_since.map(crate::timefmt::rfc3339),
                            });
                            let event = NewEvent {
                                id: crate::ids::new_id("evt"),
                                org_id: ep.org_id.clone(),
                                event_type: "endpoint.disabled".into(),
                                payload: data.to_string(),
                                correlation_id: None,
                                source_id: None,
                                created_at: now,
                                version: 1,
                                latest_version: None,
                            };
                            let published = crate::store::events::publish_in_txn(c, &event, None, &lease)?;
                            Ok(Some((ep, published)))
                        })?;
                        disabled.extend(done);
                    }
                    Ok(disabled)
                })
                .await
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, _| match result {
            Ok(disabled) => {
                for (ep, published) in disabled {
                    log::warn!("endpoint {} disabled: no success since {:?}", ep.id, ep.failing_since);
                    act.registry.do_send(super::messages::EndpointGone(ep.id.clone()));
                    super::announce(&act.ctx, &act.registry, &act.hub, &published);
                }
            }
            Err(e) => log::warn!("checking failing endpoints failed: {e}"),
        }));
    }
}

/// What the actors need to send the claimed deliveries, grouped by endpoint.
fn load_dispatches(
    conn: &mut crate::store::DbConn,
    ids: &[String],
    ctx: &DeliveryContext,
) -> Result<Vec<super::messages::Dispatch>, crate::store::StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(dispatches(deliveries::load_jobs(conn, ids)?, ctx))
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // On a cluster the first claim comes once the ownership renewal has answered.
        self.renew_ownership(ctx);
        self.claim(ctx);
        ctx.run_interval(TICK, |act, ctx| {
            act.claim(ctx);
            act.check_unowned(ctx);
        });
        let lease = self.ctx.settings.delivery.lease;
        ctx.run_interval((lease / 3).max(Duration::from_millis(100)), Scheduler::renew_ownership);
        let disable_check = (self.ctx.settings.delivery.disable_after / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(60));
        ctx.run_interval(disable_check, |act, ctx| act.disable_failing(ctx));
    }
}

/// An endpoint actor that sent work back for want of room has room again: claim up to
/// `rows` of its waiting deliveries, in due order. When fewer are left, its backlog is done
/// and general claims take it in again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refill {
    pub endpoint_id: String,
    pub rows: i64,
}

impl Handler<Refill> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: Refill, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let delivery_ctx = self.ctx.clone();
        let id = msg.endpoint_id.clone();
        let work = async move {
            let lease = delivery_ctx.lease();
            let for_dispatch = delivery_ctx.clone();
            delivery_ctx
                .db
                .run(move |conn| {
                    let scope = ClaimScope::Only(&id);
                    let ids =
                        deliveries::claim_due(conn, &lease, now_ms(), msg.rows, Claimable::Unleased, scope)?;
                    Ok((ids.len() as i64, load_dispatches(conn, &ids, &for_dispatch)?))
                })
                .await
        };
        let (endpoint_id, rows) = (msg.endpoint_id, msg.rows);
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            let claimed = match result {
                Ok((claimed, batches)) => {
                    for batch in batches {
                        act.registry.do_send(batch);
                    }
                    claimed
                }
                Err(e) => {
                    log::warn!("refilling endpoint {endpoint_id} failed: {e}");
                    0
                }
            };
            if claimed < rows {
                act.ctx.full_endpoints.set(&endpoint_id, false);
            }
            // Through the Registry, after the work it claimed: the actor counts that work
            // before it judges its room again.
            act.registry.do_send(super::messages::RefillDone(endpoint_id));
        }));
    }
}

impl Handler<StopWork> for Scheduler {
    type Result = ();

    fn handle(&mut self, _: StopWork, _: &mut Context<Self>) {
        self.stopped = true;
    }
}

impl Handler<RenewOwnership> for Scheduler {
    type Result = ();

    fn handle(&mut self, _: RenewOwnership, ctx: &mut Context<Self>) {
        if self.ctx.ownership.cluster() {
            self.renew_ownership(ctx);
        }
    }
}

impl Handler<WakeAt> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WakeAt, ctx: &mut Context<Self>) {
        let now = now_ms();
        if msg.0 <= now {
            self.claim(ctx);
            return;
        }
        if let Some((at, handle)) = self.planned {
            if at <= msg.0 {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(Duration::from_millis((msg.0 - now) as u64), |act, ctx| {
            act.planned = None;
            act.claim(ctx);
        });
        self.planned = Some((msg.0, handle));
    }
}
