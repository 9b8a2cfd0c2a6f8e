//! Writes attempt results in batches: whatever arrives while one transaction runs goes into
//! the next, so the write rate follows the load with no timer. On a database error the batch
//! stays in memory and is tried again; results are never dropped while the process lives
//! (after a crash, the leases lapse and the deliveries are attempted again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::DeliveryContext;
use super::messages::Record;
use crate::ids::now_ms;
use crate::store::StoreError;
use crate::store::deliveries::{self, DeliveryUpdate};
use crate::store::endpoints::{self, CircuitUpdate};

const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
const MAX_BATCH: usize = 1000;

pub struct ResultWriter {
    ctx: Arc<DeliveryContext>,
    updates: Vec<DeliveryUpdate>,
    /// The latest circuit state per endpoint; earlier ones are superseded.
    circuits: HashMap<String, CircuitUpdate>,
    flushing: bool,
    /// Callers waiting for everything buffered to be written (shutdown).
    drained: Vec<tokio::sync::oneshot::Sender<()>>,
    /// A result of a FIFO endpoint is buffered: wake the Scheduler once it is written.
    wake_after: bool,
}

/// Answers once every result handed over so far has been written.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain(pub tokio::sync::oneshot::Sender<()>);

impl ResultWriter {
    pub fn new(ctx: Arc<DeliveryContext>) -> Self {
        Self {
            ctx,
            updates: Vec::new(),
            circuits: HashMap::new(),
            flushing: false,
            drained: Vec::new(),
            wake_after: false,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing {
            return;
        }
        if self.updates.is_empty() && self.circuits.is_empty() {
            for waiter in self.drained.drain(..) {
                let _ = waiter.send(());
            }
            return;
        }
        self.flushing = true;
        let wake = std::mem::take(&mut self.wake_after);
        let take = self.updates.len().min(MAX_BATCH);
        let updates: Vec<DeliveryUpdate> = self.updates.drain(..take).collect();
        let circuits: Vec<CircuitUpdate> = self.circuits.drain().map(|(_, c)| c).collect();
        let (db, owner) = (self.ctx.db.clone(), self.ctx.node_id.clone());
        let (u, c) = (updates.clone(), circuits.clone());
        let write = async move {
            db.run(move |conn| {
                deliveries::record(conn, &u, &owner, now_ms())?;
                // The results are committed: a circuit write that fails now is tried again
                // on its own, never with the results (their attempt rows would be doubled).
                let mut unwritten = Vec::new();
                for circuit in c {
                    if let Err(e) = endpoints::apply_circuit(conn, &circuit) {
                        log::warn!("could not write the circuit of {}: {}", circuit.endpoint_id, e);
                        unwritten.push(circuit);
                    }
                }
                Ok(unwritten)
            })
            .await
        };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.flushing = false;
            act.flushed(result, updates, circuits, wake, ctx);
        }));
    }

    /// After a batch's write: on to the next batch; circuits that were not written wait
    /// for the next round; a failed batch is written again one by one (or, the database
    /// being unavailable, all of it later).
    fn flushed(
        &mut self,
        result: Result<Vec<CircuitUpdate>, StoreError>,
        updates: Vec<DeliveryUpdate>,
        circuits: Vec<CircuitUpdate>,
        wake: bool,
        ctx: &mut Context<Self>,
    ) {
        match &result {
            // Everything buffered is written: a FIFO endpoint's next delivery may go.
            Ok(unwritten) if wake && unwritten.is_empty() && self.updates.is_empty() => {
                self.ctx.wake_scheduler();
            }
            // Not yet (more to write, or written again later): wake after that write.
            _ => self.wake_after |= wake,
        }
        match result {
            Ok(unwritten) if unwritten.is_empty() => self.flush(ctx),
            Ok(unwritten) => {
                for c in unwritten {
                    self.circuits.entry(c.endpoint_id.clone()).or_insert(c);
                }
                ctx.run_later(RETRY_AFTER_ERROR, ResultWriter::flush);
            }
            Err(e) if e != StoreError::Unavailable && (updates.len() > 1 || !circuits.is_empty()) => {
                log::warn!(
                    "writing {} delivery results failed ({e}); writing them one by one",
                    updates.len()
                );
                self.write_one_by_one(updates, circuits, ctx);
            }
            Err(e) => {
                log::warn!("could not write {} delivery results, retrying: {e}", updates.len());
                let newer = std::mem::take(&mut self.updates);
                self.updates = updates;
                self.updates.extend(newer);
                for c in circuits {
                    self.circuits.entry(c.endpoint_id.clone()).or_insert(c);
                }
                ctx.run_later(RETRY_AFTER_ERROR, ResultWriter::flush);
            }
        }
    }
}

impl ResultWriter {
    /// Writes each result on its own; one that still fails is logged and dropped (its
    /// delivery stays pending and is attempted again when its lease lapses).
    fn write_one_by_one(
        &mut self,
        updates: Vec<DeliveryUpdate>,
        circuits: Vec<CircuitUpdate>,
        ctx: &mut Context<Self>,
    ) {
        self.flushing = true;
        let (db, owner) = (self.ctx.db.clone(), self.ctx.node_id.clone());
        let work = async move {
            db.run(move |conn| {
                for u in &updates {
                    if let Err(e) = deliveries::record(conn, std::slice::from_ref(u), &owner, now_ms()) {
                        log::error!("dropping the result for delivery {}: {}", u.delivery_id, e);
                    }
                }
                for c in &circuits {
                    if let Err(e) = endpoints::apply_circuit(conn, c) {
                        log::error!("dropping a circuit update for endpoint {}: {}", c.endpoint_id, e);
                    }
                }
                Ok(())
            })
            .await
        };
        ctx.spawn(work.into_actor(self).map(|_, act, ctx| {
            act.flushing = false;
            act.flush(ctx);
        }));
    }
}

impl Actor for ResultWriter {
    type Context = Context<Self>;
}

impl Handler<Record> for ResultWriter {
    type Result = ();

    fn handle(&mut self, msg: Record, ctx: &mut Context<Self>) {
        self.updates.extend(msg.updates);
        self.wake_after |= msg.wake_scheduler;
        if let Some(mut c) = msg.circuit {
            // The state is the newest; a success in between must still reset `failing_since`.
            if let Some(older) = self.circuits.get(&c.endpoint_id) {
                c.succeeded_at = c.succeeded_at.or(older.succeeded_at);
                c.failed_at = c.failed_at.or(older.failed_at);
            }
            self.circuits.insert(c.endpoint_id.clone(), c);
        }
        self.flush(ctx);
    }
}

impl Handler<Drain> for ResultWriter {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        self.drained.push(msg.0);
        self.flush(ctx);
    }
}
