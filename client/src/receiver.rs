//! Receiving herald's webhooks in actix-web: an extractor that verifies the signature on the
//! raw body and collapses redeliveries.
//!
//! herald delivers at least once: a webhook whose answer was lost (a timeout, a restart) is
//! sent again with the same id. [`VerifiedWebhook`] reads the raw body, checks it against the
//! signature headers with the [`WebhookConfig`] registered on the app, reserves the id in a
//! [`DedupeStore`], and only then gives the handler the parsed event. The handler calls
//! [`VerifiedWebhook::handled`] once its work is done; a later copy of that id is answered
//! `204` without calling the handler again.
//!
//! What the extractor answers instead of calling the handler:
//!
//! | case | answer |
//! |---|---|
//! | missing or bad signature, stale timestamp, malformed headers | `401` `{"code":"UNAUTHORIZED",…}` |
//! | an id already handled | `204`, empty (herald counts it as delivered) |
//! | an id another request is handling right now | `503`, `Retry-After: 1` (herald retries) |
//! | body over [`WebhookConfig::max_body_bytes`] | `413` |
//! | a correctly signed body that is not the expected JSON | `400` `{"code":"VALIDATION_ERROR",…}` |
//! | the dedupe store failed | `503` |
//! | no [`WebhookConfig`] registered | `500` (and an error in the log) |
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use herald_client::receiver::{VerifiedWebhook, WebhookConfig};
//!
//! async fn on_webhook(event: VerifiedWebhook) -> HttpResponse {
//!     match event.event_type.as_str() {
//!         "order.created" => println!("new order: {}", event.data),
//!         other => println!("not interested in {other}"),
//!     }
//!     // Done: a redelivery of this id is now answered 204 without calling this handler.
//!     event.handled();
//!     HttpResponse::NoContent().finish()
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let secret = std::env::var("HERALD_WEBHOOK_SECRET").expect("HERALD_WEBHOOK_SECRET is not set");
//!     let config = WebhookConfig::new(secret);
//!     actix_web::rt::System::new().block_on(
//!         HttpServer::new(move || {
//!             App::new()
//!                 .app_data(config.clone())
//!                 .route("/webhooks", web::post().to(on_webhook))
//!         })
//!         .bind(("0.0.0.0", 3000))?
//!         .run(),
//!     )
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::ready;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::webhook::{SignatureScheme, VerifyError, verify_hmac_sha256, verify_standard_webhooks};

/// How long a reservation holds an id when its request never settles it (a crashed worker):
/// after this, a redelivery may take the id over.
const RESERVATION_TTL: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// What [`VerifiedWebhook`] checks requests against: the secrets, the signature scheme, the
/// timestamp tolerance, the body limit and the [`DedupeStore`].
///
/// Register it on the app with `App::new().app_data(config.clone())` (a
/// `web::Data<WebhookConfig>` is found too). Cloning is cheap and every clone shares the same
/// dedupe store, so build it once, outside the `HttpServer::new` closure, for all workers to
/// see each other's ids.
///
/// ```
/// use std::time::Duration;
/// use herald_client::receiver::{MemoryDedupe, WebhookConfig};
///
/// let config = WebhookConfig::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
///     // During a rotation herald signs with both secrets; accept either.
///     .also_accept("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
///     .tolerance(Duration::from_secs(120))
///     .max_body_bytes(256 * 1024)
///     .dedupe(MemoryDedupe::new(50_000));
/// # let _ = config;
/// ```
///
/// An empty secret is ignored; with no secret at all every request is refused with `401`.
#[derive(Clone)]
pub struct WebhookConfig {
    inner: Arc<ConfigInner>,
}

#[derive(Clone)]
struct ConfigInner {
    secrets: Vec<String>,
    scheme: SignatureScheme,
    tolerance: Duration,
    max_body_bytes: usize,
    dedupe: Arc<dyn DedupeStore>,
}

impl WebhookConfig {
    /// Verifies with `secret` (a `whsec_…` secret for the default Standard Webhooks scheme),
    /// a 5-minute tolerance, a 1 MiB body limit and a [`MemoryDedupe`] of 10,000 ids.
    pub fn new(secret: impl Into<String>) -> Self {
        let inner = ConfigInner {
            secrets: Vec::new(),
            scheme: SignatureScheme::StandardWebhooks,
            tolerance: Duration::from_secs(5 * 60),
            max_body_bytes: 1024 * 1024,
            dedupe: Arc::new(MemoryDedupe::new(10_000)),
        };
        Self { inner: Arc::new(inner) }.also_accept(secret)
    }

