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
use crate::store::endpoints::Endpoint;
use crate::store::events::{Lease, NewEvent, PublishItem, PublishTxn, Published};
use crate::store::{DbConn, StoreError, write_txn};

/// Publishes written per transaction at most.
const MAX_BATCH: usize = 256;

pub struct PublishRequest {
    pub event: NewEvent,
    pub only_endpoint: Option<Endpoint>,
    /// Register waiters for the first attempts (`?wait=true`).
    pub wait: bool,
    pub reply: oneshot::Sender<Result<(Published, Vec<FirstAttempt>), StoreError>>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish(pub PublishRequest);

pub struct Publisher {
    ctx: Arc<DeliveryContext>,
    registry: Addr<Registry>,
    hub: Addr<super::stream_hub::StreamHub>,
    waiting: VecDeque<PublishRequest>,
    writing: bool,
}

impl Publisher {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        registry: Addr<Registry>,
        hub: Addr<super::stream_hub::StreamHub>,
    ) -> Self {
        Self { ctx, registry, hub, waiting: VecDeque::new(), writing: false }
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.waiting.is_empty() {
            return;
        }
        self.writing = true;
        let take = self.waiting.len().min(MAX_BATCH);
        let batch: Vec<PublishRequest> = self.waiting.drain(..take).collect();
        let (delivery_ctx, registry, hub) = (self.ctx.clone(), self.registry.clone(), self.hub.clone());
        // The hand-off to the actors happens here, after the commit, whatever becomes of
        // the requests that asked: committed work is never left claimed and unsent.
        let work = async move {
            let lease = delivery_ctx.lease();
            let (requests, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|r| ((r.event, r.only_endpoint), (r.wait, r.reply))).unzip();
            let result = delivery_ctx.db.run(move |conn| Ok(write_batch(conn, &requests, &lease))).await;
            let outcomes = match result {
                Ok(outcomes) => outcomes,
                Err(e) => replies.iter().map(|_| Err(e.clone())).collect(),
            };
            for ((wait, reply), outcome) in replies.into_iter().zip(outcomes) {
                let answer = outcome.map(|p| {
                    let waits = if wait { register_waiters(&delivery_ctx, &p) } else { Vec::new() };
                    announce(&delivery_ctx, &registry, &hub, &p);
                    (p, waits)
                });
                let _ = reply.send(answer);
            }
        };
        ctx.spawn(work.into_actor(self).map(|(), act, ctx| {
            act.writing = false;
            act.write(ctx);
        }));
    }
}

/// Writes a batch in one transaction. If that fails, each publish is written again in a
/// transaction of its own, so one that cannot be stored fails alone and the others are
/// still answered as committed.
fn write_batch(
    conn: &mut DbConn,
    items: &[PublishItem],
    lease: &Lease,
) -> Vec<Result<Published, StoreError>> {
    let one_txn = |conn: &mut DbConn, items: &[PublishItem]| {
        write_txn(conn, |c| {
            let mut txn = PublishTxn::default();
            let published = txn.publish_all(c, items, lease)?;
            txn.finish(c)?;
            Ok(published)
        })
    };
    match one_txn(conn, items) {
        Ok(published) => published.into_iter().map(Ok).collect(),
        Err(e) if items.len() == 1 || e == StoreError::Unavailable => {
            items.iter().map(|_| Err(e.clone())).collect()
        }
        Err(e) => {
            log::warn!("a batch of {} publishes failed ({}); writing them one by one", items.len(), e);
            items
                .iter()
                .map(|item| {
                    one_txn(conn, std::slice::from_ref(item)).and_then(|mut p| {
                        p.pop().ok_or_else(|| StoreError::other("publish answered nothing"))
                    })
                })
                .collect()
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Db, events, orgs};

    fn event(org_id: &str, id: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            org_id: org_id.into(),
            event_type: "t.x".into(),
            payload: "{}".into(),
            correlation_id: None,
            source_id: None,
            created_at: 1,
            version: 1,
            latest_version: None,
        }
    }

    /// A real SQLite file: the middle publish names an organisation that does not exist, so
    /// its insert breaks a foreign key and the batch's transaction fails.
    #[test]
    fn a_failing_publish_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(dir.path().join("herald.db").to_str().unwrap(), 1).unwrap();
        db.migrate().unwrap();
        let mut conn = db.get().unwrap();
        let org = orgs::Org::new("org_a".into(), "a".into(), 1, 1);
        orgs::insert(&mut conn, &org).unwrap();
        let lease = Lease { owner: "node_t".into(), expires_at: i64::MAX, only: None };
        let items = vec![
            (event("org_a", "e1"), None),
            (event("org_missing", "e2"), None),
            (event("org_a", "e3"), None),
        ];
        let out = write_batch(&mut conn, &items, &lease);
        assert_eq!(out.len(), 3);
        assert!(matches!(out[0], Ok(Published::Created { .. })));
        assert!(out[1].is_err());
        assert!(matches!(out[2], Ok(Published::Created { .. })));
        for id in ["e1", "e3"] {
            assert!(events::find(&mut conn, "org_a", id).unwrap().is_some(), "{id} was committed");
        }
    }
}
