//! The delivery engine's actors. `Registry` supervises one `EndpointActor` per endpoint;
//! `Scheduler` claims due work from the store (retries, orphans of a crashed node);
//! `ResultWriter` writes attempt results in batches. `Engine` is the handle the HTTP side
//! holds: publish (store first, then hand the deliveries to the actors) and notify changes.

pub mod endpoint;
pub mod inbound;
pub mod janitor;
pub mod messages;
pub mod ownership;
pub mod publisher;
pub mod registry;
pub mod scheduler;
pub mod stream_actor;
pub mod stream_frames;
pub mod stream_hub;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use actix_web::web::Bytes;

use crate::config::Settings;
use crate::delivery::circuit::CircuitConfig;
use crate::delivery::circuit::CircuitState;
use crate::delivery::envelope::envelope;
use crate::delivery::retry::RetryPolicy;
use crate::delivery::signing::{SignatureScheme, secrets_in_force};
use crate::delivery::ssrf::UrlPolicy;
use crate::domain::EndpointStatus;
use crate::ids::now_ms;
use crate::metrics::Metrics;
use crate::secrets::Purpose;
use crate::store::deliveries::Delivery;
use crate::store::endpoints::Endpoint;
use crate::store::events::{Event, Lease, NewEvent, Published};
use crate::store::notify::Note;
use crate::store::{Db, StoreError};
use messages::{AttemptSummary, Dispatch, EndpointGone, EndpointUpdated};

/// The longest an open circuit stays open after repeated failed probes.
const MAX_CIRCUIT_OPEN_MS: i64 = 10 * 60 * 1000;

/// What every engine actor shares.
pub struct DeliveryContext {
    pub db: Db,
    pub node_id: String,
    pub started_at: i64,
    pub settings: Arc<Settings>,
    pub policy: Arc<UrlPolicy>,
    pub retry: RetryPolicy,
    pub circuit: CircuitConfig,
    pub metrics: Arc<Metrics>,
    pub waiters: Waiters,
    pub ownership: ownership::Ownership,
    pub full_endpoints: FullEndpoints,
    /// Opens the secrets and header values endpoints keep encrypted.
    pub cipher: Arc<crate::secrets::Cipher>,
    pub opened: OpenedSecrets,
    /// The Scheduler, once started: woken when a FIFO endpoint's queue may move.
    pub scheduler: std::sync::OnceLock<Recipient<messages::WakeAt>>,
}

impl DeliveryContext {
    /// Asks the Scheduler to claim what is due now (a FIFO endpoint's next delivery).
    pub fn wake_scheduler(&self) {
        if let Some(s) = self.scheduler.get() {
            s.do_send(messages::WakeAt(now_ms()));
        }
    }
}

/// An endpoint's secrets and header values, decrypted (`None` when they do not open with
/// this node's keys: nothing may be sent for it then, rather than signed with no key).
pub struct Opened(Option<OpenedValues>);

/// The secret, the previous secret, and the extra headers.
type OpenedValues = (String, Option<String>, Vec<(String, String)>);

/// Decrypted once per endpoint version, not on every dispatch: every change of a secret or
/// of the headers bumps the version.
#[derive(Default)]
pub struct OpenedSecrets(Mutex<HashMap<String, (i64, Arc<Opened>)>>);

/// Endpoints whose decrypted secrets are kept at most (then the cache starts over).
const OPENED_MAX: usize = 10_000;