    /// The scheme herald signs this endpoint's requests with (the endpoint's
    /// `signature_scheme`); Standard Webhooks unless set.
    pub fn scheme(self, scheme: SignatureScheme) -> Self {
        self.edit(|c| c.scheme = scheme)
    }

    /// Accepts requests signed with `secret` too: during a secret rotation, keep the old one
    /// until herald has stopped using it.
    pub fn also_accept(self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if secret.trim().is_empty() {
            return self;
        }
        self.edit(|c| c.secrets.push(secret))
    }

    /// How far `webhook-timestamp` may be from this machine's clock, either way, before the
    /// request is refused as a possible replay. 5 minutes unless set.
    pub fn tolerance(self, tolerance: Duration) -> Self {
        self.edit(|c| c.tolerance = tolerance)
    }

    /// The largest body accepted; a larger one is answered `413`. 1 MiB unless set.
    pub fn max_body_bytes(self, limit: usize) -> Self {
        self.edit(|c| c.max_body_bytes = limit)
    }

    /// Where the ids of handled webhooks are kept. A [`MemoryDedupe`] of 10,000 ids unless
    /// set; give a shared store (a database, Redis) when several processes receive webhooks
    /// or when ids must survive a restart.
    pub fn dedupe(self, store: impl DedupeStore) -> Self {
        let store: Arc<dyn DedupeStore> = Arc::new(store);
        self.edit(|c| c.dedupe = store)
    }

    fn edit(mut self, change: impl FnOnce(&mut ConfigInner)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// The config registered on the app, as itself or inside `web::Data`.
    fn of(req: &HttpRequest) -> Option<Self> {
        req.app_data::<Self>()
            .cloned()
            .or_else(|| req.app_data::<web::Data<Self>>().map(|data| data.get_ref().clone()))
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner;
        f.debug_struct("WebhookConfig")
            .field("scheme", &c.scheme)
            .field("secrets", &format_args!("{} hidden", c.secrets.len()))
            .field("tolerance", &c.tolerance)
            .field("max_body_bytes", &c.max_body_bytes)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Deduplication
// ---------------------------------------------------------------------------------------------

/// What a [`DedupeStore`] knew about an id when asked to reserve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen (or its reservation had expired): it is now reserved for this request.
    New,
    /// Already handled: the request is answered `204` and the handler is not called.
    Handled,
    /// Another request holds the reservation right now: answered `503` so herald retries.
    InProgress,
}

/// Remembers which webhook ids have been handled, so that redeliveries are not handled twice.
///
/// The extractor calls [`begin`](Self::begin) once a request's signature has verified and,
/// when it answered [`Seen::New`], exactly one [`finish`](Self::finish) later: with `true`
/// when the handler called [`VerifiedWebhook::handled`], with `false` when the webhook was
/// dropped unhandled.
///
/// `begin` must be atomic: of two concurrent calls for one id only one may answer `New`
/// (with Redis, for example, `SET key in-progress NX EX 60`, then `GET` when that fails).
/// A reservation should expire on its own so that a process that died mid-handler does not
/// block the id for ever. Handled ids should be kept as long as herald may redeliver them
/// (its retry schedule spans days). The futures are not required to be `Send`; they run on
/// the actix worker that received the request. One store is shared by all workers, hence
/// `Send + Sync`.
pub trait DedupeStore: Send + Sync + 'static {
    /// Reserves `id` for this request, or says why not. An `Err` (the store is unreachable)
    /// is answered `503`, so herald retries later.
    fn begin(&self, id: &str) -> LocalBoxFuture<'static, Result<Seen, String>>;

    /// Settles a reservation made by [`begin`](Self::begin): `handled = true` remembers the id
    /// as handled, `false` releases it so that the next delivery is processed again.
    fn finish(&self, id: &str, handled: bool) -> LocalBoxFuture<'static, ()>;
}

impl<S: DedupeStore + ?Sized> DedupeStore for Arc<S> {
    fn begin(&self, id: &str) -> LocalBoxFuture<'static, Result<Seen, String>> {
        (**self).begin(id)
    }

