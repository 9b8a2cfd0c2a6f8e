//! Events and the outbox: an event and one delivery per subscribed endpoint are written in
//! one transaction, so a committed publish always has its deliveries.

use std::collections::HashMap;

use diesel::prelude::*;

use super::StoreError;
use super::deliveries::{Delivery, NewDelivery};
use super::endpoints::{self, Endpoint};
use super::schema::deliveries::dsl as d;
use super::schema::events::dsl as ev;
use super::{DbConn, write_txn};
use crate::delivery::envelope::{EventFields, envelope_text};
use crate::delivery::type_patterns::type_matches;
use crate::domain::EndpointStatus;

/// Serialises sequence assignment on PostgreSQL so events commit in `seq` order: a stream
/// cursor may then never skip an event whose transaction commits late.
const PUBLISH_LOCK_KEY: i64 = 0x6865_7261_6c65; // "herale"

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = super::schema::events)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    pub correlation_id: Option<String>,
    pub source_id: Option<String>,
    pub created_at: i64,
    /// The version of its type it was published as.
    pub version: i32,
}

impl Event {
    /// What its envelope (the body of a webhook, the data of a stream frame) shows.
    pub fn envelope_fields(&self) -> EventFields<'_> {
        EventFields {
            id: &self.id,
            event_type: &self.event_type,
            created_at: self.created_at,
            version: self.version,
            correlation_id: self.correlation_id.as_deref(),
            payload: &self.payload,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = super::schema::events)]
pub struct NewEvent {
    pub id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    pub correlation_id: Option<String>,
    pub source_id: Option<String>,
    pub created_at: i64,
    pub version: i32,
    /// The type's latest registered version when published: endpoints that pinned no
    /// version get only events of that one (`None`: the type has no versions; all go).
    #[diesel(skip_insertion)]
    pub latest_version: Option<i32>,
}

pub enum Published {
    /// Stored now, with a delivery for each endpoint (held under `lease` by this node).
    Created { event: Event, deliveries: Vec<(Delivery, Endpoint)> },
    /// The organisation already has an event with this id: nothing was written.
    Existing { event: Event, delivery_count: i64 },
}

/// Who holds new deliveries first: the publishing node, which hands them to its actors,
/// for the endpoints it owns. Deliveries to other nodes' endpoints are stored unheld, and
/// their owners are woken to claim them.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub expires_at: i64,
    /// The endpoints this node owns; `None`: every endpoint (a single node).
    pub only: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

impl Lease {
    pub fn covers(&self, endpoint_id: &str) -> bool {
        self.only.as_ref().is_none_or(|owned| owned.contains(endpoint_id))
    }
}

/// Stores an event and its deliveries. `only_endpoint` restricts the fan-out (test events).
/// An id the organisation already used answers with that event (`Published::Existing`).
pub fn publish(
    conn: &mut DbConn,
    new: &NewEvent,
    only_endpoint: Option<&Endpoint>,
    lease: &Lease,
) -> Result<Published, StoreError> {
    write_txn(conn, |c| publish_in_txn(c, new, only_endpoint, lease))
}

/// `publish` inside a transaction the caller holds (inbound stores its receipt beside it).
pub fn publish_in_txn(
    c: &mut DbConn,
    new: &NewEvent,
    only_endpoint: Option<&Endpoint>,
    lease: &Lease,
) -> Result<Published, StoreError> {
    let mut txn = PublishTxn::default();
    let published = txn.publish(c, new, only_endpoint, lease)?;
    txn.finish(c)?;
    Ok(published)
}

/// Many publishes in one transaction (group commit): the ordering lock is taken once, each
/// organisation's endpoints are read once, and other nodes are notified once, at the end.
/// On PostgreSQL a batch's events go in one statement and its deliveries in another, so the
/// round trips per batch do not grow with its size.
#[derive(Default)]
pub struct PublishTxn {
    locked: bool,
    /// Active endpoints per organisation, as read inside this transaction.
    endpoints: HashMap<String, Vec<Subscriber>>,
    last_seq: Option<i64>,
    /// Deliveries were stored for endpoints other nodes own: wake them at commit.
    unheld: bool,
}

/// One publish of a batch: the event, and the one endpoint it goes to when not every
/// subscriber (test events).
pub type PublishItem = (NewEvent, Option<Endpoint>);

