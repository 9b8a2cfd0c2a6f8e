//! The transport under every call: authentication, timeouts, retries with backoff,
//! `Retry-After`, `RateLimit-*` pacing, one `Idempotency-Key` across the tries of a `POST`,
//! and the circuit breaker.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use awc::error::SendRequestError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::{Backoff, retry_after};
use crate::breaker::{Breaker, Permit};
use crate::error::{ApiError, Error};
use crate::pages::Pages;
use crate::rate_limit::RateLimit;

/// The largest answer read: a full page of 250 events of herald's largest size.
const MAX_ANSWER_BYTES: usize = 128 << 20;

/// A herald API client. Cheap to clone (clones share the connection pool, the circuit
/// breaker and the rate-limit state). Like awc's client it lives on one thread: make one
/// per actix-web worker or per task thread.
///
/// ```no_run
/// # async fn run() -> Result<(), herald_client::Error> {
/// use herald_client::{Client, NewEvent};
/// use serde_json::json;
///
/// let herald = Client::new("http://127.0.0.1:8080", "hk_…");
/// let published = herald.publish(&NewEvent::new("order.created", json!({"order": 42}))).await?;
/// println!("{} reaches {} endpoint(s)", published.id, published.delivery_count);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Rc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) base_url: String,
    api_key: Option<String>,
    admin_token: Option<String>,
    http: awc::Client,
    /// For the event stream: no overall timeout (an idle timer guards it instead).
    pub(crate) streaming: awc::Client,
    timeout: Duration,
    max_retries: u32,
    pub(crate) backoff: Backoff,
    max_retry_wait: Duration,
    breaker: RefCell<Breaker>,
    rate: RefCell<RateLimit>,
}

/// Settings for a [`Client`]; every one has a default.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<String>,
    admin_token: Option<String>,
    timeout: Duration,
    max_retries: u32,
    backoff: Backoff,
    max_retry_wait: Duration,
    breaker_threshold: u32,
    breaker_open_for: Duration,
}

impl ClientBuilder {
    /// The API key every call sends (`Authorization: Bearer …`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The admin token, for the organisation and key routes (`POST /v1/orgs`, …).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// How long one try of a request may take, answer included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a retriable failure is tried again (default 4, so 5 tries in all).
    /// `0` turns retries off.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first backoff delay and the cap (defaults 250 ms and 30 s). Each delay doubles
    /// the previous one and is jittered between half and all of it.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = Backoff { base: first, max };
        self
    }

    /// The longest `Retry-After` the client sleeps through before retrying (default 60 s);
    /// a longer one ends the call with the `429`/`503` error instead.
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    /// The circuit breaker: consecutive failures before it opens (default 5) and how long
    /// it stays open before one probe (default 30 s).
    pub fn circuit_breaker(mut self, failures: u32, open_for: Duration) -> Self {
        self.breaker_threshold = failures;
        self.breaker_open_for = open_for;
        self
    }

    /// Makes the client.
    pub fn build(self) -> Client {
        let http = awc::Client::builder().timeout(self.timeout).add_default_header(user_agent()).finish();
        let streaming = awc::Client::builder().disable_timeout().add_default_header(user_agent()).finish();
        Client {
            inner: Rc::new(Inner {
                base_url: self.base_url.trim_end_matches('/').to_string(),
                api_key: self.api_key,
                admin_token: self.admin_token,
                http,
                streaming,
                timeout: self.timeout,
                max_retries: self.max_retries,
                backoff: self.backoff,
                max_retry_wait: self.max_retry_wait,
                breaker: RefCell::new(Breaker::new(self.breaker_threshold, self.breaker_open_for)),
                rate: RefCell::new(RateLimit::default()),
            }),
        }
    }
}

fn user_agent() -> (&'static str, String) {
    ("user-agent", format!("herald-client/{}", env!("CARGO_PKG_VERSION")))
}