    fn finish(&self, id: &str, handled: bool) -> LocalBoxFuture<'static, ()> {
        (**self).finish(id, handled)
    }
}

/// A [`DedupeStore`] in this process's memory, shared by its workers: the last `capacity`
/// handled ids (the oldest are forgotten first), and the reservations in progress, each of
/// which expires after 60 seconds.
///
/// Its ids are lost on restart and not shared with other processes; a redelivery that
/// arrives after that (or after its id was evicted) is handled again.
pub struct MemoryDedupe {
    capacity: usize,
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    entries: HashMap<String, Entry>,
    /// The ids whose entry is `Handled`, oldest first; each exactly once.
    handled_order: VecDeque<String>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    InProgress { since: Instant },
    Handled,
}

impl MemoryDedupe {
    /// A store remembering up to `capacity` handled ids.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, state: Mutex::new(MemoryState::default()) }
    }

    fn state(&self) -> MutexGuard<'_, MemoryState> {
        // Every change below leaves the maps consistent, so a panic elsewhere cannot
        // have left them half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn begin_at(&self, id: &str, now: Instant) -> Seen {
        let mut state = self.state();
        match state.entries.get(id) {
            Some(Entry::Handled) => return Seen::Handled,
            Some(Entry::InProgress { since }) if now.duration_since(*since) < RESERVATION_TTL => {
                return Seen::InProgress;
            }
            _ => {}
        }
        state.entries.insert(id.to_owned(), Entry::InProgress { since: now });
        // Reservations are normally settled within a request; stale ones left by a lost
        // settlement are swept once there are more of them than handled ids are kept.
        let reservations = state.entries.len().saturating_sub(state.handled_order.len());
        if reservations > self.capacity {
            state.entries.retain(|_, entry| match entry {
                Entry::InProgress { since } => now.duration_since(*since) < RESERVATION_TTL,
                Entry::Handled => true,
            });
        }
        Seen::New
    }

    fn record(&self, id: &str, handled: bool) {
        let mut guard = self.state();
        let state = &mut *guard;
        if handled {
            let before = state.entries.insert(id.to_owned(), Entry::Handled);
            if !matches!(before, Some(Entry::Handled)) {
                state.handled_order.push_back(id.to_owned());
            }
            while state.handled_order.len() > self.capacity {
                let Some(oldest) = state.handled_order.pop_front() else { break };
                state.entries.remove(&oldest);
            }
        } else if matches!(state.entries.get(id), Some(Entry::InProgress { .. })) {
            // A handled id stays handled: only a reservation is released.
            state.entries.remove(id);
        }
    }
}

impl Default for MemoryDedupe {
    /// Remembers 10,000 handled ids.
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl fmt::Debug for MemoryDedupe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryDedupe")
            .field("capacity", &self.capacity)
            .field("handled", &state.handled_order.len())
            .field("in_progress", &state.entries.len().saturating_sub(state.handled_order.len()))
            .finish()
    }
}

impl DedupeStore for MemoryDedupe {
    fn begin(&self, id: &str) -> LocalBoxFuture<'static, Result<Seen, String>> {
        Box::pin(ready(Ok(self.begin_at(id, Instant::now()))))
    }

    fn finish(&self, id: &str, handled: bool) -> LocalBoxFuture<'static, ()> {
        // Done at once, before the future is polled: a redelivery arriving right after the
        // answer already sees the outcome.
        self.record(id, handled);
        Box::pin(ready(()))
    }
}

// ---------------------------------------------------------------------------------------------
// The envelope
// ---------------------------------------------------------------------------------------------

/// The body herald sends: one event. `D` is the type of its `data` (any JSON unless given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent<D = serde_json::Value> {
    /// The event id (`evt_…`), the same as the `webhook-id` header.
    pub id: String,
    /// The event type, such as `payment.completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The version of the event type's schema.
    #[serde(default = "first_version")]
    pub version: u32,
    /// When the event was published (RFC 3339).
    pub created_at: String,
    /// What the publisher sent.
    pub data: D,
    /// The publisher's correlation id, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

fn first_version() -> u32 {
    1
}

// ---------------------------------------------------------------------------------------------
// The extractor
// ---------------------------------------------------------------------------------------------

