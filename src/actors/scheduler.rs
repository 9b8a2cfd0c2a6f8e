//! Claims due deliveries from the store (retries, work released by an open circuit, and
//! whatever a crashed node left behind once its leases lapse) and hands them to the
//! Registry; keeps this node's leases alive; disables endpoints that only fail.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::WakeAt;
use super::registry::Registry;
use super::{DeliveryContext, dispatches};
use crate::ids::now_ms;
use crate::store::deliveries::{self, Claimable};
use crate::store::endpoints;
use crate::store::events::NewEvent;

/// The safety net: claim at least this often even when nothing asked for it.
const TICK: Duration = Duration::from_secs(1);
const CLAIM_BATCH: i64 = 500;

pub struct Scheduler {
    ctx: Arc<DeliveryContext>,
    registry: Addr<Registry>,
    claiming: bool,
    claim_again: bool,
    /// When claims last looked at lapsed leases too.
    expired_checked: Option<std::time::Instant>,
    /// The earliest wake-up already planned, and its timer.
    planned: Option<(i64, SpawnHandle)>,
}

impl Scheduler {
    pub fn new(ctx: Arc<DeliveryContext>, registry: Addr<Registry>) -> Self {
        Self { ctx, registry, claiming: false, claim_again: false, expired_checked: None, planned: None }
    }

    fn claim(&mut self, ctx: &mut Context<Self>) {
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
        let engine = self.ctx.clone();
        let work = async move {
            let lease = engine.lease();
            let default_in_flight = engine.settings.delivery.max_in_flight;
            engine
                .db
                .run(move |conn| {
                    let now = now_ms();
                    let mut ids = deliveries::claim_due(conn, &lease, now, CLAIM_BATCH, Claimable::Unleased)?;
                    let room = CLAIM_BATCH - ids.len() as i64;
                    if expired && room > 0 {
                        ids.extend(deliveries::claim_due(conn, &lease, now, room, Claimable::Expired)?);
                    }
                    let claimed = ids.len();
                    let rows = if ids.is_empty() { Vec::new() } else { deliveries::load_jobs(conn, &ids)? };
                    Ok((claimed, dispatches(rows, default_in_flight)))
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
                Err(e) => log::warn!("claiming due deliveries failed: {}", e.message),
            }
        }));
    }

    /// Keeps this node's claims alive, and says in the nodes table that it is alive.
    fn renew_leases(&self, ctx: &mut Context<Self>) {
        let engine = self.ctx.clone();
        let work = async move {
            let lease = engine.lease();
            let started_at = engine.started_at;
            engine
                .db
                .run(move |conn| {
                    crate::store::nodes::heartbeat(conn, &lease.owner, started_at, now_ms())?;
                    deliveries::renew_leases(conn, &lease.owner, lease.expires_at)
                })
                .await
        };
        ctx.spawn(work.into_actor(self).map(|result, _, _| {
            if let Err(e) = result {
                log::warn!("renewing leases failed: {}", e.message);
            }
        }));
    }

    /// Endpoints failing without a success for `delivery.disable_after` are disabled, and
    /// their organisation hears of it through an `endpoint.disabled` event.
    fn disable_failing(&self, ctx: &mut Context<Self>) {
        let engine = self.ctx.clone();
        let registry = self.registry.clone();
        let work = async move {
            let cutoff = now_ms() - engine.settings.delivery.disable_after.as_millis() as i64;
            let lease = engine.lease();
            engine
                .db
                .run(move |conn| {
                    let mut disabled = Vec::new();
                    for mut ep in endpoints::failing_since_before(conn, cutoff)? {
                        let now = now_ms();
                        ep.status = "disabled".into();
                        ep.updated_at = now;
                        endpoints::save(conn, &ep)?;
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
                        };
                        let published = crate::store::events::publish(conn, &event, None, &lease)?;
                        disabled.push((ep, published));
                    }
                    Ok(disabled)
                })
                .await
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, _| match result {
            Ok(disabled) => {
                for (ep, published) in disabled {
                    log::warn!("endpoint {} disabled: no success since {:?}", ep.id, ep.failing_since);
                    registry.do_send(super::messages::EndpointGone(ep.id.clone()));
                    super::announce(&act.ctx, &act.registry, &published);
                }
            }
            Err(e) => log::warn!("checking failing endpoints failed: {}", e.message),
        }));
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.renew_leases(ctx);
        self.claim(ctx);
        ctx.run_interval(TICK, |act, ctx| act.claim(ctx));
        let lease = self.ctx.settings.delivery.lease;
        ctx.run_interval((lease / 3).max(Duration::from_millis(100)), |act, ctx| act.renew_leases(ctx));
        let disable_check = (self.ctx.settings.delivery.disable_after / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(60));
        ctx.run_interval(disable_check, |act, ctx| act.disable_failing(ctx));
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
