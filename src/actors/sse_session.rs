//! One `Session` per open stream: a bounded buffer of encoded frames (the stream's mailbox)
//! that the Registry's hub fills and the HTTP response body drains. It is not an actix
//! actor: at thousands of streams a mailbox hop, a task and two timers per stream cost more
//! than the write itself, so the hub appends frames, encoded once per event, straight into
//! the buffer and wakes the connection once per round; whatever accumulated goes out in
//! one write.
//!
//! Lossless resume: the hub registers the session and answers its cursor H; a client
//! resuming from `Last-Event-ID` < H is replayed `Last-Event-ID` < seq <= H from the store
//! in pages while live events (seq > H) are held, then the held ones follow: no gap, no
//! reordering. A client that cannot keep up is cut off once its queue is full and resumes
//! by reconnecting.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use actix::Addr;
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{Bytes, BytesMut};

use super::DeliveryContext;
use super::registry::{Registry, StreamClosed};
use crate::store::endpoints::type_matches;
use crate::store::events;

const REPLAY_PAGE: i64 = 500;
/// Bytes handed to the connection at once at most (a backlog goes in pieces); also the
/// server's write-buffer limit. A single larger frame still goes whole.
pub const MAX_WRITE: usize = 4000;

/// A committed event as streams see it: encoded once, shared by every session.
#[derive(Debug)]
pub struct StreamEvent {
    pub seq: i64,
    pub org_id: String,
    pub event_type: String,
    /// `id:`, `event:` (the type) and `data:` lines.
    named: Bytes,
    /// Without the `event:` line: a browser's `EventSource.onmessage` receives every type,
    /// which it cannot when frames are named.
    unnamed: Bytes,
}

impl StreamEvent {
    pub fn new(e: &events::Event) -> Self {
        let data = crate::delivery::envelope::envelope_text(e);
        let id = e.seq.to_string();
        Self {
            seq: e.seq,
            org_id: e.org_id.clone(),
            named: encode_data(&id, Some(&e.event_type), &data),
            unnamed: encode_data(&id, None, &data),
            event_type: e.event_type.clone(),
        }
    }

    fn frame(&self, named: bool) -> &[u8] {
        if named { &self.named } else { &self.unnamed }
    }
}

