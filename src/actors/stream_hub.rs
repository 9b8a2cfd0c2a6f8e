//! The stream supervisor: starts one `StreamActor` per open SSE connection (on the worker
//! thread that serves the connection), reads what committed after its cursor and fans each
//! round out to the actors whose organisation and filter want it, one message per actor
//! per round. An actor that died (a panic ends its task) is replaced on the same
//! connection by one that resumes where it stopped.
//!
//! The cursor never skips an event that commits late: the store answers only events below
//! the lowest seq still being written (`events::committed_after`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::ArbiterHandle;
use actix::prelude::*;
use actix_web::web::Bytes;

use super::DeliveryContext;
use super::stream_actor::{End, Frames, HubLink, KeepAlive, Outbox, StreamActor, StreamSpec, Trip};
use super::stream_frames::{StreamEvent, comment, filter_matches};
use crate::store::events;

/// Streams get events at least this promptly even if a commit signal was lost; also how
/// soon the hub notices an actor that died without a word.
const HUB_SAFETY_READ: Duration = Duration::from_secs(1);
/// The hub reads at most once per this much per open stream, and at least every
/// `HUB_MAX_GAP`: 10,000 streams get their events in 20 ms rounds, 100 in 0.2 ms ones.
const HUB_GAP_PER_STREAM: Duration = Duration::from_micros(2);
const HUB_MAX_GAP: Duration = Duration::from_millis(25);
/// Events read per hub round.
const HUB_BATCH: i64 = 1000;

pub struct StreamHub {
    ctx: Arc<DeliveryContext>,
    /// Its own address, as its streams hold it.
    link: HubLink,
    streams: Streams,
    /// Every event with seq <= cursor has been handed to the stream actors.
    cursor: i64,
    reading: bool,
    read_again: bool,
    /// When the last read started, and whether a later one is planned.
    read_at: Instant,
    read_planned: bool,
    /// Shutting down: streams end and no actor is replaced.
    closing: bool,
}

/// One stream as its supervisor knows it: enough to replace its actor.
struct Entry {
    addr: Addr<StreamActor>,
    spec: Arc<StreamSpec>,
    outbox: Arc<Outbox>,
    /// The worker thread serving the connection, where its actor runs.
    arbiter: ArbiterHandle,
    /// Times its actor died and was replaced.
    restarts: u32,
}

/// Replacements of one stream's actor at most: an actor that dies again and again (say on
/// one event it cannot handle) ends its stream instead; the client reconnects.
const MAX_RESTARTS: u32 = 3;

/// A new stream: the hub starts its actor unless its organisation holds `max` open streams
/// on this node already, or the node is shutting down.
#[derive(Message)]
#[rtype(result = "Result<(), Refused>")]
pub struct Subscribe {
    pub spec: Arc<StreamSpec>,
    pub outbox: Arc<Outbox>,
    pub arbiter: ArbiterHandle,
    pub resume_after: Option<i64>,
    pub max: usize,
}

/// Why a stream was not opened.
#[derive(Debug)]
pub enum Refused {
    /// The organisation holds its `max_streams` open streams already.
    Quota,
    /// The node is shutting down.
    Closing,
}

/// The node is shutting down: every stream ends now (clients reconnect, to another node).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStreams;

/// A stream's connection ended (its body was dropped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamClosed(pub u64);

/// A stream's actor stopped: its breaker tripped, or it died (a panic still runs its
/// `stopped` while the task unwinds).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamEnded {
    pub id: u64,
    pub addr: Addr<StreamActor>,
}

/// Events up to this seq are committed (published here, or announced by another node).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Committed(pub i64);

/// Test builds only: every stream actor of this organisation panics, as a bug would.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicStreams(pub String);

impl StreamHub {
    /// Starts the hub; `cursor`: the highest committed seq at start, where live streams
    /// begin. Answers the link its streams share.
    pub fn launch(ctx: Arc<DeliveryContext>, cursor: i64) -> HubLink {
        let mut link = None;
        Self::create(|hub| {
            let me = Arc::new(hub.address());
            link = Some(me.clone());
            Self::new(ctx, cursor, me)
        });
        link.expect("the hub started")
    }

    fn new(ctx: Arc<DeliveryContext>, cursor: i64, link: HubLink) -> Self {
        Self {
            ctx,
            link,
            streams: Streams::default(),
            cursor,
            reading: false,
            read_again: false,
            read_at: Instant::now(),
            read_planned: false,
            closing: false,
        }
    }

