//! A real HTTP receiver for delivery tests: an actix-web server on 127.0.0.1:0 that records
//! every request herald sends it and answers as the test scripts it, at any moment.
//!
//! ```ignore
//! let receiver = Receiver::start().await;
//! receiver.push_once(Behaviour::status(500));   // the first answer is a 500,
//! receiver.set_default(Behaviour::ok());         // every later one a 200
//! let got = receiver.wait_for(2, Duration::from_secs(5)).await;
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub status: u16,
    /// Waited before answering (the request counts as in flight meanwhile).
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Behaviour {
    /// `200`, at once, with an empty body.
    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn status(status: u16) -> Self {
        Self { status, delay: Duration::ZERO, headers: Vec::new(), body: String::new() }
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case header name -> value (repeated headers joined with ", ").
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When the request reached the handler (before any scripted delay).
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics, showing the body, when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {}", self.text()))
    }

    /// The Standard Webhooks `webhook-id`, else the hmac-sha256 scheme's `x-webhook-id`.
    pub fn webhook_id(&self) -> Option<&str> {
        self.header("webhook-id").or_else(|| self.header("x-webhook-id"))
    }
}

struct Script {
    default: Behaviour,
    once: VecDeque<Behaviour>,
}

struct Shared {
    log: Mutex<Vec<Received>>,
    script: Mutex<Script>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A panicking test thread must not hide the receiver's record from the next assertion.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts a request as in flight until dropped, also when actix drops the handler early.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: Arc<Shared>) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let at = Instant::now();
    let guard = InFlight::enter(shared.clone().into_inner());

    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in req.headers() {
        let name = name.as_str().to_ascii_lowercase();
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if let Some(existing) = headers.get_mut(&name) {
            existing.push_str(", ");
            existing.push_str(&value);
        } else {
            headers.insert(name, value);
        }
    }
    lock(&shared.log).push(Received {
        method: req.method().as_str().to_string(),
        path: req.path().to_string(),
        headers,
        body: body.to_vec(),
        at,
    });

    let behaviour = {
        let mut script = lock(&shared.script);
        match script.once.pop_front() {
            Some(b) => b,
            None => script.default.clone(),
        }
    };
    if !behaviour.delay.is_zero() {
        actix_web::rt::time::sleep(behaviour.delay).await;
    }
    let status = StatusCode::from_u16(behaviour.status).expect("a valid scripted status");
    let mut response = HttpResponse::build(status);
    for (name, value) in behaviour.headers {
        response.insert_header((name, value));
    }
    drop(guard);
    response.body(behaviour.body)
}

/// The receiver; dropping it stops its server.
pub struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl Receiver {
    /// Starts on 127.0.0.1, a free port, one worker; answers `200` until told otherwise.
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            script: Mutex::new(Script { default: Behaviour::ok(), once: VecDeque::new() }),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let data = web::Data::from(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").expect("the receiver binds a free port");
        let port = listener.local_addr().expect("the receiver's address").port();
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .listen(listener)
                .expect("the receiver listens")
                .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver { port, shared, handle }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How every request is answered once the one-off queue is empty.
    pub fn set_default(&self, behaviour: Behaviour) {
        lock(&self.shared.script).default = behaviour;
    }

    /// Queues a one-off answer; queued answers are used in order before the default.
    pub fn push_once(&self, behaviour: Behaviour) {
        lock(&self.shared.script).once.push_back(behaviour);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.log).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever handled at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits (polling every 10 ms) until at least `n` requests arrived; all of them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver :{}: expected at least {n} request(s) within {timeout:?}, got {}:\n{}",
                self.port,
                got.len(),
                summary(&got)
            );
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every webhook id in `ids` has arrived (at or after `since`, when given);
    /// panics naming how many never came, with a summary of what did.
    pub async fn wait_for_ids(&self, ids: &BTreeSet<String>, since: Option<Instant>, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got: BTreeSet<String> = self
                .received()
                .iter()
                .filter(|r| since.is_none_or(|s| r.at >= s))
                .filter_map(|r| r.webhook_id().map(str::to_string))
                .collect();
            if ids.is_subset(&got) {
                return;
            }
            if Instant::now() >= deadline {
                let missing: Vec<_> = ids.difference(&got).collect();
                panic!(
                    "{} accepted events never arrived within {timeout:?}: {missing:?}\n{}",
                    missing.len(),
                    summary(&self.received())
                );
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that the count is `n` now and stays `n` for `during`.
    pub async fn assert_count_stays(&self, n: usize, during: Duration) {
        let deadline = Instant::now() + during;
        loop {
            let got = self.received();
            assert_eq!(
                got.len(),
                n,
                "receiver :{}: expected exactly {n} request(s) to stay so for {during:?}:\n{}",
                self.port,
                summary(&got)
            );
            if Instant::now() >= deadline {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One line per request, for failure messages.
pub fn summary(got: &[Received]) -> String {
    let start = got.first().map(|r| r.at);
    got.iter()
        .map(|r| {
            let offset = start.map_or(0, |s| r.at.saturating_duration_since(s).as_millis());
            format!(
                "  +{offset}ms {} {} id={} {}",
                r.method,
                r.path,
                r.webhook_id().unwrap_or("-"),
                r.text().chars().take(200).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The stop command is sent when called; nothing needs to wait for it.
        drop(self.handle.stop(false));
    }
}
