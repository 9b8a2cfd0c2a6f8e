//! One `StreamActor` per open SSE connection, supervised by the `StreamHub`.
//!
//! The hub sends it each round's committed events as one `Frames` message (encoded once,
//! shared by reference); the actor keeps what its client wants, in seq order, in its
//! `Outbox`: the frames handed to the connection and not yet written, bounded by
//! `sse.mailbox` frames and `sse.mailbox_bytes` bytes. The response body (`StreamBody`)
//! drains the outbox, every frame that accumulated in one write.
//!
//! The actor's breaker guards its client: a client that falls behind past the bound, or
//! whose connection fails, trips it, and the actor ends the stream and stops. The client
//! reconnects and resumes from its last id (`Last-Event-ID`), losing nothing.
//!
//! Lossless resume: the actor starts at the hub's cursor H; a client resuming from
//! `Last-Event-ID` < H is replayed `Last-Event-ID` < seq <= H from the store in pages while
//! live events (seq > H) are deferred, then follow: no gap, no reordering. The
//! outbox remembers the last seq handed over, so an actor that died is replaced by one that
//! resumes from there on the same connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Waker};

use actix::prelude::*;
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{Bytes, BytesMut};

use super::DeliveryContext;
use super::stream_frames::{StreamEvent, filter_matches};
use super::stream_hub::{StreamClosed, StreamEnded, StreamHub};
use crate::delivery::payload_filter::PayloadFilter;
use crate::store::events;

const REPLAY_PAGE: i64 = 500;
/// Bytes handed to the connection at once at most (a backlog goes in pieces); also the
/// server's write-buffer limit. A single larger frame still goes whole.
pub const MAX_WRITE: usize = 4000;

/// What a stream asked for; fixed for its life.
#[derive(Debug)]
pub struct StreamSpec {
    pub id: u64,
    pub org_id: String,
    pub types: Vec<String>,
    /// Frames carry their `event:` line (`?unnamed=true` leaves it out).
    pub named: bool,
    /// `?filter=`: a condition on the envelope, as endpoints have.
    pub filter: Option<PayloadFilter>,
}

impl StreamSpec {
    pub fn new(org_id: String, types: Vec<String>, named: bool, filter: Option<PayloadFilter>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), org_id, types, named, filter }
    }

    pub fn wants(&self, event: &StreamEvent) -> bool {
        self.org_id == event.org_id
            && filter_matches(&self.types, &event.event_type)
            && self.filter.as_ref().is_none_or(|f| f.matches(event.envelope()))
    }
}

/// Why a stream's breaker opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// Its client fell behind past the mailbox's bound.
    TooSlow,
    /// Its connection is gone (the client left, or a write failed).
    Gone,
    /// The server is shutting down.
    Closing,
}

/// A connection's socket (recorded when it is accepted), so a stream whose client does not
/// read can be cut off: the server would otherwise wait for that client to take what is
/// already buffered before it noticed the stream had ended.
#[derive(Debug, Clone, Copy)]
pub struct ConnSocket(pub i32);

/// Frames between a stream's actor and its connection.
pub struct Outbox {
    state: Mutex<OutState>,
    socket: Option<ConnSocket>,
    capacity: usize,
    max_bytes: usize,
    /// Signalled when the body took frames: a replay waiting for room goes on.
    room: tokio::sync::Notify,
}

struct OutState {
    /// Encoded frames not yet handed to the connection, and how many.
    buf: BytesMut,
    frames: usize,
    waker: Option<Waker>,
    /// Frames up to this seq are queued or written.
    last_sent: i64,
    /// No more frames: the body ends once the queue is empty.
    ended: bool,
    /// Cut off: the body fails at once, which closes the connection without waiting for a
    /// client that does not read.
    aborted: bool,
    /// The response body is gone (the client left).
    gone: bool,
}