    /// Starts an actor for a stream's connection, on the connection's thread.
    fn start_actor(
        &self,
        spec: &Arc<StreamSpec>,
        outbox: &Arc<Outbox>,
        arbiter: &ArbiterHandle,
        resume_after: Option<i64>,
    ) -> Addr<StreamActor> {
        let (ctx, hub) = (self.ctx.clone(), self.link.clone());
        let actor = StreamActor::new(spec.clone(), outbox.clone(), ctx, hub, resume_after, self.cursor);
        StreamActor::start_in_arbiter(arbiter, move |_| actor)
    }

    fn forget(&mut self, id: u64) {
        self.streams.remove(id);
    }

    /// Checks every actor: one that stopped without ending its stream died (a panic ends
    /// its task) and is replaced.
    fn supervise(&mut self) {
        let stopped: Vec<u64> =
            self.streams.all().filter(|e| !e.addr.connected()).map(|e| e.spec.id).collect();
        for id in stopped {
            self.stopped(id);
        }
    }

    /// A stream's actor stopped: its stream is over (the breaker tripped, the client left),
    /// or it died, and a new actor goes on on the same connection from the last frame it got.
    fn stopped(&mut self, id: u64) {
        let Some(entry) = self.streams.get(id) else { return };
        if self.closing || entry.outbox.is_over() {
            return self.forget(id);
        }
        if entry.restarts >= MAX_RESTARTS {
            log::error!("stream actor {id} died again; ending its stream (the client reconnects)");
            entry.outbox.end(Some(&comment("stream failed; reconnect")));
            return self.forget(id);
        }
        let resume = entry.outbox.last_sent();
        log::error!("stream actor {id} died; starting a new one (resuming after {resume})");
        self.ctx.metrics.stream_actor_restarts.inc();
        let addr = self.start_actor(&entry.spec, &entry.outbox, &entry.arbiter, Some(resume));
        if let Some(entry) = self.streams.get_mut(id) {
            entry.addr = addr;
            entry.restarts += 1;
        }
    }

    /// Reads what committed after the cursor, once, and hands it to the stream actors.
    fn read_committed(&mut self, ctx: &mut Context<Self>) {
        if self.reading {
            self.read_again = true;
            return;
        }
        if self.read_planned {
            return;
        }
        // With many streams, events that commit close together go out together: one
        // message and one write per connection instead of one per event.
        let gap = (HUB_GAP_PER_STREAM * self.streams.len() as u32).min(HUB_MAX_GAP);
        let since = self.read_at.elapsed();
        if since < gap {
            self.read_planned = true;
            ctx.run_later(gap.checked_sub(since).unwrap(), |act, ctx| {
                act.read_planned = false;
                act.read_committed(ctx);
            });
            return;
        }
        self.read_at = Instant::now();
        self.reading = true;
        let (db, after) = (self.ctx.db.clone(), self.cursor);
        let read = async move { db.run(move |conn| events::committed_after(conn, after, HUB_BATCH)).await };
        ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
            act.reading = false;
            match result {
                Ok(batch) => {
                    let full = batch.len() as i64 == HUB_BATCH;
                    act.cursor = batch.last().map_or(act.cursor, |e| e.seq);
                    act.fan_out(&batch);
                    if full || std::mem::take(&mut act.read_again) {
                        act.read_committed(ctx);
                    }
                }
                Err(e) => {
                    log::warn!("stream hub could not read events: {e}");
                    ctx.run_later(Duration::from_millis(500), StreamHub::read_committed);
                }
            }
        }));
    }

    /// One message per actor that wants something of this round, carrying its
    /// organisation's events (encoded once, only for organisations with open streams).
    fn fan_out(&mut self, batch: &[events::Event]) {
        let mut rounds: HashMap<&str, Vec<Arc<StreamEvent>>> = HashMap::new();
        for e in batch.iter().filter(|e| self.streams.count(&e.org_id) > 0) {
            rounds.entry(e.org_id.as_str()).or_default().push(Arc::new(StreamEvent::new(e)));
        }
        let mut died = false;
        for (org, events) in rounds {
            let events: Arc<[Arc<StreamEvent>]> = events.into();
            for entry in self.streams.of_org(org) {
                let types = &entry.spec.types;
                if !types.is_empty() && !events.iter().any(|e| filter_matches(types, &e.event_type)) {
                    continue;
                }
                if entry.addr.connected() {
                    entry.addr.do_send(Frames(events.clone()));
                } else {
                    // Its replacement replays this round from the store.
                    died = true;
                }
            }
        }
        if died {
            self.supervise();
        }
    }
}

/// Open streams by organisation: a round's events go to their organisation's streams
/// without looking at the others (and an organisation's count is its quota's).
#[derive(Default)]
struct Streams {
    by_org: HashMap<String, HashMap<u64, Entry>>,
    org_of: HashMap<u64, String>,
}