/// An endpoint as a batch of publishes matches it: its type filters, version pins and
/// payload filter read once per batch, not once per event.
struct Subscriber {
    endpoint: Endpoint,
    types: Vec<String>,
    pins: HashMap<String, i32>,
    filter: Option<std::sync::Arc<crate::delivery::payload_filter::PayloadFilter>>,
}

impl Subscriber {
    fn new(endpoint: Endpoint) -> Self {
        let filter = endpoint.payload_filter.as_deref().and_then(crate::delivery::payload_filter::compiled);
        if endpoint.payload_filter.is_some() && filter.is_none() {
            // Checked when stored; a delivery too many is better than one lost.
            log::warn!(
                "endpoint {}: its payload filter does not compile; delivering everything",
                endpoint.id
            );
        }
        Self { types: endpoint.filters(), pins: endpoint.pinned_versions(), filter, endpoint }
    }

    /// Whether `new` (stored as `event`) goes to this endpoint: its type, its version (the
    /// pinned one, or else the type's latest), and its payload filter. The envelope is
    /// parsed once per event, the first time a filter asks.
    fn takes(&self, new: &NewEvent, event: &Event, envelope: &mut Option<serde_json::Value>) -> bool {
        if !self.types.iter().any(|f| type_matches(f, &new.event_type)) {
            return false;
        }
        let version_ok = match self.pins.get(&new.event_type) {
            Some(pinned) => *pinned == new.version,
            None => new.latest_version.is_none_or(|latest| latest == new.version),
        };
        let Some(filter) = self.filter.as_ref().filter(|_| version_ok) else { return version_ok };
        let envelope = envelope.get_or_insert_with(|| {
            serde_json::from_str(&envelope_text(event.envelope_fields())).unwrap_or_default()
        });
        filter.matches(envelope)
    }
}

impl PublishTxn {
    pub fn publish(
        &mut self,
        c: &mut DbConn,
        new: &NewEvent,
        only_endpoint: Option<&Endpoint>,
        lease: &Lease,
    ) -> Result<Published, StoreError> {
        let item = [(new.clone(), only_endpoint.cloned())];
        let mut published = self.publish_all(c, &item, lease)?;
        published.pop().ok_or_else(|| StoreError::other("publish answered nothing"))
    }

    /// Publishes `items` in order, answering one `Published` per item. An id used before,
    /// or earlier in the same batch, answers `Existing`.
    pub fn publish_all(
        &mut self,
        c: &mut DbConn,
        items: &[PublishItem],
        lease: &Lease,
    ) -> Result<Vec<Published>, StoreError> {
        // The lock comes before the id check: with it held, check-then-insert cannot race
        // another node's publish of the same id (SQLite's BEGIN IMMEDIATE does the same).
        if !self.locked {
            if let DbConn::Pg(pg) = c {
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({PUBLISH_LOCK_KEY})")).execute(pg)?;
            }
            self.locked = true;
        }
        let inserted = insert_events(c, items)?;
        let mut rows = Vec::new();
        let mut created = Vec::with_capacity(items.len());
        for ((new, only), event) in items.iter().zip(inserted) {
            let Some(event) = event else {
                created.push(None);
                continue;
            };
            self.last_seq = Some(event.seq);
            let targets = self.targets(c, new, only.as_ref(), &event)?;
            for ep in &targets {
                rows.push(self.new_delivery(&event, new.created_at, ep, lease));
            }
            created.push(Some((event, targets)));
        }
        insert_deliveries(c, &rows)?;
        let mut rows = rows.into_iter().map(NewDelivery::into_delivery);
        let mut published = Vec::with_capacity(items.len());
        for ((new, _), made) in items.iter().zip(created) {
            published.push(if let Some((event, targets)) = made {
                let deliveries = rows.by_ref().take(targets.len()).zip(targets).collect();
                Published::Created { event, deliveries }
            } else {
                let existing = find(c, &new.org_id, &new.id)?
                    .ok_or_else(|| StoreError::other("conflicting event vanished"))?;
                let delivery_count = count_deliveries(c, existing.seq)?;
                Published::Existing { event: existing, delivery_count }
            });
        }
        Ok(published)
    }