impl Outbox {
    pub fn new(capacity: usize, max_bytes: usize, first: &[u8], socket: Option<ConnSocket>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(OutState {
                buf: BytesMut::from(first),
                frames: 1,
                waker: None,
                last_sent: 0,
                ended: false,
                aborted: false,
                gone: false,
            }),
            socket,
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            room: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stream has ended, or its connection is gone.
    pub fn is_over(&self) -> bool {
        let s = self.lock();
        s.ended || s.gone
    }

    /// The last seq handed to the connection: where a replacement actor resumes.
    pub fn last_sent(&self) -> i64 {
        self.lock().last_sent
    }

    /// Live events in seq order, under one lock, with one wake for all of them. Events at
    /// or before what was already sent are skipped. Returns how many frames went in.
    fn offer<'a>(&self, events: impl Iterator<Item = &'a StreamEvent>, named: bool) -> Result<u64, Trip> {
        let mut s = self.lock();
        let mut sent = 0;
        let result = (|| {
            for event in events {
                if s.gone || s.ended {
                    return Err(Trip::Gone);
                }
                if event.seq <= s.last_sent {
                    continue;
                }
                let frame = event.frame(named);
                if s.frames >= self.capacity || !self.has_room(&s, frame.len()) {
                    return Err(Trip::TooSlow);
                }
                s.push(frame);
                s.last_sent = event.seq;
                sent += 1;
            }
            Ok(sent)
        })();
        if sent > 0 {
            wake(&mut s);
        }
        result
    }

    /// Whether `size` more bytes fit (an empty outbox always takes one frame).
    fn has_room(&self, s: &OutState, size: usize) -> bool {
        s.buf.is_empty() || s.buf.len() + size <= self.max_bytes
    }

    /// A replayed frame: waits for the client to make room instead of cutting it off (a
    /// replay reads the store only as fast as the client reads). False when the stream is over.
    async fn push_waiting(&self, frame: &[u8], seq: i64) -> bool {
        loop {
            let room = self.room.notified();
            {
                let mut s = self.lock();
                if s.gone || s.ended {
                    return false;
                }
                if s.frames < self.capacity && self.has_room(&s, frame.len()) {
                    s.push(frame);
                    s.last_sent = s.last_sent.max(seq);
                    wake(&mut s);
                    return true;
                }
            }
            room.await;
        }
    }

    /// Everything up to `seq` has been handed over (a replay's range, some of it filtered out).
    fn sent_through(&self, seq: i64) {
        let mut s = self.lock();
        s.last_sent = s.last_sent.max(seq);
    }

    /// A comment (keep-alive); dropped when the queue is full, which has news anyway.
    /// False when the connection is gone.
    pub fn comment(&self, frame: &[u8]) -> bool {
        let mut s = self.lock();
        if s.gone || s.ended {
            return false;
        }
        if s.frames < self.capacity {
            s.push(frame);
            wake(&mut s);
        }
        true
    }

    /// Drops what is queued and closes the connection now (its client is too slow).
    fn abort(&self) {
        let mut s = self.lock();
        // The socket is still the connection's while its body lives (`gone` is set, under
        // this lock, when the body is dropped, before the socket is closed).
        if let Some(ConnSocket(fd)) = self.socket.filter(|_| !s.gone) {
            // SAFETY: shutdown(2) on a descriptor the connection still owns; it neither
            // closes nor frees it. Writes then fail, and the server drops the connection.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        s.buf.clear();
        s.frames = 0;
        s.ended = true;
        s.aborted = true;
        wake(&mut s);
    }

    /// Ends the stream after what is queued and, if given, a last comment.
    pub fn end(&self, last: Option<&[u8]>) {
        let mut s = self.lock();
        if let Some(last) = last.filter(|_| !s.ended) {
            s.push(last);
        }
        s.ended = true;
        wake(&mut s);
    }
}

impl OutState {
    /// Frames are copied in, not shared: a reference count that every connection's
    /// thread touches costs more than copying a few hundred bytes.
    fn push(&mut self, frame: &[u8]) {
        self.buf.extend_from_slice(frame);
        self.frames += 1;
    }

