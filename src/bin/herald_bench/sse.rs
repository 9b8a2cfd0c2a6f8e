//! K concurrent Server-Sent Events streams, opened from several loopback source addresses
//! (127.0.0.2, 127.0.0.3, …: one address has only ~28,000 ephemeral ports) and read on the
//! bench's own thread(s). Each frame's embedded send time gives publish-to-receive latency;
//! a bitset per stream finds duplicates and what never arrived.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

use crate::http::{ChunkDecoder, Conn, encode_request};
use crate::util::{now_us, number_after, span_us};

/// Streams per loopback source address.
const PER_SOURCE: usize = 10_000;
/// Connections being opened at once, per thread (herald's accept backlog is finite).
const OPENING_AT_ONCE: usize = 128;
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

pub const STREAM_PATH: &str = "/v1/events/stream?types=bench.*";

/// Counters the main thread watches while the streams run.
#[derive(Default)]
pub struct Progress {
    pub opened: AtomicU64,
    pub failed: AtomicU64,
    /// Streams that ended after opening (herald closed them, or they broke).
    pub ended: AtomicU64,
    /// Streams that have received a warm-up frame.
    pub warmed: AtomicU64,
    /// First copies of measured frames, over all streams.
    pub frames: AtomicU64,
    pub measuring: AtomicBool,
    first_error: Mutex<Option<String>>,
}

impl Progress {
    fn error(&self, e: String) {
        let mut first = self.first_error.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(e);
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub struct Plan {
    pub addr: SocketAddr,
    pub key: String,
    pub streams: usize,
    /// Measured events are numbered 0..events.
    pub events: usize,
    pub threads: usize,
}

#[derive(Debug, Default)]
struct ThreadStats {
    latencies_us: Vec<u32>,
    duplicates: u64,
    seen: Vec<Vec<u64>>,
    got: Vec<u32>,
    opened: Vec<bool>,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub latencies_us: Vec<u32>,
    pub duplicates: u64,
    /// Streams that received every one of the expected events.
    pub complete_streams: u64,
    /// Expected frames that never arrived, over the streams that opened.
    pub missing: u64,
}

pub struct Clients {
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<ThreadStats>>,
}

fn source_address(stream: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (stream / PER_SOURCE).min(250) as u8))
}

/// Starts opening every stream now; `progress` tells how far it got.
pub fn start(plan: Plan, progress: Arc<Progress>) -> io::Result<Clients> {
    let plan = Arc::new(plan);
    let threads = plan.threads.clamp(1, plan.streams.max(1));
    let mut clients = Clients { stops: Vec::new(), threads: Vec::new() };
    for t in 0..threads {
        let (stop, stopped) = oneshot::channel::<()>();
        let (plan, progress) = (plan.clone(), progress.clone());
        let handle = std::thread::Builder::new().name(format!("bench-sse-{t}")).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let mine: Vec<usize> = (t..plan.streams).step_by(threads).collect();
                let words = plan.events.div_ceil(64);
                let stats = Rc::new(RefCell::new(ThreadStats {
                    seen: vec![vec![0; words]; mine.len()],
                    got: vec![0; mine.len()],
                    opened: vec![false; mine.len()],
                    ..ThreadStats::default()
                }));
                let gate = Rc::new(Semaphore::new(OPENING_AT_ONCE));
                for (local, global) in mine.into_iter().enumerate() {
                    let stream = Stream { local, global, plan: plan.clone(), progress: progress.clone() };
                    actix_web::rt::spawn(stream.run(stats.clone(), gate.clone()));
                }
                let _ = stopped.await;
                stats.take()
            })
        })?;
        clients.stops.push(stop);
        clients.threads.push(handle);
    }
    Ok(clients)
}

impl Clients {
    /// Closes every stream and counts what arrived against `expected` events per stream.
    pub fn stop(self, expected: u64) -> Stats {
        for stop in self.stops {
            let _ = stop.send(());
        }
        let mut stats = Stats::default();
        for handle in self.threads {
            let Ok(t) = handle.join() else { continue };
            stats.latencies_us.extend(t.latencies_us);
            stats.duplicates += t.duplicates;
            for (got, opened) in t.got.iter().zip(&t.opened) {
                if *opened {
                    let got = u64::from(*got);
                    stats.missing += expected.saturating_sub(got);
                    stats.complete_streams += u64::from(got >= expected);
                }
            }
        }
        stats
    }
}