    /// The endpoints a new event goes to: the one named (test events), or every active
    /// endpoint of its organisation that takes it.
    fn targets(
        &mut self,
        c: &mut DbConn,
        new: &NewEvent,
        only: Option<&Endpoint>,
        event: &Event,
    ) -> Result<Vec<Endpoint>, StoreError> {
        if let Some(ep) = only {
            // Read again inside the transaction: a test event never reaches an endpoint
            // deleted or disabled since the request looked it up.
            return match endpoints::find_any(c, &ep.id)? {
                Some(current) if current.status == EndpointStatus::Active && current.deleted_at.is_none() => {
                    Ok(vec![current])
                }
                _ => Err(StoreError::Conflict("The endpoint was deleted or disabled meanwhile".into())),
            };
        }
        if !self.endpoints.contains_key(&new.org_id) {
            let active = endpoints::active(c, &new.org_id)?;
            self.endpoints.insert(new.org_id.clone(), active.into_iter().map(Subscriber::new).collect());
        }
        let mut envelope = None;
        Ok(self.endpoints[&new.org_id]
            .iter()
            .filter(|s| s.takes(new, event, &mut envelope))
            .map(|s| s.endpoint.clone())
            .collect())
    }

    /// The delivery of `event` to `ep`: held by this node under `lease` when it owns the
    /// endpoint, unless the endpoint is FIFO (the scheduler claims those one at a time, as
    /// each heads its queue).
    fn new_delivery(&mut self, event: &Event, now: i64, ep: &Endpoint, lease: &Lease) -> NewDelivery {
        let held = lease.covers(&ep.id) && !ep.fifo();
        self.unheld |= !held;
        let mut row = NewDelivery::pending(event, &ep.id, now, held.then_some(lease));
        if ep.fifo() {
            // Queued behind the head: due only once it heads the queue.
            row.next_attempt_at = None;
        }
        row
    }

    /// Tells other nodes' streams, at commit, how far the sequence has gone.
    /// Also wakes the owners of deliveries this node does not hold.
    pub fn finish(self, c: &mut DbConn) -> Result<(), StoreError> {
        if self.unheld {
            super::notify::work_waiting(c)?;
        }
        if let (Some(seq), DbConn::Pg(pg)) = (self.last_seq, c) {
            diesel::sql_query(format!("SELECT pg_notify('{}', '{seq}')", super::notify::CHANNEL))
                .execute(pg)?;
        }
        Ok(())
    }
}