    /// What the connection writes next: everything queued, or, of a long backlog, a piece
    /// that ends on a frame boundary, so its write buffer never grows past `MAX_WRITE`.
    fn take_write(&mut self) -> Bytes {
        if self.buf.len() <= MAX_WRITE {
            self.frames = 0;
            return self.buf.split().freeze();
        }
        let end_of_frame = |bytes: &[u8]| bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
        // The whole frames within MAX_WRITE, or else the first frame alone (a larger one).
        let cut = self.buf[..MAX_WRITE]
            .windows(2)
            .rposition(|w| w == b"\n\n")
            .map(|i| i + 2)
            .or_else(|| end_of_frame(&self.buf))
            .unwrap_or(self.buf.len());
        let out = self.buf.split_to(cut).freeze();
        // Frames end with the only blank line they hold.
        self.frames = self.frames.saturating_sub(out.windows(2).filter(|w| w == b"\n\n").count());
        out
    }
}

fn wake(s: &mut OutState) {
    if let Some(w) = s.waker.take() {
        w.wake();
    }
}

/// The response body of a stream: drains its outbox, several frames per write. Dropped
/// when the connection ends, which tells the hub.
pub struct StreamBody {
    outbox: Arc<Outbox>,
    id: u64,
    hub: HubLink,
    ctx: Arc<DeliveryContext>,
}

/// The hub's address, shared by every stream's body and actor (an `Addr` of its own costs
/// each of them two allocations).
pub type HubLink = Arc<Addr<StreamHub>>;

impl StreamBody {
    pub fn new(outbox: Arc<Outbox>, id: u64, hub: HubLink, ctx: Arc<DeliveryContext>) -> Self {
        ctx.metrics.streams_open.inc();
        Self { outbox, id, hub, ctx }
    }
}

impl MessageBody for StreamBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let outbox = &self.outbox;
        let mut s = outbox.lock();
        if s.aborted {
            return Poll::Ready(Some(Err(std::io::Error::other("stream cut off: its client is too slow"))));
        }
        if s.buf.is_empty() {
            if s.ended {
                return Poll::Ready(None);
            }
            if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let out = s.take_write();
        drop(s);
        outbox.room.notify_one();
        Poll::Ready(Some(Ok(out)))
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        self.outbox.lock().gone = true;
        self.outbox.room.notify_one();
        self.ctx.metrics.streams_open.dec();
        self.hub.do_send(StreamClosed(self.id));
    }
}

/// One round of committed events from the hub, in seq order; the actor keeps those its
/// client wants.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Frames(pub Arc<[Arc<StreamEvent>]>);

/// A keep-alive comment (the hub's one timer for every stream).
#[derive(Message)]
#[rtype(result = "()")]
pub struct KeepAlive(pub Bytes);

/// The stream ends: its client left, or the server is shutting down (with a last comment).
#[derive(Message)]
#[rtype(result = "()")]
pub struct End(pub Trip, pub Option<Bytes>);

pub struct StreamActor {
    spec: Arc<StreamSpec>,
    outbox: Arc<Outbox>,
    ctx: Arc<DeliveryContext>,
    hub: HubLink,
    /// The store range (after, until] to send before any live event.
    replay: Option<(i64, i64)>,
    /// Live events that arrived while the replay runs (`Some` until it is done), and their
    /// frames' size.
    deferred: Option<VecDeque<Arc<StreamEvent>>>,
    deferred_bytes: usize,
    /// Open once the client fell behind or left: the actor stops.
    tripped: Option<Trip>,
}

