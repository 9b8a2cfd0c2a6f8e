//! The load generator: `concurrency` workers, each on its own keep-alive HTTP/1.1
//! connection, spread over `threads` threads with their own runtimes. Closed loop (each
//! worker sends its next request when the previous one is answered) or open loop (request k
//! is due at start + k / rate whatever the answers; its time is measured from when it was
//! due, so a slow server cannot hide its queueing).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http::{Conn, encode_request};
use crate::util::{instant_at, now_us, span_us};

/// awc's own limit on one request; the scenario's deadline still cuts everything off.
const AWC_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Request {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Builds request number k, due (or sent) at `t` (microseconds of the bench clock).
pub type MakeRequest = dyn Fn(u64, u64) -> Request + Send + Sync;

#[derive(Debug, Clone, Copy)]
pub enum Pace {
    Closed,
    Open { per_second: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientKind {
    /// The bench's own minimal HTTP/1.1 writer and reader over tokio TCP.
    Raw,
    /// actix's HTTP client, the one herald delivers with.
    Awc,
}

pub struct Plan {
    pub addr: SocketAddr,
    pub path: String,
    pub concurrency: usize,
    pub total: u64,
    pub pace: Pace,
    /// Nothing is sent after it, and answers still awaited are abandoned.
    pub deadline: Instant,
    pub threads: usize,
    pub client: ClientKind,
    pub make: Arc<MakeRequest>,
    /// Successful answers whose body contains this are counted in `Outcome::marked`.
    pub marker: Option<&'static str>,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub started_us: u64,
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    pub marked: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub io_errors: u64,
    pub first_error: Option<String>,
    /// Send (closed loop) or due time (open loop) to the answer, of each 2xx.
    pub latencies_us: Vec<u32>,
    pub last_answer_us: u64,
    /// Open loop: the latest a request left after its due time (the generator's own lag).
    pub max_lag_us: u64,
    pub timed_out: bool,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.marked += other.marked;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.io_errors += other.io_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.last_answer_us = self.last_answer_us.max(other.last_answer_us);
        self.max_lag_us = self.max_lag_us.max(other.max_lag_us);
        self.timed_out |= other.timed_out;
    }

    /// 2xx answers per second, from the start to the last answer.
    pub fn ok_per_second(&self) -> f64 {
        let secs = self.last_answer_us.saturating_sub(self.started_us) as f64 / 1e6;
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    /// `202×19990 500×10 io-errors×2`, for the notes.
    pub fn answers(&self) -> String {
        let mut parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        if self.io_errors > 0 {
            parts.push(format!("io-errors×{}", self.io_errors));
        }
        if parts.is_empty() { "none".into() } else { parts.join(" ") }
    }

    fn failure(&mut self, error: String) {
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

struct Shared {
    plan: Plan,
    next: AtomicU64,
    started_us: u64,
}

/// Runs a plan to its end (every request answered, or the deadline), blocking.
pub fn run(plan: Plan) -> Outcome {
    let threads = plan.threads.clamp(1, plan.concurrency.max(1));
    let concurrency = plan.concurrency.max(1);
    let started_us = now_us();
    let shared = Arc::new(Shared { plan, next: AtomicU64::new(0), started_us });
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            let workers = concurrency / threads + usize::from(t < concurrency % threads);
            std::thread::Builder::new()
                .name(format!("bench-load-{t}"))
                .spawn(move || actix_web::rt::System::new().block_on(run_thread(shared, workers)))
        })
        .collect();
    let mut total = Outcome { started_us, ..Outcome::default() };
    for handle in handles {
        match handle.map(std::thread::JoinHandle::join) {
            Ok(Ok(outcome)) => total.merge(outcome),
            Ok(Err(_)) => total.failure("a load thread panicked".into()),
            Err(e) => total.failure(format!("cannot start a load thread: {e}")),
        }
    }
    total
}

async fn run_thread(shared: Arc<Shared>, workers: usize) -> Outcome {
    let out = Rc::new(RefCell::new(Outcome::default()));
    let awc = (shared.plan.client == ClientKind::Awc).then(|| {
        awc::Client::builder()
            .connector(awc::Connector::new().limit(workers))
            .timeout(AWC_TIMEOUT)
            .disable_redirects()
            .finish()
    });
    let tasks: Vec<_> = (0..workers)
        .map(|_| actix_web::rt::spawn(worker(shared.clone(), out.clone(), awc.clone())))
        .collect();
    for task in tasks {
        if task.await.is_err() {
            out.borrow_mut().failure("a load worker panicked".into());
        }
    }
    out.take()
}

enum Failure {
    Deadline,
    Io(String),
}

async fn worker(shared: Arc<Shared>, out: Rc<RefCell<Outcome>>, awc: Option<awc::Client>) {
    let plan = &shared.plan;
    let host = plan.addr.to_string();
    let mut conn: Option<Conn> = None;
    let mut raw = Vec::with_capacity(1024);
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= plan.total {
            break;
        }
        let t = match plan.pace {
            Pace::Closed => now_us(),
            Pace::Open { per_second } => {
                let due = shared.started_us + (k as f64 * 1e6 / per_second) as u64;
                if instant_at(due) >= plan.deadline {
                    out.borrow_mut().timed_out = true;
                    break;
                }
                tokio::time::sleep_until(instant_at(due).into()).await;
                let lag = now_us().saturating_sub(due);
                let mut o = out.borrow_mut();
                o.max_lag_us = o.max_lag_us.max(lag);
                due
            }
        };
        if Instant::now() >= plan.deadline {
            out.borrow_mut().timed_out = true;
            break;
        }
        let request = (plan.make)(k, t);
        out.borrow_mut().sent += 1;
        let answer = match &awc {
            Some(client) => send_awc(client, plan, &request).await,
            None => send_raw(&mut conn, &mut raw, plan, &host, &request).await,
        };
        let now = now_us();
        let mut o = out.borrow_mut();
        match answer {
            Ok((status, body)) => {
                *o.statuses.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    o.ok += 1;
                    o.latencies_us.push(span_us(t, now));
                    o.last_answer_us = o.last_answer_us.max(now);
                    if plan.marker.is_some_and(|m| body.windows(m.len()).any(|w| w == m.as_bytes())) {
                        o.marked += 1;
                    }
                } else {
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    o.failure(format!("HTTP {status}: {text}"));
                }
            }
            Err(Failure::Deadline) => {
                o.timed_out = true;
                break;
            }
            Err(Failure::Io(e)) => {
                o.io_errors += 1;
                o.failure(e);
            }
        }
    }
}

async fn send_raw(
    conn: &mut Option<Conn>,
    raw: &mut Vec<u8>,
    plan: &Plan,
    host: &str,
    request: &Request,
) -> Result<(u16, Vec<u8>), Failure> {
    raw.clear();
    let headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    encode_request(raw, "POST", &plan.path, host, &headers, &request.body);
    let attempt = async {
        if conn.is_none() {
            *conn = Some(Conn::connect(None, plan.addr).await?);
        }
        match conn.as_mut() {
            Some(c) => c.request(raw).await,
            None => Err(std::io::Error::other("no connection")),
        }
    };
    let result = tokio::time::timeout_at(plan.deadline.into(), attempt).await;
    match result {
        Err(_) => Err(Failure::Deadline),
        Ok(Err(e)) => {
            *conn = None;
            Err(Failure::Io(e.to_string()))
        }
        Ok(Ok((head, body))) => {
            if head.close {
                *conn = None;
            }
            Ok((head.status, body))
        }
    }
}

async fn send_awc(client: &awc::Client, plan: &Plan, request: &Request) -> Result<(u16, Vec<u8>), Failure> {
    let mut builder = client.post(format!("http://{}{}", plan.addr, plan.path));
    for (name, value) in &request.headers {
        builder = builder.insert_header((*name, value.as_str()));
    }
    let attempt = async {
        let mut response = builder.send_body(request.body.clone()).await.map_err(|e| e.to_string())?;
        let body = response.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((response.status().as_u16(), body.to_vec()))
    };
    let result = tokio::time::timeout_at(plan.deadline.into(), attempt).await;
    match result {
        Err(_) => Err(Failure::Deadline),
        Ok(Err(e)) => Err(Failure::Io(e)),
        Ok(Ok(answer)) => Ok(answer),
    }
}
