//! Inbound webhooks are handed here keyed by (source, provider event id). Requests with the
//! same key are processed one after another: the first stores the event, every later copy
//! finds it and is answered as a duplicate (with its own receipt), also when 50 arrive at
//! once. Different keys proceed in parallel. The database's unique index on accepted
//! receipts gives the same guarantee across nodes.

use std::collections::{HashMap, VecDeque};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::Engine;
use crate::store::StoreError;
use crate::store::events::{NewEvent, Published};
use crate::store::sources::{self, Accepted, Receipt};

#[derive(Debug, Clone)]
pub struct InboundAnswer {
    pub duplicate: bool,
    pub event_id: Option<String>,
}

#[derive(Message)]
#[rtype(result = "Result<InboundAnswer, StoreError>")]
pub struct Ingest {
    pub receipt: Receipt,
    pub event: NewEvent,
}

struct Pending {
    msg: Ingest,
    reply: oneshot::Sender<Result<InboundAnswer, StoreError>>,
}

pub struct Inbound {
    engine: Engine,
    queues: HashMap<String, VecDeque<Pending>>,
}

impl Inbound {
    pub fn new(engine: Engine) -> Self {
        Self { engine, queues: HashMap::new() }
    }

    /// Processes the head of a key's queue; when done, the next.
    fn process(&mut self, key: String, ctx: &mut Context<Self>) {
        let Some(head) = self.queues.get(&key).and_then(|q| q.front()) else { return };
        let (receipt, event) = (head.msg.receipt.clone(), head.msg.event.clone());
        let delivery_ctx = self.engine.ctx.clone();
        let work = async move {
            let lease = delivery_ctx.lease();
            delivery_ctx.db.run(move |conn| sources::accept(conn, receipt, &event, &lease)).await
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            let answer = result.map(|accepted| match accepted {
                Accepted::New(published) => {
                    let event_id = match &published {
                        Published::Created { event, .. } | Published::Existing { event, .. } => {
                            event.id.clone()
                        }
                    };
                    act.engine.announce(&published);
                    InboundAnswer { duplicate: false, event_id: Some(event_id) }
                }
                Accepted::Duplicate(event_id) => InboundAnswer { duplicate: true, event_id },
            });
            let queue = act.queues.get_mut(&key).expect("the key being processed has a queue");
            if let Some(done) = queue.pop_front() {
                let _ = done.reply.send(answer);
            }
            if queue.is_empty() {
                act.queues.remove(&key);
            } else {
                act.process(key, ctx);
            }
        }));
    }
}

impl Actor for Inbound {
    type Context = Context<Self>;
}

impl Handler<Ingest> for Inbound {
    type Result = ResponseFuture<Result<InboundAnswer, StoreError>>;

    fn handle(&mut self, msg: Ingest, ctx: &mut Context<Self>) -> Self::Result {
        let key = format!(
            "{}\u{0}{}",
            msg.receipt.source_id,
            msg.receipt.provider_event_id.as_deref().unwrap_or("")
        );
        let (reply, answer) = oneshot::channel();
        let queue = self.queues.entry(key.clone()).or_default();
        queue.push_back(Pending { msg, reply });
        if queue.len() == 1 {
            self.process(key, ctx);
        }
        Box::pin(
            async move { answer.await.unwrap_or_else(|_| Err(StoreError::other("inbound actor stopped"))) },
        )
    }
}