/// A webhook whose signature has verified and whose id this request has reserved; derefs to
/// its body, parsed as `T` (herald's [`WebhookEvent`] unless given).
///
/// # The `handled` contract
///
/// Call [`handled`](Self::handled) when the work is done, just before answering `2xx`: the id
/// is then recorded, and every later copy of it is answered `204` without calling the handler.
/// If the value is dropped without it (the handler returned an error or early, or panicked)
/// the reservation is released, so that herald's next attempt is processed again. Meanwhile a
/// concurrent copy of the same id is answered `503` and retried by herald.
///
/// ```
/// use actix_web::HttpResponse;
/// use herald_client::receiver::{VerifiedWebhook, WebhookEvent};
///
/// #[derive(serde::Deserialize)]
/// struct Order {
///     order_id: String,
/// }
///
/// async fn save(order: &Order) -> std::io::Result<()> {
///     println!("saving {}", order.order_id);
///     Ok(())
/// }
///
/// async fn on_order(webhook: VerifiedWebhook<WebhookEvent<Order>>) -> actix_web::Result<HttpResponse> {
///     // On error `webhook` is dropped unhandled: the id is released and herald's retry
///     // will be processed again.
///     save(&webhook.data).await?;
///     webhook.handled();
///     Ok(HttpResponse::NoContent().finish())
/// }
/// ```
///
/// With a [`DedupeStore`] whose `finish` is truly asynchronous, the record is written in a
/// task spawned on the worker, so it may land just after the answer; a copy arriving in
/// between is answered `503` and retried.
#[derive(Debug)]
pub struct VerifiedWebhook<T = WebhookEvent> {
    timestamp: i64,
    payload: T,
    raw_body: Bytes,
    reservation: Reservation,
}

impl<T> VerifiedWebhook<T> {
    /// The webhook id from the signature headers (herald's event id).
    pub fn id(&self) -> &str {
        self.reservation.id()
    }

    /// The signed timestamp of this attempt, in unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The parsed body.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The body exactly as received and verified.
    pub fn raw_body(&self) -> Bytes {
        self.raw_body.clone()
    }

    /// Records the id as handled: call it once the work is done (see the type's docs).
    pub fn handled(self) {
        self.reservation.handled();
    }

    /// The parsed body, giving up the reservation: the id is released, **not** recorded as
    /// handled, so a redelivery is processed again. To own the body and still record it, use
    /// [`into_parts`](Self::into_parts).
    pub fn into_inner(self) -> T {
        self.payload
    }

    /// The parsed body and the reservation, to call [`Reservation::handled`] on later.
    pub fn into_parts(self) -> (T, Reservation) {
        (self.payload, self.reservation)
    }
}

impl<T> Deref for VerifiedWebhook<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.payload
    }
}

/// The hold a request has on its webhook id in the [`DedupeStore`]. [`handled`](Self::handled)
/// records the id as handled; dropping it unsettled releases the id.
pub struct Reservation {
    id: String,
    /// `None` once settled.
    store: Option<Arc<dyn DedupeStore>>,
}

impl Reservation {
    /// The reserved webhook id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records the id as handled: later copies are answered `204`.
    pub fn handled(mut self) {
        if let Some(store) = self.store.take() {
            settle(&*store, &self.id, true);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            log::debug!("webhook {} was not marked handled; releasing it for a redelivery", self.id);
            settle(&*store, &self.id, false);
        }
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation").field("id", &self.id).field("settled", &self.store.is_none()).finish()
    }
}

/// Runs `store.finish`: to completion at once when it is ready at once (as [`MemoryDedupe`]'s
/// is), otherwise in a task on this actix worker.
fn settle(store: &dyn DedupeStore, id: &str, handled: bool) {
    let mut finish = store.finish(id, handled);
    if finish.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready() {
        return;
    }
    // `spawn` panics off an actix runtime (for example on a `web::block` thread), and this
    // may run inside `drop`, where a panic would abort.
    if actix_web::rt::System::try_current().is_some() {
        actix_web::rt::spawn(finish);
    } else {
        log::error!("webhook {id}: settled outside an actix runtime, so the dedupe store was not updated");
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for VerifiedWebhook<T> {
    type Error = WebhookRejection;
    type Future = LocalBoxFuture<'static, Result<Self, WebhookRejection>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let Some(config) = WebhookConfig::of(req) else {
            let rejection = WebhookRejection::ConfigMissing;
            rejection.log();
            return Box::pin(ready(Err::<Self, _>(rejection)));
        };
        let headers = SignatureHeaders::read(req, config.inner.scheme);
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let payload = payload.take();
        Box::pin(async move {
            let result: Result<Self, WebhookRejection> =
                receive::<T>(config, headers, declared_len, payload).await;
            if let Err(rejection) = &result {
                rejection.log();
            }
            result
        })
    }
}

