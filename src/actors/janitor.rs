//! The Janitor: every `retention.interval`, purges what is no longer needed (see
//! `store::retention`) in batches of at most 1,000 rows per transaction, one node at a time,
//! and refreshes the counts `/metrics` shows (so a scrape never reads a table).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use prometheus_client::metrics::counter::Counter;

use super::DeliveryContext;
use crate::ids::now_ms;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::{DbConn, deliveries, idempotency, retention};

/// Batches per table per run at most, so one run never holds the database for long; what
/// is left waits for the next run.
const MAX_BATCHES: usize = 100;
/// The first run comes soon after start, not a whole interval later.
const FIRST_RUN: Duration = Duration::from_secs(1);

pub struct Janitor {
    ctx: Arc<DeliveryContext>,
    running: bool,
}

impl Janitor {
    pub fn new(ctx: Arc<DeliveryContext>) -> Self {
        Self { ctx, running: false }
    }

    fn run(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let delivery_ctx = self.ctx.clone();
        let work = async move {
            let (db, metrics) = (delivery_ctx.db.clone(), delivery_ctx.metrics.clone());
            let settings = delivery_ctx.settings.clone();
            db.run(move |conn| {
                if retention::take_turn(conn)? {
                    let result = sweep(conn, &metrics, &settings.retention);
                    retention::end_turn(conn)?;
                    result?;
                }
                metrics.pending_deliveries.set(deliveries::count_pending(conn)?);
                Ok(())
            })
            .await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.running = false;
            if let Err(e) = result {
                log::warn!("retention: {e}");
            }
        }));
    }
}

/// Repeats `batch` until it purges less than a full batch (or `MAX_BATCHES` ran), adding
/// what it purged to `counter`.
fn drain(counter: &Counter, mut batch: impl FnMut() -> Result<usize, StoreError>) -> Result<(), StoreError> {
    for _ in 0..MAX_BATCHES {
        let n = batch()?;
        counter.inc_by(n as u64);
        if (n as i64) < retention::BATCH {
            break;
        }
    }
    Ok(())
}

fn sweep(conn: &mut DbConn, m: &Metrics, r: &crate::config::RetentionSettings) -> Result<(), StoreError> {
    let now = now_ms();
    for (org_id, own) in retention::org_retentions(conn)? {
        let cutoff = now - own.unwrap_or(r.events.as_millis() as i64);
        for _ in 0..MAX_BATCHES {
            let purged = retention::purge_events(conn, &org_id, cutoff)?;
            m.purged_events.inc_by(purged.events as u64);
            m.purged_deliveries.inc_by(purged.deliveries as u64);
            m.purged_attempts.inc_by(purged.attempts as u64);
            if (purged.events as i64) < retention::BATCH {
                break;
            }
        }
    }
    let receipts_cutoff = now - r.receipts.as_millis() as i64;
    drain(&m.purged_receipts, || retention::purge_receipts(conn, receipts_cutoff))?;
    let keys_cutoff = now - idempotency::TTL_MS;
    drain(&m.purged_idempotency_keys, || retention::purge_idempotency_keys(conn, keys_cutoff))?;
    drain(&m.purged_sessions, || retention::purge_sessions(conn, now))?;
    drain(&m.purged_stream_tokens, || retention::purge_stream_tokens(conn, now))?;
    Ok(())
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(FIRST_RUN.min(self.ctx.settings.retention.interval), Janitor::run);
        ctx.run_interval(self.ctx.settings.retention.interval, Janitor::run);
    }
}