impl OpenedSecrets {
    fn get(&self, ep: &Endpoint, cipher: &crate::secrets::Cipher) -> Arc<Opened> {
        if let Some((version, opened)) =
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&ep.id)
            && *version == ep.version
        {
            return opened.clone();
        }
        let opened = (|| -> Result<_, String> {
            let headers: HashMap<String, String> =
                serde_json::from_str(&cipher.reveal(Purpose::EndpointHeaders, &ep.headers)?)
                    .unwrap_or_default();
            let secret = cipher.reveal(Purpose::EndpointSecret, &ep.secret)?;
            let previous = ep
                .previous_secret
                .as_deref()
                .map(|p| cipher.reveal(Purpose::EndpointSecret, p))
                .transpose()?;
            Ok((secret, previous, headers.into_iter().collect()))
        })();
        let opened = Arc::new(Opened(match opened {
            Ok(values) => Some(values),
            Err(e) => {
                // E.g. a key rotation half done: this node lacks the key another one used.
                log::error!("endpoint {}: {e}; its deliveries wait until this node has the key", ep.id);
                None
            }
        }));
        let mut cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= OPENED_MAX {
            cache.clear();
        }
        cache.insert(ep.id.clone(), (ep.version, opened.clone()));
        opened
    }
}

/// Endpoints whose actor on this node holds `delivery.queue_bytes` of payloads already:
/// claims leave their work in the store until the actor has room again.
#[derive(Default)]
pub struct FullEndpoints(Mutex<std::collections::HashSet<String>>);

impl FullEndpoints {
    pub fn set(&self, endpoint_id: &str, full: bool) {
        let mut set = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if full {
            set.insert(endpoint_id.to_string());
        } else {
            set.remove(endpoint_id);
        }
    }

    pub fn list(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }

    pub fn contains(&self, endpoint_id: &str) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(endpoint_id)
    }
}

impl DeliveryContext {
    pub fn lease(&self) -> Lease {
        let now = now_ms();
        Lease {
            owner: self.node_id.clone(),
            expires_at: now + self.lease_ms(),
            only: self.ownership.snapshot(now),
        }
    }

    pub fn lease_ms(&self) -> i64 {
        self.settings.delivery.lease.as_millis() as i64
    }

    /// Hands an endpoint's ownership back (its actor has finished here), so its next owner
    /// need not wait for the row to expire. Nothing to do on a single node.
    pub fn give_up(&self, endpoint_id: &str) {
        if !self.ownership.cluster() {
            return;
        }
        let (db, owner, id) = (self.db.clone(), self.node_id.clone(), endpoint_id.to_string());
        actix::spawn(async move {
            if let Err(e) = db.run(move |conn| crate::store::owners::give_up(conn, &owner, &id)).await {
                log::warn!("could not hand an endpoint back ({e}); it lapses with its lease");
            }
        });
    }
}

/// Publishers waiting (`?wait=true`) for the first attempt of their deliveries.
#[derive(Default, Clone)]
pub struct Waiters(Arc<Mutex<HashMap<String, tokio::sync::oneshot::Sender<AttemptSummary>>>>);

impl Waiters {
    pub fn register(&self, delivery_id: &str) -> tokio::sync::oneshot::Receiver<AttemptSummary> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(delivery_id.to_string(), tx);
        rx
    }

    pub fn notify(&self, delivery_id: &str, summary: AttemptSummary) {
        let waiter = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(delivery_id);
        if let Some(tx) = waiter {
            let _ = tx.send(summary);
        }
    }

    pub fn forget(&self, delivery_id: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(delivery_id);
    }
}

/// One delivery as the actors carry it.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery_id: String,
    pub event_id: String,
    pub body: Bytes,
    pub attempt_count: i32,
    pub retry_base: i32,
}

impl Job {
    pub fn new(delivery: &Delivery, event_id: &str, body: Bytes) -> Self {
        Self {
            delivery_id: delivery.id.clone(),
            event_id: event_id.to_string(),
            body,
            attempt_count: delivery.attempt_count,
            retry_base: delivery.retry_base,
        }
    }
}

/// What an endpoint actor needs to know about its endpoint, taken from its row.
#[derive(Debug, Clone)]
pub struct EndpointSnapshot {
    pub id: String,
    pub url: String,
    pub active: bool,
    /// The current secret first, then the previous one while its grace period lasts.
    pub secrets: Vec<String>,
    pub scheme: SignatureScheme,
    pub headers: Vec<(String, String)>,
    pub max_in_flight: usize,
    /// One delivery at a time, in event order (the store hands over only the head).
    pub fifo: bool,
    pub rate_limit_per_second: Option<u32>,
    /// The row's version: an actor takes settings only newer than what it has.
    pub version: i64,
    /// The circuit as last written, for an actor starting fresh.
    pub circuit_state: CircuitState,
    pub consecutive_failures: u32,
    pub circuit_open_until: Option<i64>,
}