/// The signature headers of the configured scheme, copied out of the request.
struct SignatureHeaders {
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
}

impl SignatureHeaders {
    fn read(req: &HttpRequest, scheme: SignatureScheme) -> Self {
        let [id, timestamp, signature] = match scheme {
            SignatureScheme::StandardWebhooks => ["webhook-id", "webhook-timestamp", "webhook-signature"],
            SignatureScheme::HmacSha256 => ["x-webhook-id", "x-webhook-timestamp", "x-webhook-signature"],
        };
        let get = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Self { id: get(id), timestamp: get(timestamp), signature: get(signature) }
    }
}

async fn receive<T: DeserializeOwned>(
    config: WebhookConfig,
    headers: SignatureHeaders,
    declared_len: Option<usize>,
    payload: Payload,
) -> Result<VerifiedWebhook<T>, WebhookRejection> {
    let config = &*config.inner;
    let body = read_body(payload, declared_len, config.max_body_bytes).await?;
    let (id, timestamp) = verify(config, &headers, &body)?;
    match config.dedupe.begin(&id).await {
        Ok(Seen::New) => {}
        Ok(Seen::Handled) => return Err(WebhookRejection::Duplicate(id)),
        Ok(Seen::InProgress) => return Err(WebhookRejection::InProgress(id)),
        Err(e) => return Err(WebhookRejection::DedupeFailed(e)),
    }
    // From here on a failure drops the reservation, which releases the id.
    let reservation = Reservation { id, store: Some(config.dedupe.clone()) };
    let payload = serde_json::from_slice(&body).map_err(WebhookRejection::InvalidJson)?;
    Ok(VerifiedWebhook { timestamp, payload, raw_body: body, reservation })
}

async fn read_body(
    mut payload: Payload,
    declared_len: Option<usize>,
    limit: usize,
) -> Result<Bytes, WebhookRejection> {
    if declared_len.is_some_and(|len| len > limit) {
        return Err(WebhookRejection::PayloadTooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared_len.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| WebhookRejection::UnreadableBody(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookRejection::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Checks the signature; answers the webhook id and the signed timestamp.
fn verify(
    config: &ConfigInner,
    headers: &SignatureHeaders,
    body: &[u8],
) -> Result<(String, i64), WebhookRejection> {
    if config.secrets.is_empty() {
        log::error!("WebhookConfig has no secret: every webhook is refused");
    }
    let secrets: Vec<&str> = config.secrets.iter().map(String::as_str).collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let tolerance = i64::try_from(config.tolerance.as_secs()).unwrap_or(i64::MAX);
    let (id, timestamp, signature) =
        (headers.id.as_deref(), headers.timestamp.as_deref(), headers.signature.as_deref());
    let checked = match config.scheme {
        SignatureScheme::StandardWebhooks => {
            verify_standard_webhooks(&secrets, id, timestamp, signature, body, now, tolerance)
        }
        SignatureScheme::HmacSha256 => {
            verify_hmac_sha256(&secrets, id, timestamp, signature, body, now, tolerance)
        }
    };
    checked.map_err(WebhookRejection::Unauthorized)?;
    // The verification has checked that both are present and that the timestamp is a number.
    let id = id.unwrap_or_default().trim().to_owned();
    let timestamp = timestamp.unwrap_or_default().trim().parse().unwrap_or_default();
    Ok((id, timestamp))
}

// ---------------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------------

/// Why [`VerifiedWebhook`] did not call the handler; its response is what herald gets.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The signature is missing or wrong, the timestamp is outside the tolerance, or a header
    /// is malformed: `401` `{"code":"UNAUTHORIZED"}`.
    Unauthorized(VerifyError),
    /// This webhook id was handled already: `204` with no body, so herald counts it delivered.
    Duplicate(String),
    /// Another request is handling this webhook id now: `503` with `Retry-After: 1`.
    InProgress(String),
    /// The body is larger than the limit (in bytes): `413`.
    PayloadTooLarge(usize),
    /// The body could not be read (the connection broke): `400`.
    UnreadableBody(String),
    /// The signature verified but the body is not the expected JSON: `400`
    /// `{"code":"VALIDATION_ERROR"}`.
    InvalidJson(serde_json::Error),
    /// The [`DedupeStore`] failed: `503`, so herald retries.
    DedupeFailed(String),
    /// No [`WebhookConfig`] is registered on the app: `500`.
    ConfigMissing,
}

impl WebhookRejection {
    fn log(&self) {
        match self {
            Self::Duplicate(_) => log::debug!("{self}; answered 204"),
            Self::ConfigMissing => log::error!("{self}"),
            _ => log::warn!("webhook refused with {}: {self}", self.status_code().as_u16()),
        }
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthorized(e) => write!(f, "webhook not verified: {e}"),
            Self::Duplicate(id) => write!(f, "webhook {id} was handled already"),
            Self::InProgress(id) => write!(f, "webhook {id} is being handled by another request; retry"),
            Self::PayloadTooLarge(limit) => write!(f, "webhook body is larger than {limit} bytes"),
            Self::UnreadableBody(e) => write!(f, "webhook body could not be read: {e}"),
            Self::InvalidJson(e) => write!(f, "webhook body is not the expected JSON: {e}"),
            Self::DedupeFailed(e) => write!(f, "webhook dedupe store failed: {e}"),
            Self::ConfigMissing => f.write_str(
                "no WebhookConfig is registered on the app: add `.app_data(WebhookConfig::new(secret))`",
            ),
        }
    }
}

impl std::error::Error for WebhookRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unauthorized(e) => Some(e),
            Self::InvalidJson(e) => Some(e),
            _ => None,
        }
    }
}