impl Client {
    /// A client for the herald at `base_url` (`http://127.0.0.1:8080`) with an API key and
    /// every other setting at its default.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Client {
        Client::builder(base_url).api_key(api_key).build()
    }

    /// A client configured from `HERALD_URL` (default `http://127.0.0.1:8080`) and
    /// `HERALD_API_KEY`.
    pub fn from_env() -> Client {
        let url = std::env::var("HERALD_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_string());
        let mut builder = Client::builder(url);
        if let Ok(key) = std::env::var("HERALD_API_KEY") {
            builder = builder.api_key(key);
        }
        builder.build()
    }

    /// Settings beyond the defaults.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: None,
            admin_token: None,
            timeout: Duration::from_secs(10),
            max_retries: 4,
            backoff: Backoff { base: Duration::from_millis(250), max: Duration::from_secs(30) },
            max_retry_wait: Duration::from_secs(60),
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(30),
        }
    }

    /// Whether the circuit breaker is open (or probing) after repeated failures.
    pub fn circuit_open(&self) -> bool {
        self.inner.breaker.borrow().is_open()
    }

    pub(crate) fn api_key(&self) -> Option<&str> {
        self.inner.api_key.as_deref()
    }

    pub(crate) async fn send_json<T: DeserializeOwned>(&self, req: Request) -> Result<T, Error> {
        let answer = self.execute(req).await?;
        serde_json::from_slice(&answer.body).map_err(|e| Error::Decode(e.to_string()))
    }

    pub(crate) async fn send_empty(&self, req: Request) -> Result<(), Error> {
        self.execute(req).await.map(drop)
    }

    pub(crate) fn paginate<T: DeserializeOwned + 'static>(&self, req: Request) -> Pages<T> {
        Pages::new(self.clone(), req)
    }

    /// Sends `req`, retrying what may succeed later.
    async fn execute(&self, req: Request) -> Result<Answer, Error> {
        let inner = &*self.inner;
        // One key for every try: herald answers a repeat with the first answer, so a
        // retry after a lost answer cannot publish twice.
        let idempotency_key = (req.method == Method::POST)
            .then(|| req.idempotency_key.clone().unwrap_or_else(new_idempotency_key));
        let mut lost_answer = false;
        for attempt in 0.. {
            let permit = inner.breaker.borrow_mut().permit(Instant::now());
            if let Permit::Refuse(retry_in) = permit {
                return Err(Error::CircuitOpen { retry_in });
            }
            let probe = ProbeGuard::arm(&inner.breaker);
            let pause = inner.rate.borrow_mut().wait(Instant::now());
            if let Some(pause) = pause {
                log::debug!(
                    "herald-client: rate limit spent; waiting {} ms for its reset",
                    pause.as_millis()
                );
                tokio::time::sleep(pause).await;
            }
            let outcome = self.try_once(&req, idempotency_key.as_deref()).await;
            // The outcome is recorded below, without an await in between.
            probe.disarm();
            let now = Instant::now();
            let (error, asked_delay) = match outcome {
                Ok(answer) => {
                    inner.rate.borrow_mut().observe(&answer.headers, now);
                    let status = answer.status;
                    if status < 500 {
                        // The service answered: it is up, whatever it thought of the request.
                        inner.breaker.borrow_mut().success();
                    } else {
                        inner.breaker.borrow_mut().failure(now);
                    }
                    if status < 400 {
                        return Ok(answer);
                    }
                    // A DELETE whose earlier answer was lost may have done its work.
                    if status == 404 && lost_answer && req.method == Method::DELETE {
                        return Ok(answer);
                    }
                    let error = Error::Api(ApiError::from_answer(status, &answer.headers, &answer.body));
                    if !error.is_retriable() {
                        return Err(error);
                    }
                    (error, retry_after(&answer.headers, SystemTime::now()))
                }
                Err((error, maybe_sent)) => {
                    inner.breaker.borrow_mut().failure(now);
                    lost_answer |= maybe_sent;
                    (error, None)
                }
            };
            if attempt >= inner.max_retries {
                return Err(error);
            }
            let delay = match asked_delay {
                Some(asked) if asked > inner.max_retry_wait => return Err(error),
                Some(asked) => asked,
                None => inner.backoff.delay(attempt),
            };
            log::debug!("herald-client: {error}; try {} in {} ms", attempt + 2, delay.as_millis());
            tokio::time::sleep(delay).await;
        }
        unreachable!("the retry loop returns")
    }

    /// One try. An error comes with whether the request may have reached herald: `false`
    /// when no connection was made, so nothing was sent.
    async fn try_once(&self, req: &Request, idempotency_key: Option<&str>) -> Result<Answer, (Error, bool)> {
        let inner = &*self.inner;
        let timeout = req.timeout.unwrap_or(inner.timeout);
        let mut request = inner
            .http
            .request(req.method.clone(), format!("{}{}", inner.base_url, req.path))
            .timeout(timeout);
        if !req.query.is_empty() {
            request = request.query(&req.query).map_err(|e| (Error::Decode(format!("query: {e}")), false))?;
        }
        let credential = if req.admin { inner.admin_token.as_deref() } else { inner.api_key.as_deref() };
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        if let Some(key) = idempotency_key {
            request = request.insert_header(("idempotency-key", key));
        }
        let exchange = async {
            let sent = match &req.body {
                Some(body) => request.content_type("application/json").send_body(body.clone()).await,
                None => request.send().await,
            };
            let mut response = sent.map_err(|e| match e {
                SendRequestError::Connect(e) => (Error::Connect(e.to_string()), false),
                SendRequestError::Timeout => (Error::Timeout, true),
                other => (Error::Connect(other.to_string()), true),
            })?;
            let body = response
                .body()
                .limit(MAX_ANSWER_BYTES)
                .await
                .map_err(|e| (Error::Connect(e.to_string()), true))?;
            Ok(Answer { status: response.status().as_u16(), headers: response.headers().clone(), body })
        };
        tokio::time::timeout(timeout, exchange).await.unwrap_or(Err((Error::Timeout, true)))
    }
}