impl EndpointSnapshot {
    /// The endpoint as its actor needs it, its secrets and header values decrypted.
    pub fn from_row(ep: &Endpoint, ctx: &DeliveryContext, now: i64) -> Self {
        let default_max_in_flight = ctx.settings.delivery.max_in_flight;
        let opened = ctx.opened.get(ep, &ctx.cipher);
        let (secrets, headers) = match &opened.0 {
            Some((secret, previous, headers)) => (
                secrets_in_force(secret, previous.as_deref(), ep.previous_secret_expires_at, now)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                headers.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Self {
            id: ep.id.clone(),
            url: ep.url.clone(),
            // Secrets that do not open make the endpoint inactive here: its work is given
            // back to the store, never signed with an empty key.
            active: ep.status == EndpointStatus::Active && ep.deleted_at.is_none() && opened.0.is_some(),
            secrets,
            scheme: ep.scheme(),
            headers,
            max_in_flight: if ep.fifo() {
                1
            } else {
                ep.max_in_flight.map_or(default_max_in_flight, |n| n.max(1) as u32) as usize
            },
            fifo: ep.fifo(),
            rate_limit_per_second: ep.rate_limit_per_second.filter(|n| *n > 0).map(|n| n as u32),
            version: ep.version,
            circuit_state: ep.circuit_state,
            consecutive_failures: ep.consecutive_failures.max(0) as u32,
            circuit_open_until: ep.circuit_open_until,
        }
    }
}

/// Groups loaded deliveries by endpoint into dispatch messages, one envelope per event.
pub fn dispatches(rows: Vec<(Delivery, Event, Endpoint)>, ctx: &DeliveryContext) -> Vec<Dispatch> {
    let now = now_ms();
    let mut bodies: HashMap<i64, Bytes> = HashMap::new();
    let mut by_endpoint: HashMap<String, Dispatch> = HashMap::new();
    for (delivery, event, endpoint) in rows {
        let body = bodies.entry(event.seq).or_insert_with(|| envelope(event.envelope_fields())).clone();
        let job = Job::new(&delivery, &event.id, body);
        by_endpoint
            .entry(endpoint.id.clone())
            .or_insert_with(|| Dispatch {
                endpoint: Arc::new(EndpointSnapshot::from_row(&endpoint, ctx, now)),
                jobs: Vec::new(),
            })
            .jobs
            .push(job);
    }
    by_endpoint.into_values().collect()
}

/// A delivery whose first attempt a publisher waits for. Dropped (answered, timed out, or
/// the client gone), it leaves nothing behind in `Waiters`.
pub struct FirstAttempt {
    pub delivery_id: String,
    pub endpoint_id: String,
    /// Held by this node: its actor reports the outcome. Otherwise another node attempts
    /// it, and the outcome is read from the store.
    pub held: bool,
    pub rx: tokio::sync::oneshot::Receiver<AttemptSummary>,
    waiters: Waiters,
}

impl Drop for FirstAttempt {
    fn drop(&mut self) {
        self.waiters.forget(&self.delivery_id);
    }
}

/// After a commit: the new event's deliveries go to their endpoint actors and streams are
/// woken. `waiting` publishers are registered first, so no outcome can slip past them.
pub fn announce(
    ctx: &DeliveryContext,
    registry: &Addr<registry::Registry>,
    hub: &Addr<stream_hub::StreamHub>,
    published: &Published,
) {
    if let Published::Created { event, deliveries } = published {
        ctx.metrics.events_published.inc();
        // Only what this node holds; the owners of the rest were woken by the commit.
        let rows = deliveries
            .iter()
            .filter(|(d, _)| d.lease_owner.is_some())
            .map(|(d, ep)| (d.clone(), event.clone(), ep.clone()))
            .collect();
        for dispatch in dispatches(rows, ctx) {
            registry.do_send(dispatch);
        }
        if deliveries.iter().any(|(d, ep)| d.lease_owner.is_none() && ep.fifo()) {
            ctx.wake_scheduler();
        }
        hub.do_send(stream_hub::Committed(event.seq));
    }
}

/// Registers a waiter for the first attempt of each new delivery (`?wait=true`).
pub fn register_waiters(ctx: &DeliveryContext, published: &Published) -> Vec<FirstAttempt> {
    let Published::Created { deliveries, .. } = published else { return Vec::new() };
    deliveries
        .iter()
        .map(|(d, _)| FirstAttempt {
            delivery_id: d.id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            held: d.lease_owner.is_some(),
            rx: ctx.waiters.register(&d.id),
            waiters: ctx.waiters.clone(),
        })
        .collect()
}

#[derive(Clone)]
pub struct Engine {
    pub ctx: Arc<DeliveryContext>,
    pub registry: Addr<registry::Registry>,
    pub hub: stream_actor::HubLink,
    pub scheduler: Addr<scheduler::Scheduler>,
    pub writer: Addr<writer::ResultWriter>,
    pub publisher: Addr<publisher::Publisher>,
}

impl DeliveryContext {
    fn new(
        db: Db,
        settings: &Arc<Settings>,
        metrics: Arc<Metrics>,
        cipher: Arc<crate::secrets::Cipher>,
    ) -> Self {
        let d = &settings.delivery;
        Self {
            db,
            node_id: crate::ids::new_id("node"),
            started_at: now_ms(),
            policy: Arc::new(UrlPolicy {
                allow_insecure: settings.security.allow_insecure_urls,
                allowed_networks: settings.security.allowed_networks.clone(),
            }),
            retry: RetryPolicy { schedule: d.retry_schedule.clone() },
            circuit: CircuitConfig {
                failure_threshold: d.circuit_failure_threshold,
                open_for_ms: d.circuit_open_for.as_millis() as i64,
                max_open_for_ms: MAX_CIRCUIT_OPEN_MS.max(d.circuit_open_for.as_millis() as i64),
            },
            settings: settings.clone(),
            metrics,
            waiters: Waiters::default(),
            full_endpoints: FullEndpoints::default(),
            cipher,
            opened: OpenedSecrets::default(),
            scheduler: std::sync::OnceLock::new(),
            ownership: ownership::Ownership::new(
                crate::store::DatabaseUrl::parse(&settings.database.url)
                    .is_ok_and(|u| u.backend == crate::store::Backend::Postgres),
            ),
        }
    }
}

impl Engine {
    /// Starts the actors on the current arbiter.
    /// `committed_seq`: the highest event seq in the store, where live streams begin.
    pub fn start(
        db: Db,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        cipher: Arc<crate::secrets::Cipher>,
        committed_seq: i64,
    ) -> Self {
        let ctx = Arc::new(DeliveryContext::new(db, &settings, metrics, cipher));
        let writer = writer::ResultWriter::new(ctx.clone()).start();
        let writer_addr = writer.clone();
        let hub = stream_hub::StreamHub::launch(ctx.clone(), committed_seq);
        let (registry, scheduler) = {
            let (ctx, hub) = (ctx.clone(), (*hub).clone());
            let mut scheduler_addr = None;
            let registry = registry::Registry::create(|reg_ctx| {
                let scheduler = scheduler::Scheduler::new(ctx.clone(), reg_ctx.address(), hub).start();
                scheduler_addr = Some(scheduler.clone());
                let refill = scheduler.clone().recipient();
                registry::Registry::new(ctx, writer, scheduler.recipient(), refill)
            });
            (registry, scheduler_addr.expect("scheduler started"))
        };
        let _ = ctx.scheduler.set(scheduler.clone().recipient());
        if let Ok(url) = crate::store::DatabaseUrl::parse(&settings.database.url)
            && url.backend == crate::store::Backend::Postgres
        {
            let (registry, scheduler, hub) = (registry.clone(), scheduler.clone(), (*hub).clone());
            crate::store::notify::spawn_listener(url.target, move |note| match note {
                Note::Committed(seq) => hub.do_send(stream_hub::Committed(seq)),
                Note::Work => scheduler.do_send(messages::WakeAt(0)),
                Note::EndpointChanged(id) => {
                    scheduler.do_send(scheduler::RenewOwnership);
                    registry.do_send(messages::EndpointChanged(id));
                }
            });
        }
        let publisher = publisher::Publisher::new(ctx.clone(), registry.clone(), (*hub).clone()).start();
        janitor::Janitor::new(ctx.clone()).start();
        Self { ctx, registry, hub, scheduler, writer: writer_addr, publisher }
    }

    /// Stores the event and its deliveries (one transaction), then hands them to the actors.
    pub async fn publish(
        &self,
        new: NewEvent,
        only_endpoint: Option<Endpoint>,
    ) -> Result<Published, StoreError> {
        Ok(self.publish_waiting(new, only_endpoint, false).await?.0)
    }

    /// As `publish`; with `wait`, also returns a receiver per delivery for its first
    /// attempt's outcome, registered before any attempt can start.
    pub async fn publish_waiting(
        &self,
        new: NewEvent,
        only_endpoint: Option<Endpoint>,
        wait: bool,
    ) -> Result<(Published, Vec<FirstAttempt>), StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = publisher::PublishRequest { event: new, only_endpoint, wait, reply };
        self.publisher.do_send(publisher::Publish(request));
        answer.await.map_err(|_| StoreError::other("the publisher stopped"))?
    }

    /// After a commit: hands a new event's deliveries to the actors and wakes the streams.
    pub fn announce(&self, published: &Published) {
        announce(&self.ctx, &self.registry, &self.hub, published);
    }

    /// Re-queued deliveries: claim them for this node now rather than on the next tick.
    pub fn kick(&self) {
        self.scheduler.do_send(messages::WakeAt(now_ms()));
    }

    pub fn endpoint_updated(&self, ep: &Endpoint) {
        let snapshot = EndpointSnapshot::from_row(ep, &self.ctx, now_ms());
        if snapshot.active {
            self.registry.do_send(EndpointUpdated(Arc::new(snapshot)));
        } else {
            self.registry.do_send(EndpointGone(ep.id.clone()));
        }
    }

    /// On shutdown: write what is buffered (bounded in time), then give this node's claims
    /// back so other nodes, or the next start, take them over at once instead of after the
    /// lease. Attempts still in flight are answered by nobody and will be sent again.
    pub async fn release_all(&self, within: std::time::Duration) {
        // No new claims or renewals from here on (a renewal would take back what this node
        // is about to give up), and no new attempts: actors drop their queues.
        let _ = self.scheduler.send(scheduler::StopWork).await;
        let _ = self.registry.send(registry::RetireAll).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer.do_send(writer::Drain(tx));
        if tokio::time::timeout(within, rx).await.is_err() {
            log::warn!(
                "shutdown: results still unwritten after {within:?}; their deliveries will be retried"
            );
        }
        // Each step on its own: one failing does not keep the others from running.
        let owner = self.ctx.node_id.clone();
        let released = self
            .ctx
            .db
            .run(move |conn| {
                let steps = [
                    ("leave the nodes table", crate::store::nodes::leave(conn, &owner)),
                    ("give up its endpoints", crate::store::owners::give_up_all(conn, &owner)),
                ];
                for (what, result) in steps {
                    if let Err(e) = result {
                        log::warn!("shutdown: could not {what} ({e}); it lapses with its lease");
                    }
                }
                crate::store::deliveries::release_node(conn, &owner)
            })
            .await;
        match released {
            Ok(n) => log::info!("shutdown: released {n} claimed deliveries"),
            Err(e) => {
                log::warn!("shutdown: could not release claims ({e}); they lapse with their lease");
            }
        }
    }

    pub fn endpoint_gone(&self, id: &str) {
        self.registry.do_send(EndpointGone(id.to_string()));
    }
}