impl ResponseError for WebhookRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Duplicate(_) => StatusCode::NO_CONTENT,
            Self::InProgress(_) | Self::DedupeFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnreadableBody(_) | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::ConfigMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let (code, message) = match self {
            Self::Duplicate(_) => return response.finish(),
            Self::Unauthorized(_) => ("UNAUTHORIZED", self.to_string()),
            Self::PayloadTooLarge(_) => ("PAYLOAD_TOO_LARGE", self.to_string()),
            Self::UnreadableBody(_) | Self::InvalidJson(_) => ("VALIDATION_ERROR", self.to_string()),
            Self::InProgress(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
                ("UNAVAILABLE", self.to_string())
            }
            // The details are in the log; the sender only needs to know whether to retry.
            Self::DedupeFailed(_) => ("UNAVAILABLE", "webhook dedupe store is unavailable; retry".to_owned()),
            Self::ConfigMissing => ("INTERNAL_ERROR", "internal error".to_owned()),
        };
        response.json(serde_json::json!({ "code": code, "message": message }))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    fn begin(store: &MemoryDedupe, id: &str) -> Seen {
        store.begin(id).now_or_never().expect("ready at once").expect("no store error")
    }

    fn finish(store: &MemoryDedupe, id: &str, handled: bool) {
        store.finish(id, handled).now_or_never().expect("ready at once");
    }

    #[test]
    fn new_then_in_progress_then_handled() {
        let store = MemoryDedupe::new(10);
        assert_eq!(begin(&store, "evt_1"), Seen::New);
        assert_eq!(begin(&store, "evt_1"), Seen::InProgress);
        assert_eq!(begin(&store, "evt_2"), Seen::New);
        finish(&store, "evt_1", true);
        assert_eq!(begin(&store, "evt_1"), Seen::Handled);
        // A late release does not forget an id that was handled.
        finish(&store, "evt_1", false);
        assert_eq!(begin(&store, "evt_1"), Seen::Handled);
        assert_eq!(begin(&store, "evt_2"), Seen::InProgress);
    }

    #[test]
    fn finish_unhandled_releases_the_reservation() {
        let store = MemoryDedupe::new(10);
        assert_eq!(begin(&store, "evt_1"), Seen::New);
        finish(&store, "evt_1", false);
        assert_eq!(begin(&store, "evt_1"), Seen::New);
        assert_eq!(begin(&store, "evt_1"), Seen::InProgress);
        assert_eq!(store.state().entries.len(), 1);
    }

    #[test]
    fn the_oldest_handled_ids_are_evicted_at_capacity() {
        let store = MemoryDedupe::new(2);
        for id in ["a", "b", "c"] {
            assert_eq!(begin(&store, id), Seen::New);
            finish(&store, id, true);
        }
        // Handling an id twice does not make it count twice.
        finish(&store, "c", true);
        {
            let state = store.state();
            assert_eq!(state.handled_order, ["b", "c"]);
            assert_eq!(state.entries.len(), 2);
        }
        assert_eq!(begin(&store, "b"), Seen::Handled);
        assert_eq!(begin(&store, "c"), Seen::Handled);
        assert_eq!(begin(&store, "a"), Seen::New);
    }

    #[test]
    fn a_stale_reservation_expires() {
        let store = MemoryDedupe::new(10);
        let t0 = Instant::now();
        assert_eq!(store.begin_at("evt_1", t0), Seen::New);
        assert_eq!(store.begin_at("evt_1", t0 + Duration::from_secs(59)), Seen::InProgress);
        assert_eq!(store.begin_at("evt_1", t0 + Duration::from_secs(61)), Seen::New);
        // The takeover is a fresh reservation with its own 60 seconds.
        assert_eq!(store.begin_at("evt_1", t0 + Duration::from_secs(100)), Seen::InProgress);
    }

    #[test]
    fn stale_reservations_are_swept_beyond_capacity() {
        let store = MemoryDedupe::new(2);
        let t0 = Instant::now();
        for id in ["a", "b"] {
            assert_eq!(store.begin_at(id, t0), Seen::New);
        }
        assert_eq!(store.begin_at("c", t0 + Duration::from_secs(61)), Seen::New);
        assert_eq!(store.state().entries.len(), 1);
    }

    #[test]
    fn a_reservation_records_when_handled_and_releases_when_dropped() {
        let store = Arc::new(MemoryDedupe::new(10));
        let reserve = |id: &str| {
            assert_eq!(begin(&store, id), Seen::New);
            let shared: Arc<dyn DedupeStore> = store.clone();
            Reservation { id: id.to_owned(), store: Some(shared) }
        };
        drop(reserve("evt_1"));
        assert_eq!(begin(&store, "evt_1"), Seen::New);
        finish(&store, "evt_1", false);

        let reservation = reserve("evt_1");
        assert_eq!(reservation.id(), "evt_1");
        reservation.handled();
        assert_eq!(begin(&store, "evt_1"), Seen::Handled);
    }

    #[test]
    fn rejections_answer_as_herald_expects() {
        let bad_json = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let cases = [
            (WebhookRejection::Unauthorized(VerifyError::BadSignature), 401, Some("UNAUTHORIZED")),
            (WebhookRejection::Duplicate("evt_1".into()), 204, None),
            (WebhookRejection::InProgress("evt_1".into()), 503, Some("UNAVAILABLE")),
            (WebhookRejection::PayloadTooLarge(10), 413, Some("PAYLOAD_TOO_LARGE")),
            (WebhookRejection::InvalidJson(bad_json), 400, Some("VALIDATION_ERROR")),
            (WebhookRejection::DedupeFailed("down".into()), 503, Some("UNAVAILABLE")),
            (WebhookRejection::ConfigMissing, 500, Some("INTERNAL_ERROR")),
        ];
        for (rejection, status, code) in cases {
            let response = rejection.error_response();
            assert_eq!(response.status().as_u16(), status, "{rejection}");
            let retry_after = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok());
            let expected_retry = matches!(rejection, WebhookRejection::InProgress(_)).then_some("1");
            assert_eq!(retry_after, expected_retry, "{rejection}");
            let body = actix_web::body::to_bytes(response.into_body()).now_or_never().unwrap().unwrap();
            match code {
                None => assert!(body.is_empty()),
                Some(code) => {
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(json["code"], code);
                    assert!(json["message"].is_string());
                }
            }
        }
    }

    #[test]
    fn herald_envelope_parses() {
        let body =
            r#"{"id":"evt_1","type":"order.created","created_at":"2025-01-01T00:00:00Z","data":{"n":1}}"#;
        let event: WebhookEvent = serde_json::from_str(body).unwrap();
        assert_eq!((event.id.as_str(), event.event_type.as_str()), ("evt_1", "order.created"));
        assert_eq!((event.version, event.correlation_id), (1, None));
        assert_eq!(event.data["n"], 1);
    }
}