struct Stream {
    local: usize,
    global: usize,
    plan: Arc<Plan>,
    progress: Arc<Progress>,
}

impl Stream {
    async fn open(&self) -> io::Result<(Conn, bool)> {
        let mut conn = Conn::connect(Some(source_address(self.global)), self.plan.addr).await?;
        let mut raw = Vec::with_capacity(256);
        let auth = format!("Bearer {}", self.plan.key);
        let headers = [("Authorization", auth.as_str()), ("Accept", "text/event-stream")];
        encode_request(&mut raw, "GET", STREAM_PATH, &self.plan.addr.to_string(), &headers, b"");
        conn.write_all(&raw).await?;
        let head = conn.read_head().await?;
        if head.status != 200 {
            return Err(io::Error::other(format!("the stream answered HTTP {}", head.status)));
        }
        Ok((conn, head.chunked))
    }

    async fn run(self, stats: Rc<RefCell<ThreadStats>>, gate: Rc<Semaphore>) {
        let opened = {
            let _permit = gate.acquire().await;
            tokio::time::timeout(OPEN_TIMEOUT, self.open()).await
        };
        let (mut conn, chunked) = match opened {
            Ok(Ok(open)) => open,
            Ok(Err(e)) => return self.failed(e.to_string()),
            Err(_) => return self.failed(format!("no answer within {OPEN_TIMEOUT:?}")),
        };
        stats.borrow_mut().opened[self.local] = true;
        self.progress.opened.fetch_add(1, Ordering::Relaxed);
        let mut frames =
            FrameReader { chunks: chunked.then(ChunkDecoder::default), ..FrameReader::default() };
        let mut warmed = false;
        let mut input = Vec::with_capacity(4096);
        loop {
            input.clear();
            let ended = match conn.read_stream(&mut input).await {
                Ok(0) => Err("closed by herald".to_string()),
                Ok(_) => {
                    let now = now_us();
                    let mut stats = stats.borrow_mut();
                    frames.feed(&input, |data| self.frame(data, now, &mut warmed, &mut stats))
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = ended {
                self.progress.ended.fetch_add(1, Ordering::Relaxed);
                self.progress.error(format!("a stream ended: {e}"));
                return;
            }
        }
    }

    fn failed(&self, e: String) {
        self.progress.failed.fetch_add(1, Ordering::Relaxed);
        self.progress.error(format!("cannot open a stream: {e}"));
    }

    fn frame(&self, data: &[u8], now: u64, warmed: &mut bool, stats: &mut ThreadStats) {
        if number_after(data, br#""w":"#).is_some() {
            if !*warmed {
                *warmed = true;
                self.progress.warmed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if !self.progress.measuring.load(Ordering::Relaxed) {
            return;
        }
        let (Some(index), Some(sent)) = (number_after(data, br#""i":"#), number_after(data, br#""t":"#))
        else {
            return;
        };
        let index = index as usize;
        if index >= self.plan.events {
            return;
        }
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if stats.seen[self.local][word] & bit != 0 {
            stats.duplicates += 1;
            return;
        }
        stats.seen[self.local][word] |= bit;
        stats.got[self.local] += 1;
        stats.latencies_us.push(span_us(sent, now));
        self.progress.frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Turns the bytes of a stream (chunked or not) into its `data:` lines.
#[derive(Default)]
struct FrameReader {
    chunks: Option<ChunkDecoder>,
    decoded: Vec<u8>,
    pending: Vec<u8>,
}

impl FrameReader {
    /// Calls `on_data` with each complete `data:` line; an error when the body has ended.
    fn feed(&mut self, input: &[u8], mut on_data: impl FnMut(&[u8])) -> Result<(), String> {
        match &mut self.chunks {
            Some(decoder) => {
                self.decoded.clear();
                decoder.feed(input, &mut self.decoded).map_err(|e| e.to_string())?;
                self.pending.extend_from_slice(&self.decoded);
            }
            None => self.pending.extend_from_slice(input),
        }
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end];
            if let Some(data) = line.strip_prefix(b"data:") {
                on_data(data);
            }
            start += end + 1;
        }
        self.pending.drain(..start);
        if self.chunks.as_ref().is_some_and(ChunkDecoder::is_done) {
            return Err("the stream's body ended".into());
        }
        Ok(())
    }
}
