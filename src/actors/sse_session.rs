//! One actor per open stream. It registers with the Registry's hub (learning the hub's
//! cursor H), replays what the client missed (`Last-Event-ID` < seq <= H) from the store in
//! pages, then sends live events (seq > H) that it buffered meanwhile: no gap, no reordering.
//! Its channel to the HTTP response is bounded: a client that cannot keep up is cut off and
//! resumes by reconnecting. Its own keep-alive comments find closed connections.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;
use actix_web_lab::sse;
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::DeliveryContext;
use super::registry::{Registry, StreamSubscription};
use crate::store::endpoints::type_matches;
use crate::store::events;

const REPLAY_PAGE: i64 = 500;
const CLOSED_CHECK: Duration = Duration::from_secs(1);

/// A committed event as streams see it; one per event, shared by every session.
#[derive(Debug)]
pub struct StreamEvent {
    pub seq: i64,
    pub org_id: String,
    pub event_type: ByteString,
    /// Shared by every session's frame (cloning it counts a reference, copies nothing).
    pub data: ByteString,
    pub id: ByteString,
}

impl StreamEvent {
    pub fn new(e: &events::Event) -> Self {
        Self {
            seq: e.seq,
            org_id: e.org_id.clone(),
            event_type: e.event_type.as_str().into(),
            data: crate::delivery::envelope::envelope_text(e).into(),
            id: e.seq.to_string().into(),
        }
    }

    /// The SSE frame. `named` adds the `event:` line (the event type); without it a
    /// browser's `EventSource.onmessage` receives every type, which it cannot when named.
    fn frame(&self, named: bool) -> sse::Event {
        let frame = sse::Data::new(self.data.clone()).id(self.id.clone());
        sse::Event::Data(if named { frame.event(self.event_type.clone()) } else { frame })
    }
}

pub fn filter_matches(types: &[String], event_type: &str) -> bool {
    types.is_empty() || types.iter().any(|f| type_matches(f, event_type))
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Live(pub Arc<StreamEvent>);

/// End the stream now (shutdown); the client reconnects after its retry hint.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStream;

pub struct SseSession {
    ctx: Arc<DeliveryContext>,
    registry: Addr<Registry>,
    id: u64,
    org_id: String,
    types: Arc<Vec<String>>,
    named: bool,
    tx: mpsc::Sender<sse::Event>,
    resume_after: Option<i64>,
    replaying: bool,
    buffer: VecDeque<Arc<StreamEvent>>,
    last_sent: i64,
}

impl SseSession {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        registry: Addr<Registry>,
        org_id: String,
        types: Vec<String>,
        named: bool,
        resume_after: Option<i64>,
        tx: mpsc::Sender<sse::Event>,
    ) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            ctx,
            registry,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            org_id,
            types: Arc::new(types),
            named,
            tx,
            resume_after,
            replaying: true,
            buffer: VecDeque::new(),
            last_sent: 0,
        }
    }

    fn send_live(&mut self, event: &StreamEvent, ctx: &mut Context<Self>) {
        if event.seq <= self.last_sent {
            return;
        }
        match self.tx.try_send(event.frame(self.named)) {
            Ok(()) => {
                self.last_sent = event.seq;
                self.ctx.metrics.stream_events_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ctx.metrics.streams_dropped_slow.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "stream {}: client too slow, disconnecting (it may resume from {})",
                    self.id,
                    self.last_sent
                );
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }

    /// Sends the missed events `after < seq <= until` from the store, page by page, waiting
    /// for the client as it reads (memory stays at one page).
    fn replay(&mut self, after: i64, until: i64, ctx: &mut Context<Self>) {
        let (db, org, types, tx) =
            (self.ctx.db.clone(), self.org_id.clone(), self.types.clone(), self.tx.clone());
        let named = self.named;
        let metrics = self.ctx.metrics.clone();
        let work = async move {
            let mut cursor = after;
            loop {
                let (o, t) = (org.clone(), types.clone());
                let page =
                    db.run(move |conn| events::stream_page(conn, &o, &t, cursor, until, REPLAY_PAGE)).await?;
                let full = page.len() as i64 == REPLAY_PAGE;
                for e in page {
                    let event = StreamEvent::new(&e).frame(named);
                    if tx.send(event).await.is_err() {
                        return Ok(None);
                    }
                    metrics.stream_events_sent.fetch_add(1, Ordering::Relaxed);
                    cursor = e.seq;
                }
                if !full {
                    return Ok(Some(until));
                }
            }
        };
        ctx.spawn(work.into_actor(self).map(
            |result: Result<Option<i64>, crate::error::ApiError>, act, ctx| match result {
                Ok(Some(done_to)) => {
                    act.last_sent = act.last_sent.max(done_to);
                    act.replaying = false;
                    while let Some(e) = act.buffer.pop_front() {
                        act.send_live(&e, ctx);
                    }
                }
                Ok(None) => ctx.stop(),
                Err(e) => {
                    log::warn!("stream {}: replay failed: {}", act.id, e.message);
                    ctx.stop();
                }
            },
        ));
    }
}

impl Actor for SseSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.ctx.metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        let sub = StreamSubscription {
            id: self.id,
            org_id: self.org_id.clone(),
            types: self.types.clone(),
            addr: ctx.address().recipient(),
            close: ctx.address().recipient(),
        };
        self.registry
            .send(sub)
            .into_actor(self)
            .then(|hub_cursor, act, ctx| {
                match hub_cursor {
                    Ok(h) => match act.resume_after {
                        Some(after) if after < h => act.replay(after, h, ctx),
                        other => {
                            act.last_sent = other.unwrap_or(h).max(h);
                            act.replaying = false;
                            while let Some(e) = act.buffer.pop_front() {
                                act.send_live(&e, ctx);
                            }
                        }
                    },
                    Err(_) => ctx.stop(),
                }
                fut::ready(())
            })
            .wait(ctx);
        let keep_alive = self.ctx.settings.sse.keep_alive;
        ctx.run_interval(keep_alive, |act, ctx| {
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                act.tx.try_send(sse::Event::Comment("keep-alive".into()))
            {
                ctx.stop();
            }
        });
        ctx.run_interval(CLOSED_CHECK.min(keep_alive), |act, ctx| {
            if act.tx.is_closed() {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.ctx.metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
        self.registry.do_send(super::registry::StreamClosed(self.id));
    }
}

impl Handler<Live> for SseSession {
    type Result = ();

    fn handle(&mut self, msg: Live, ctx: &mut Context<Self>) {
        if self.replaying {
            if self.buffer.len() >= self.ctx.settings.sse.mailbox {
                self.ctx.metrics.streams_dropped_slow.fetch_add(1, Ordering::Relaxed);
                ctx.stop();
                return;
            }
            self.buffer.push_back(msg.0);
        } else {
            self.send_live(&msg.0, ctx);
        }
    }
}

impl Handler<CloseStream> for SseSession {
    type Result = ();

    fn handle(&mut self, _: CloseStream, ctx: &mut Context<Self>) {
        let _ = self.tx.try_send(sse::Event::Comment("server shutting down; reconnect".into()));
        ctx.stop();
    }
}