/// An event-stream message. Ids and types never hold line breaks (they are validated), and
/// data is one `data:` line per line.
fn encode_data(id: &str, event_type: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + id.len() + 32);
    out.push_str("id: ");
    out.push_str(id);
    out.push('\n');
    if let Some(t) = event_type {
        out.push_str("event: ");
        out.push_str(t);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

pub fn filter_matches(types: &[String], event_type: &str) -> bool {
    types.is_empty() || types.iter().any(|f| type_matches(f, event_type))
}

pub struct Session {
    pub id: u64,
    org_id: String,
    types: Vec<String>,
    named: bool,
    capacity: usize,
    /// Bytes of frames (queued, or held during a replay) a client may fall behind by.
    max_bytes: usize,
    ctx: Arc<DeliveryContext>,
    state: Mutex<State>,
    /// Signalled when the body took frames: a replay waiting for room goes on.
    room: tokio::sync::Notify,
}

struct State {
    /// Encoded frames not yet handed to the connection, and how many.
    buf: BytesMut,
    frames: usize,
    waker: Option<Waker>,
    /// Live events that arrived while the replay runs (`Some` until it is done), and their
    /// frames' size.
    held: Option<VecDeque<Arc<StreamEvent>>>,
    held_bytes: usize,
    /// Frames up to this seq are queued or written.
    last_sent: i64,
    /// No more frames: the body ends once the queue is empty.
    ended: bool,
    /// The response body is gone (the client left).
    gone: bool,
}

impl Session {
    pub fn new(
        ctx: Arc<DeliveryContext>,
        org_id: String,
        types: Vec<String>,
        named: bool,
        resume_after: Option<i64>,
        retry_hint: Bytes,
    ) -> Arc<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        ctx.metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            org_id,
            types,
            named,
            capacity: ctx.settings.sse.mailbox.max(1),
            max_bytes: ctx.settings.sse.mailbox_bytes.max(1),
            state: Mutex::new(State {
                buf: BytesMut::from(&retry_hint[..]),
                frames: 1,
                waker: None,
                held: resume_after.map(|_| VecDeque::new()),
                held_bytes: 0,
                last_sent: resume_after.unwrap_or(0),
                ended: false,
                gone: false,
            }),
            ctx,
            room: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    fn wants(&self, event: &StreamEvent) -> bool {
        self.org_id == event.org_id && filter_matches(&self.types, &event.event_type)
    }

    /// The hub registered this session at its cursor `hub`: live events from now on have
    /// seq > `hub`. Answers the range to replay from the store, if the client missed any.
    pub fn subscribed(&self, hub: i64) -> Option<(i64, i64)> {
        let mut s = self.lock();
        if s.held.is_some() && s.last_sent < hub {
            return Some((s.last_sent, hub));
        }
        s.held = None;
        s.last_sent = s.last_sent.max(hub);
        None
    }

    /// Live events from the hub, in seq order; the connection is woken once for all of
    /// them. False when the session is over (the hub forgets it).
    pub fn offer(&self, events: &[Arc<StreamEvent>]) -> bool {
        let mut s = self.lock();
        let mut open = !(s.gone || s.ended);
        let queued = s.frames;
        for event in events.iter().filter(|e| self.wants(e)) {
            if !open {
                break;
            }
            let size = event.frame(self.named).len();
            let over = s.held_bytes + size > self.max_bytes;
            open = match &mut s.held {
                Some(held) if held.len() >= self.capacity || (over && !held.is_empty()) => {
                    self.too_slow(&mut s);
                    false
                }
                Some(held) => {
                    held.push_back(event.clone());
                    s.held_bytes += size;
                    true
                }
                None => self.push_live(&mut s, event),
            };
        }
        if s.frames != queued || s.ended {
            wake(&mut s);
        }
        open
    }

    fn push_live(&self, s: &mut State, event: &StreamEvent) -> bool {
        if event.seq <= s.last_sent {
            return true;
        }
        let frame = event.frame(self.named);
        if s.frames >= self.capacity || !self.has_room(s, frame.len()) {
            self.too_slow(s);
            return false;
        }
        s.push(frame);
        s.last_sent = event.seq;
        self.ctx.metrics.stream_events_sent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Whether `size` more bytes fit the mailbox (an empty one always takes one frame).
    fn has_room(&self, s: &State, size: usize) -> bool {
        s.buf.is_empty() || s.buf.len() + size <= self.max_bytes
    }

    fn too_slow(&self, s: &mut State) {
        self.ctx.metrics.streams_dropped_slow.fetch_add(1, Ordering::Relaxed);
        log::info!("stream {}: client too slow, disconnecting (it may resume from {})", self.id, s.last_sent);
        s.ended = true;
        wake(s);
    }

    /// A comment (keep-alive); dropped when the queue is full, which has news anyway.
    pub fn comment(&self, frame: &Bytes) -> bool {
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

    /// Ends the stream after what is queued and, if given, a last comment.
    pub fn end(&self, last: Option<Bytes>) {
        let mut s = self.lock();
        if let Some(last) = last {
            s.push(&last);
        }
        s.ended = true;
        wake(&mut s);
    }

    /// Replays `after < seq <= until` from the store, page by page, waiting for the client
    /// as it reads (memory stays at one page), then sends the live events held meanwhile.
    pub async fn replay(self: Arc<Self>, after: i64, until: i64) {
        let mut cursor = after;
        loop {
            let (org, types, db) = (self.org_id.clone(), self.types.clone(), self.ctx.db.clone());
            let page = match db
                .run(move |conn| events::stream_page(conn, &org, &types, cursor, until, REPLAY_PAGE))
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    log::warn!("stream {}: replay failed: {}", self.id, e.message);
                    return self.end(None);
                }
            };
            let full = page.len() as i64 == REPLAY_PAGE;
            for e in page {
                if !self.push_replayed(StreamEvent::new(&e).frame(self.named)).await {
                    return;
                }
                cursor = e.seq;
            }
            if !full {
                break;
            }
        }
        let mut s = self.lock();
        if s.gone || s.ended {
            return;
        }
        s.last_sent = s.last_sent.max(until);
        s.held_bytes = 0;
        for event in s.held.take().unwrap_or_default() {
            if !self.push_live(&mut s, &event) {
                break;
            }
        }
        wake(&mut s);
    }

    async fn push_replayed(&self, frame: &[u8]) -> bool {
        loop {
            let room = self.room.notified();
            {
                let mut s = self.lock();
                if s.gone || s.ended {
                    return false;
                }
                if s.frames < self.capacity && self.has_room(&s, frame.len()) {
                    s.push(frame);
                    self.ctx.metrics.stream_events_sent.fetch_add(1, Ordering::Relaxed);
                    wake(&mut s);
                    return true;
                }
            }
            room.await;
        }
    }
}

impl State {
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
        let cut =
            self.buf[..MAX_WRITE].windows(2).rposition(|w| w == b"\n\n").map_or(self.buf.len(), |i| i + 2);
        let out = self.buf.split_to(cut).freeze();
        // Frames end with the only blank line they hold.
        self.frames = self.buf.windows(2).filter(|w| w == b"\n\n").count();
        out
    }
}

fn wake(s: &mut State) {
    if let Some(w) = s.waker.take() {
        w.wake();
    }
}

/// The response body of a stream: drains its session's queue, several frames per write.
pub struct SessionBody {
    session: Arc<Session>,
    registry: Addr<Registry>,
}

impl SessionBody {
    pub fn new(session: Arc<Session>, registry: Addr<Registry>) -> Self {
        Self { session, registry }
    }
}

impl MessageBody for SessionBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let session = &self.session;
        let mut s = session.lock();
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
        session.room.notify_one();
        Poll::Ready(Some(Ok(out)))
    }
}

impl Drop for SessionBody {
    fn drop(&mut self) {
        self.session.lock().gone = true;
        self.session.ctx.metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
        self.registry.do_send(StreamClosed(self.session.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            buf: BytesMut::new(),
            frames: 0,
            waker: None,
            held: None,
            held_bytes: 0,
            last_sent: 0,
            ended: false,
            gone: false,
        }
    }

    #[test]
    fn frames_are_encoded_once_with_and_without_their_type() {
        assert_eq!(
            &encode_data("7", Some("order.created"), "{}")[..],
            b"id: 7\nevent: order.created\ndata: {}\n\n"
        );
        assert_eq!(&encode_data("7", None, "a\nb")[..], b"id: 7\ndata: a\ndata: b\n\n");
        assert_eq!(&comment("keep-alive")[..], b": keep-alive\n\n");
    }

    #[test]
    fn a_backlog_goes_out_in_whole_frames_of_at_most_max_write() {
        let mut s = state();
        let frame = encode_data("1", Some("t"), &"x".repeat(300));
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
    fn a_frame_larger_than_max_write_goes_whole() {
        let mut s = state();
        let big = encode_data("1", None, &"y".repeat(2 * MAX_WRITE));
        s.push(&big);
        assert_eq!(s.take_write(), big);
        assert_eq!(s.frames, 0);
    }
}