impl Streams {
    fn len(&self) -> usize {
        self.org_of.len()
    }

    fn is_empty(&self) -> bool {
        self.org_of.is_empty()
    }

    fn count(&self, org: &str) -> usize {
        self.by_org.get(org).map_or(0, HashMap::len)
    }

    fn insert(&mut self, entry: Entry) {
        let (id, org) = (entry.spec.id, entry.spec.org_id.clone());
        self.by_org.entry(org.clone()).or_default().insert(id, entry);
        self.org_of.insert(id, org);
    }

    fn get(&self, id: u64) -> Option<&Entry> {
        self.by_org.get(self.org_of.get(&id)?)?.get(&id)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.by_org.get_mut(self.org_of.get(&id)?)?.get_mut(&id)
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let org = self.org_of.remove(&id)?;
        let streams = self.by_org.get_mut(&org)?;
        let entry = streams.remove(&id);
        if streams.is_empty() {
            self.by_org.remove(&org);
        }
        entry
    }

    fn all(&self) -> impl Iterator<Item = &Entry> {
        self.by_org.values().flat_map(HashMap::values)
    }

    fn of_org(&self, org: &str) -> impl Iterator<Item = &Entry> {
        self.by_org.get(org).into_iter().flat_map(HashMap::values)
    }

    fn drain(&mut self) -> impl Iterator<Item = Entry> {
        self.org_of.clear();
        std::mem::take(&mut self.by_org).into_values().flat_map(HashMap::into_values)
    }
}

impl Actor for StreamHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // One timer for every stream's keep-alive comment.
        let keep_alive = self.ctx.settings.sse.keep_alive;
        ctx.run_interval(keep_alive, |act, _| {
            let frame = comment("keep-alive");
            for entry in act.streams.all() {
                entry.addr.do_send(KeepAlive(frame.clone()));
            }
        });
        // The safety net under commit signals and cluster notifications, and the check for
        // actors that died.
        ctx.run_interval(HUB_SAFETY_READ, |act, ctx| {
            if !act.streams.is_empty() {
                act.supervise();
                act.read_committed(ctx);
            }
        });
    }
}

impl Handler<Subscribe> for StreamHub {
    type Result = Result<(), Refused>;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        let open = self.streams.count(&msg.spec.org_id);
        if self.closing || open >= msg.max {
            msg.outbox.end(None);
            return Err(if self.closing { Refused::Closing } else { Refused::Quota });
        }
        let addr = self.start_actor(&msg.spec, &msg.outbox, &msg.arbiter, msg.resume_after);
        self.streams.insert(Entry {
            addr,
            spec: msg.spec,
            outbox: msg.outbox,
            arbiter: msg.arbiter,
            restarts: 0,
        });
        Ok(())
    }
}

impl Handler<StreamClosed> for StreamHub {
    type Result = ();

    fn handle(&mut self, msg: StreamClosed, _: &mut Context<Self>) {
        if let Some(entry) = self.streams.get(msg.0) {
            entry.addr.do_send(End(Trip::Gone, None));
        }
        self.forget(msg.0);
    }
}

impl Handler<StreamEnded> for StreamHub {
    type Result = ();

    fn handle(&mut self, msg: StreamEnded, _: &mut Context<Self>) {
        if self.streams.get(msg.id).is_some_and(|e| e.addr == msg.addr) {
            self.stopped(msg.id);
        }
    }
}

impl Handler<Committed> for StreamHub {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Context<Self>) {
        if msg.0 <= self.cursor {
            return;
        }
        if self.streams.is_empty() {
            // Commits are in seq order, so everything up to here is committed: nobody
            // listens, nothing to read.
            if !self.reading {
                self.cursor = msg.0;
            }
            return;
        }
        self.read_committed(ctx);
    }
}

impl Handler<CloseStreams> for StreamHub {
    type Result = ();

    fn handle(&mut self, _: CloseStreams, _: &mut Context<Self>) {
        self.closing = true;
        let last: Bytes = comment("server shutting down; reconnect");
        for entry in self.streams.drain() {
            // Ended here too: an actor that died would not end its connection.
            entry.outbox.end(Some(&last));
            entry.addr.do_send(End(Trip::Closing, None));
        }
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<PanicStreams> for StreamHub {
    type Result = ();

    fn handle(&mut self, msg: PanicStreams, _: &mut Context<Self>) {
        for entry in self.streams.of_org(&msg.0) {
            entry.addr.do_send(super::messages::Panic);
        }
    }
}