impl StreamActor {
    /// An actor for `outbox`'s connection that sends live events after `hub_cursor` and,
    /// first, what its client missed after `resume_after` (a `Last-Event-ID`, or where the
    /// actor it replaces stopped).
    pub fn new(
        spec: Arc<StreamSpec>,
        outbox: Arc<Outbox>,
        ctx: Arc<DeliveryContext>,
        hub: HubLink,
        resume_after: Option<i64>,
        hub_cursor: i64,
    ) -> Self {
        let replay = match resume_after {
            Some(after) if after < hub_cursor => {
                // A replacement after a death before the first replayed frame resumes here.
                outbox.sent_through(after);
                Some((after, hub_cursor))
            }
            _ => {
                outbox.sent_through(resume_after.unwrap_or(0).max(hub_cursor));
                None
            }
        };
        ctx.metrics.stream_actors.inc();
        Self {
            spec,
            outbox,
            ctx,
            hub,
            deferred: replay.map(|_| VecDeque::new()),
            replay,
            deferred_bytes: 0,
            tripped: None,
        }
    }

    fn trip(&mut self, why: Trip, last: Option<&[u8]>, ctx: &mut Context<Self>) {
        if self.tripped.is_some() {
            return;
        }
        self.tripped = Some(why);
        if why == Trip::TooSlow {
            self.ctx.metrics.streams_dropped_slow.inc();
            log::info!(
                "stream {}: client too slow, disconnecting (it may resume from {})",
                self.spec.id,
                self.outbox.last_sent()
            );
        }
        if why == Trip::TooSlow {
            self.outbox.abort();
        } else {
            self.outbox.end(last);
        }
        ctx.stop();
    }

    /// Live events while the replay runs wait here, within the same bounds as the outbox.
    fn defer(&mut self, events: &[Arc<StreamEvent>]) -> Result<(), Trip> {
        let Some(deferred) = &mut self.deferred else { return Ok(()) };
        for event in events.iter().filter(|e| self.spec.wants(e)) {
            let size = event.frame(self.spec.named).len();
            if deferred.len() >= self.outbox.capacity
                || (self.deferred_bytes + size > self.outbox.max_bytes && !deferred.is_empty())
            {
                return Err(Trip::TooSlow);
            }
            deferred.push_back(event.clone());
            self.deferred_bytes += size;
        }
        Ok(())
    }

    fn send_live(&mut self, events: &[Arc<StreamEvent>]) -> Result<(), Trip> {
        let spec = &self.spec;
        let sent = self.outbox.offer(events.iter().map(|e| &**e).filter(|e| spec.wants(e)), spec.named)?;
        self.ctx.metrics.stream_events_sent.inc_by(sent);
        Ok(())
    }

    /// The replay is done (or failed): the deferred live events follow.
    fn replayed(&mut self, outcome: Result<i64, Trip>, ctx: &mut Context<Self>) {
        let sent = match outcome {
            Ok(sent) => sent,
            Err(why) => return self.trip(why, None, ctx),
        };
        self.ctx.metrics.stream_events_sent.inc_by(sent as u64);
        if let Some((_, until)) = self.replay.take() {
            self.outbox.sent_through(until);
        }
        let deferred: Vec<Arc<StreamEvent>> = self.deferred.take().unwrap_or_default().into();
        self.deferred_bytes = 0;
        if let Err(why) = self.send_live(&deferred) {
            self.trip(why, None, ctx);
        }
    }
}

/// Sends `after < seq <= until` from the store, page by page, as fast as the client reads
/// (memory stays at one page). Answers how many frames went out.
async fn replay(
    outbox: Arc<Outbox>,
    spec: Arc<StreamSpec>,
    db: crate::store::Db,
    after: i64,
    until: i64,
) -> Result<i64, Trip> {
    let (mut cursor, mut sent) = (after, 0);
    loop {
        let (org, types) = (spec.org_id.clone(), spec.types.clone());
        let page = db
            .run(move |conn| events::stream_page(conn, &org, &types, cursor, until, REPLAY_PAGE))
            .await
            .map_err(|e| {
                log::warn!("stream {}: replay failed: {}", spec.id, e);
                Trip::Gone
            })?;
        let full = page.len() as i64 == REPLAY_PAGE;
        for e in page {
            cursor = e.seq;
            let event = StreamEvent::new(&e);
            if !spec.wants(&event) {
                continue;
            }
            if !outbox.push_waiting(event.frame(spec.named), e.seq).await {
                return Err(Trip::Gone);
            }
            sent += 1;
        }
        if !full {
            return Ok(sent);
        }
    }
}

