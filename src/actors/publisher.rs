//! Group commit for publishes: requests that arrive while one transaction is being written
//! go together into the next, so a busy node commits many events per transaction (and, on
//! PostgreSQL, takes the ordering lock once per batch). Each publisher is answered only
//! after the transaction holding its event has committed: a 202 still means committed.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::registry::Registry;
use super::{DeliveryContext, FirstAttempt, announce, register_waiters};
use crate::error::ApiError;
use crate::store::endpoints::Endpoint;
use crate::store::events::{NewEvent, PublishTxn, Published};
use crate::store::write_txn;

/// Publishes written per transaction at most.
const MAX_BATCH: usize = 256;

pub struct PublishRequest {
    pub event: NewEvent,
    pub only_endpoint: Option<Endpoint>,
    /// Register waiters for the first attempts (`?wait=true`).
    pub wait: bool,
    pub reply: oneshot::Sender<Result<(Published, Vec<FirstAttempt>), ApiError>>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish(pub PublishRequest);

pub struct Publisher {
    ctx: Arc<DeliveryContext>,
    registry: Addr<Registry>,
    waiting: VecDeque<PublishRequest>,
    writing: bool,
}

impl Publisher {
    pub fn new(ctx: Arc<DeliveryContext>, registry: Addr<Registry>) -> Self {
        Self { ctx, registry, waiting: VecDeque::new(), writing: false }
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.waiting.is_empty() {
            return;
        }
        self.writing = true;
        let take = self.waiting.len().min(MAX_BATCH);
        let batch: Vec<PublishRequest> = self.waiting.drain(..take).collect();
        let (engine, registry) = (self.ctx.clone(), self.registry.clone());
        // The hand-off to the actors happens here, after the commit, whatever becomes of
        // the requests that asked: committed work is never left claimed and unsent.
        let work = async move {
            let lease = engine.lease();
            let (requests, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|r| ((r.event, r.only_endpoint), (r.wait, r.reply))).unzip();
            let result = engine
                .db
                .run(move |conn| {
                    write_txn(conn, |c| {
                        let mut txn = PublishTxn::default();
                        let published = txn.publish_all(c, &requests, &lease)?;
                        txn.finish(c)?;
                        Ok(published)
                    })
                })
                .await;
            match result {
                Ok(published) => {
                    for ((wait, reply), p) in replies.into_iter().zip(published) {
                        let waits = if wait { register_waiters(&engine, &p) } else { Vec::new() };
                        announce(&engine, &registry, &p);
                        let _ = reply.send(Ok((p, waits)));
                    }
                }
                Err(e) => {
                    for (_, reply) in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        };
        ctx.spawn(work.into_actor(self).map(|_, act, ctx| {
            act.writing = false;
            act.write(ctx);
        }));
    }
}

impl Actor for Publisher {
    type Context = Context<Self>;
}

impl Handler<Publish> for Publisher {
    type Result = ();

    fn handle(&mut self, msg: Publish, ctx: &mut Context<Self>) {
        self.waiting.push_back(msg.0);
        self.write(ctx);
    }
}