/// Inserts the events whose id their organisation has not used yet: per item, the event
/// stored for it, or `None` when the id was taken (before, or by an earlier item).
fn insert_events(c: &mut DbConn, items: &[PublishItem]) -> Result<Vec<Option<Event>>, StoreError> {
    let pg = match c {
        DbConn::Pg(pg) => pg,
        DbConn::Sqlite(_) => return items.iter().map(|(new, _)| insert_new(c, new)).collect(),
    };
    use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
    let column = |f: fn(&NewEvent) -> String| items.iter().map(|(n, _)| f(n)).collect::<Vec<_>>();
    let optional = |f: fn(&NewEvent) -> Option<String>| items.iter().map(|(n, _)| f(n)).collect::<Vec<_>>();
    // unnest keeps the batch's order, so sequence numbers follow it.
    let stored: Vec<Event> = diesel::sql_query(
        "INSERT INTO events (id, org_id, event_type, payload, correlation_id, source_id, created_at, version) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING \
         RETURNING seq, id, org_id, event_type, payload, correlation_id, source_id, created_at, version",
    )
    .bind::<Array<Text>, _>(column(|n| n.id.clone()))
    .bind::<Array<Text>, _>(column(|n| n.org_id.clone()))
    .bind::<Array<Text>, _>(column(|n| n.event_type.clone()))
    .bind::<Array<Text>, _>(column(|n| n.payload.clone()))
    .bind::<Array<Nullable<Text>>, _>(optional(|n| n.correlation_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(optional(|n| n.source_id.clone()))
    .bind::<Array<BigInt>, _>(items.iter().map(|(n, _)| n.created_at).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(items.iter().map(|(n, _)| n.version).collect::<Vec<_>>())
    .load(pg)?;
    let mut by_id: HashMap<(String, String), Event> =
        stored.into_iter().map(|e| ((e.org_id.clone(), e.id.clone()), e)).collect();
    Ok(items.iter().map(|(n, _)| by_id.remove(&(n.org_id.clone(), n.id.clone()))).collect())
}

/// Inserts new deliveries: one statement on PostgreSQL, whatever their number.
fn insert_deliveries(c: &mut DbConn, rows: &[NewDelivery]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let pg = match c {
        DbConn::Pg(pg) => pg,
        DbConn::Sqlite(_) => {
            super::insert_all!(c, d::deliveries, rows)?;
            return Ok(());
        }
    };
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    let text = |f: fn(&NewDelivery) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    let number = |f: fn(&NewDelivery) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(
        "INSERT INTO deliveries (id, org_id, event_seq, endpoint_id, status, next_attempt_at, \
           lease_owner, lease_expires_at, created_at, updated_at) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind::<Array<Text>, _>(text(|r| &r.id))
    .bind::<Array<Text>, _>(text(|r| &r.org_id))
    .bind::<Array<BigInt>, _>(number(|r| r.event_seq))
    .bind::<Array<Text>, _>(text(|r| &r.endpoint_id))
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.lease_owner.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.lease_expires_at).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(number(|r| r.created_at))
    .bind::<Array<BigInt>, _>(number(|r| r.updated_at))
    .execute(pg)?;
    Ok(())
}

/// Inserts the event unless the organisation already has one with its id (then `None`).
fn insert_new(c: &mut DbConn, new: &NewEvent) -> Result<Option<Event>, StoreError> {
    let inserted = match c {
        DbConn::Pg(pg) => diesel::insert_into(ev::events)
            .values(new)
            .on_conflict_do_nothing()
            .returning(Event::as_returning())
            .get_result(pg)
            .optional(),
        DbConn::Sqlite(lite) => diesel::insert_into(ev::events)
            .values(new)
            .on_conflict_do_nothing()
            .returning(Event::as_returning())
            .get_result(lite)
            .optional(),
    };
    Ok(inserted?)
}

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> Result<Option<Event>, StoreError> {
    Ok(ev::events
        .filter(ev::org_id.eq(org_id))
        .filter(ev::id.eq(id))
        .select(Event::as_select())
        .first(conn)
        .optional()?)
}

pub fn count_deliveries(conn: &mut DbConn, seq: i64) -> Result<i64, StoreError> {
    Ok(d::deliveries.filter(d::event_seq.eq(seq)).count().get_result(conn)?)
}

pub struct EventFilter {
    pub event_type: Option<String>,
    pub range: super::TimeRange,
}

/// Newest first, by sequence number.
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    filter: &EventFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    let mut q = ev::events.filter(ev::org_id.eq(org_id)).into_boxed();
    if let Some(t) = &filter.event_type {
        match t.strip_suffix('*') {
            Some(prefix) => {
                q = q.filter(ev::event_type.like(format!("{}%", escape_like(prefix))).escape('\\'));
            }
            None => q = q.filter(ev::event_type.eq(t.clone())),
        }
    }
    q = super::within!(q, ev::created_at, filter.range);
    if let Some(seq) = before_seq {
        q = q.filter(ev::seq.lt(seq));
    }
    Ok(q.order(ev::seq.desc()).limit(limit).select(Event::as_select()).load(conn)?)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The highest sequence number committed so far (0 when there is none).
pub fn max_seq(conn: &mut DbConn) -> Result<i64, StoreError> {
    Ok(ev::events.select(diesel::dsl::max(ev::seq)).first::<Option<i64>>(conn)?.unwrap_or(0))
}

/// Events after `after_seq`, up to `until_seq`, oldest first: what the stream hub fans out.
pub fn committed_after(conn: &mut DbConn, after_seq: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
    Ok(ev::events
        .filter(ev::seq.gt(after_seq))
        .order(ev::seq.asc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)?)
}

/// One page of an organisation's events for a resuming stream, oldest first, filtered by
/// type (exact names and `prefix.*`); walks the (org_id, seq) index from the cursor.
pub fn stream_page(
    conn: &mut DbConn,
    org_id: &str,
    types: &[String],
    after_seq: i64,
    until_seq: i64,
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    let mut q = ev::events
        .filter(ev::org_id.eq(org_id))
        .filter(ev::seq.gt(after_seq))
        .filter(ev::seq.le(until_seq))
        .into_boxed();
    if !types.is_empty() && !types.iter().any(|t| t == "*") {
        let exact: Vec<String> = types.iter().filter(|t| !t.ends_with('*')).cloned().collect();
        let mut cond: Box<
            dyn BoxableExpression<
                    super::schema::events::table,
                    super::DbBackend,
                    SqlType = diesel::sql_types::Bool,
                >,
        > = Box::new(ev::event_type.eq_any(exact));
        for prefix in types.iter().filter_map(|t| t.strip_suffix('*')) {
            cond = Box::new(cond.or(ev::event_type.like(format!("{}%", escape_like(prefix))).escape('\\')));
        }
        q = q.filter(cond);
    }
    Ok(q.order(ev::seq.asc()).limit(limit).select(Event::as_select()).load(conn)?)
}