impl Actor for StreamActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some((after, until)) = self.replay {
            let work = replay(self.outbox.clone(), self.spec.clone(), self.ctx.db.clone(), after, until);
            ctx.spawn(work.into_actor(self).map(|outcome, act, ctx| act.replayed(outcome, ctx)));
        }
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.hub.do_send(StreamEnded { id: self.spec.id, addr: ctx.address() });
    }
}

/// Counted from creation to drop: an actor that dies is dropped too.
impl Drop for StreamActor {
    fn drop(&mut self) {
        self.ctx.metrics.stream_actors.dec();
    }
}

impl Handler<Frames> for StreamActor {
    type Result = ();

    fn handle(&mut self, msg: Frames, ctx: &mut Context<Self>) {
        if self.tripped.is_some() {
            return;
        }
        let outcome = if self.deferred.is_some() { self.defer(&msg.0) } else { self.send_live(&msg.0) };
        if let Err(why) = outcome {
            self.trip(why, None, ctx);
        }
    }
}

impl Handler<KeepAlive> for StreamActor {
    type Result = ();

    fn handle(&mut self, msg: KeepAlive, ctx: &mut Context<Self>) {
        if !self.outbox.comment(&msg.0) {
            self.trip(Trip::Gone, None, ctx);
        }
    }
}

impl Handler<End> for StreamActor {
    type Result = ();

    fn handle(&mut self, msg: End, ctx: &mut Context<Self>) {
        self.trip(msg.0, msg.1.as_deref(), ctx);
    }
}

/// Test builds only: makes the actor panic, as a bug would, to prove its supervisor
/// replaces it.
#[cfg(feature = "fault-injection")]
impl Handler<super::messages::Panic> for StreamActor {
    type Result = ();

    fn handle(&mut self, _: super::messages::Panic, _: &mut Context<Self>) {
        panic!("stream {}: injected fault", self.spec.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> OutState {
        OutState {
            buf: BytesMut::new(),
            frames: 0,
            waker: None,
            last_sent: 0,
            ended: false,
            aborted: false,
            gone: false,
        }
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = b"data: ".to_vec();
        f.extend(std::iter::repeat_n(b'x', len));
        f.extend_from_slice(b"\n\n");
        f
    }

    #[test]
    fn a_backlog_goes_out_in_whole_frames_of_at_most_max_write() {
        let mut s = state();
        let frame = frame(300);
        let n = 3 * MAX_WRITE / frame.len();
        for _ in 0..n {
            s.push(&frame);
        }
        let mut written = Vec::new();
        while !s.buf.is_empty() {
            let before = s.frames;
            let piece = s.take_write();
            assert!(piece.len() <= MAX_WRITE, "{} bytes", piece.len());
            assert_eq!(piece.len() % frame.len(), 0, "whole frames only");
            assert_eq!(before - s.frames, piece.len() / frame.len(), "the count follows");
            written.extend_from_slice(&piece);
        }
        assert_eq!(s.frames, 0);
        assert_eq!(written, frame.repeat(n));
    }

    #[test]
    fn a_large_frame_goes_whole_and_alone() {
        let mut s = state();
        let (big, small) = (frame(2 * MAX_WRITE), frame(10));
        for f in [&big, &small, &small] {
            s.push(f);
        }
        assert_eq!(&s.take_write()[..], &big[..], "the large frame, not the backlog behind it");
        assert_eq!(s.frames, 2);
        assert_eq!(s.take_write().len(), 2 * small.len());
        assert_eq!(s.frames, 0);
    }

    #[test]
    fn a_frame_larger_than_max_write_goes_whole() {
        let mut s = state();
        let big = frame(2 * MAX_WRITE);
        s.push(&big);
        assert_eq!(&s.take_write()[..], &big[..]);
        assert_eq!(s.frames, 0);
    }
}