/// Held by a call while it is the circuit breaker's probe. If the call is dropped before the
/// probe's outcome (its caller gave up), the breaker lets the next call probe instead of
/// refusing every call for ever while it waits for that outcome.
struct ProbeGuard<'a>(Option<&'a RefCell<Breaker>>);

impl<'a> ProbeGuard<'a> {
    /// Armed only when the permit just given was the probe's (the circuit is then half-open).
    fn arm(breaker: &'a RefCell<Breaker>) -> Self {
        ProbeGuard(breaker.borrow().is_open().then_some(breaker))
    }

    /// The outcome is about to be recorded.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut breaker) = self.0.and_then(|b| b.try_borrow_mut().ok()) {
            breaker.abandon_probe(Instant::now());
        }
    }
}

fn new_idempotency_key() -> String {
    format!("hc_{}", hex::encode(crate::webhook::random_bytes::<16>()))
}

/// One answer, read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// One API request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    body: Option<Bytes>,
    idempotency_key: Option<String>,
    timeout: Option<Duration>,
    admin: bool,
}

impl Request {
    fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
            timeout: None,
            admin: false,
        }
    }

    pub(crate) fn get(path: impl Into<String>) -> Request {
        Request::new(Method::GET, path)
    }

    pub(crate) fn post(path: impl Into<String>) -> Request {
        Request::new(Method::POST, path)
    }

    pub(crate) fn patch(path: impl Into<String>) -> Request {
        Request::new(Method::PATCH, path)
    }

    pub(crate) fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::DELETE, path)
    }

    pub(crate) fn query(mut self, name: &str, value: impl ToString) -> Request {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// A list's filters: each field of `filters` that is set becomes a query parameter.
    pub(crate) fn filters<Q: Serialize>(mut self, filters: &Q) -> Request {
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(filters) {
            for (name, value) in fields {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                self.query.push((name, value));
            }
        }
        self
    }

    /// Sets (or replaces) one query parameter.
    pub(crate) fn set_query(mut self, name: &str, value: impl ToString) -> Request {
        self.query.retain(|(n, _)| *n != name);
        self.query(name, value)
    }

    pub(crate) fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Request {
        // Serialising herald's own request types cannot fail (string keys, no custom code).
        let bytes = serde_json::to_vec(body).expect("a request body serialises to JSON");
        self.body = Some(Bytes::from(bytes));
        self
    }

    pub(crate) fn idempotency_key(mut self, key: Option<String>) -> Request {
        self.idempotency_key = key;
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn admin(mut self) -> Request {
        self.admin = true;
        self
    }
}

/// One path segment, percent-encoded: an id can never reach another route.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("ep_01HX"), "ep_01HX");
        assert_eq!(segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
