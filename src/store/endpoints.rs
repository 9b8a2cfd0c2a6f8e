//! Endpoints (subscriptions) and their persisted circuit state.

use std::collections::HashMap;

use diesel::prelude::*;

use super::StoreError;
use super::schema::deliveries::dsl as d;
use super::schema::endpoints::dsl as e;
use super::{DbConn, write_txn};
use crate::delivery::circuit::CircuitState;
use crate::delivery::signing::SignatureScheme;
use crate::domain::{DeliveryOrder, DeliveryStatus, EndpointStatus};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::endpoints)]
pub struct Endpoint {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of type filters: exact names, `prefix.*`, or `*`.
    pub event_filter: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// Text, not `SignatureScheme` (a foreign type diesel cannot take): see `scheme()`.
    pub signature_scheme: String,
    pub status: EndpointStatus,
    pub rate_limit_per_second: Option<i32>,
    pub max_in_flight: Option<i32>,
    /// JSON object of extra headers sent with every webhook.
    pub headers: String,
    pub circuit_state: CircuitState,
    pub consecutive_failures: i32,
    pub circuit_open_until: Option<i64>,
    pub last_success_at: Option<i64>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// Bumped by every change: actors take settings only newer than what they have.
    pub version: i64,
    /// A condition on the envelope (JSON) an event must meet to be delivered here.
    pub payload_filter: Option<String>,
    /// The version pinned per event type (a JSON object), if any.
    pub versions: Option<String>,
    /// `fifo`: deliveries go one at a time in event order; `none`: in parallel.
    pub ordering: DeliveryOrder,
}

/// What a `PATCH` changes: each `Some` column is written, every other one is left exactly
/// as it is in the row (never as it was when some earlier read saw it).
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = super::schema::endpoints)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_filter: Option<String>,
    pub headers: Option<String>,
    pub signature_scheme: Option<String>,
    pub description: Option<String>,
    pub status: Option<EndpointStatus>,
    pub rate_limit_per_second: Option<i32>,
    pub max_in_flight: Option<i32>,
    /// `Some(None)` removes the filter.
    pub payload_filter: Option<Option<String>>,
    /// `Some(None)` removes the pins.
    pub versions: Option<Option<String>>,
    pub ordering: Option<DeliveryOrder>,
}

impl Endpoint {
    pub fn filters(&self) -> Vec<String> {
        serde_json::from_str(&self.event_filter).unwrap_or_default()
    }

    pub fn fifo(&self) -> bool {
        self.ordering == DeliveryOrder::Fifo
    }

    /// The signature scheme; text no version wrote reads as the default one.
    pub fn scheme(&self) -> SignatureScheme {
        SignatureScheme::parse(&self.signature_scheme).unwrap_or_default()
    }

    /// The pinned version per event type.
    pub fn pinned_versions(&self) -> HashMap<String, i32> {
        self.versions.as_deref().and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default()
    }
}

/// Live (not deleted) endpoints of an organisation.
fn live(org_id: &str) -> super::schema::endpoints::BoxedQuery<'_, super::DbBackend> {
    e::endpoints.filter(e::org_id.eq(org_id)).filter(e::deleted_at.is_null()).into_boxed()
}

/// Stores a new endpoint unless its organisation has reached its quota (its own
/// `max_endpoints`, else `default_max`); in a cluster the nodes hear of it at once, so that
/// it gets its owner without waiting for the next ownership round.
pub fn insert(conn: &mut DbConn, ep: &Endpoint, default_max: u32) -> Result<(), StoreError> {
    write_txn(conn, |c| {
        // Concurrent creates of one organisation queue here (SQLite: the write lock), so
        // the count below cannot be passed by two of them at once.
        if let DbConn::Pg(pg) = c {
            diesel::sql_query("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE")
                .bind::<diesel::sql_types::Text, _>(&ep.org_id)
                .execute(pg)?;
        }
        let own: Option<Option<i32>> = super::schema::organizations::dsl::organizations
            .find(&ep.org_id)
            .select(super::schema::organizations::dsl::max_endpoints)
            .first(c)
            .optional()?;
        let max = super::orgs::quota(own.flatten(), default_max);
        let live: i64 = e::endpoints
            .filter(e::org_id.eq(&ep.org_id))
            .filter(e::deleted_at.is_null())
            .count()
            .get_result(c)?;
        if live >= i64::from(max) {
            return Err(StoreError::QuotaReached(format!(
                "This organisation has reached its max_endpoints quota ({max}): delete an endpoint, or ask \
                 an administrator to raise it"
            )));
        }
        diesel::insert_into(e::endpoints).values(ep).execute(c)?;
        super::notify::endpoint_changed(c, &ep.id)
    })
}

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> Result<Endpoint, StoreError> {
    live(org_id)
        .filter(e::id.eq(id))
        .select(Endpoint::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("Endpoint"))
}

pub fn find_any(conn: &mut DbConn, id: &str) -> Result<Option<Endpoint>, StoreError> {
    Ok(e::endpoints.find(id).select(Endpoint::as_select()).first(conn).optional()?)
}

pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    status: Option<EndpointStatus>,
    range: super::TimeRange,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Endpoint>, StoreError> {
    let mut q = live(org_id);
    if let Some(s) = status {
        q = q.filter(e::status.eq(s));
    }
    q = super::within!(q, e::created_at, range);
    if let Some(c) = before_id {
        q = q.filter(e::id.lt(c.to_string()));
    }
    Ok(q.order(e::id.desc()).limit(limit).select(Endpoint::as_select()).load(conn)?)
}

/// Active endpoints of an organisation subscribed to `event_type`.
/// The organisation's active endpoints, whatever they subscribe to.
pub fn active(conn: &mut DbConn, org_id: &str) -> Result<Vec<Endpoint>, StoreError> {
    Ok(live(org_id).filter(e::status.eq(EndpointStatus::Active)).select(Endpoint::as_select()).load(conn)?)
}

/// A live endpoint of `org_id`: where every conditional write of one endpoint starts.
macro_rules! live_one {
    ($org_id:expr, $id:expr) => {
        e::endpoints.filter(e::id.eq($id)).filter(e::org_id.eq($org_id)).filter(e::deleted_at.is_null())
    };
}

/// Applies a `PATCH` in one transaction: the named columns, on a row that is still live,
/// and the endpoint as it stands afterwards. A deleted endpoint stays deleted (404).
pub fn update(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
    changes: &EndpointChanges,
    now: i64,
) -> Result<Endpoint, StoreError> {
    write_txn(conn, |c| {
        if changes.status == Some(EndpointStatus::Active) {
            // A re-enabled endpoint starts with a clean slate; an active one keeps its circuit.
            diesel::update(live_one!(org_id, id).filter(e::status.ne(EndpointStatus::Active)))
                .set((
                    e::failing_since.eq(None::<i64>),
                    e::circuit_state.eq(CircuitState::Closed),
                    e::consecutive_failures.eq(0),
                    e::circuit_open_until.eq(None::<i64>),
                ))
                .execute(c)?;
        }
        let n = diesel::update(live_one!(org_id, id))
            .set((changes, e::version.eq(e::version + 1), e::updated_at.eq(now)))
            .execute(c)?;
        if n == 1 {
            requeue_for_ordering(c, id, changes.ordering, now)?;
        }
        changed(c, org_id, id, n)
    })
}

/// After a change of ordering, the endpoint's pending deliveries follow the new rule: in
/// FIFO order they wait undated behind the head (the scheduler dates each as it comes up;
/// a retry already scheduled keeps its time), otherwise every one is due.
fn requeue_for_ordering(
    c: &mut DbConn,
    id: &str,
    ordering: Option<DeliveryOrder>,
    now: i64,
) -> Result<(), StoreError> {
    let pending =
        || d::deliveries.filter(d::endpoint_id.eq(id)).filter(d::status.eq(DeliveryStatus::Pending));
    match ordering {
        Some(DeliveryOrder::Fifo) => {
            diesel::update(pending().filter(d::lease_owner.is_null()).filter(d::next_attempt_at.le(now)))
                .set(d::next_attempt_at.eq(None::<i64>))
                .execute(c)?;
        }
        Some(DeliveryOrder::Unordered) => {
            diesel::update(pending().filter(d::next_attempt_at.is_null()))
                .set(d::next_attempt_at.eq(now))
                .execute(c)?;
        }
        None => {}
    }
    Ok(())
}

/// A new signing secret; the current one becomes the previous one, which keeps signing
/// until `previous_expires_at`. One statement, so two rotations never lose a secret.
pub fn rotate_secret(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
    secret: &str,
    previous_expires_at: i64,
    now: i64,
) -> Result<Endpoint, StoreError> {
    write_txn(conn, |c| {
        let n = diesel::update(live_one!(org_id, id))
            .set((
                e::previous_secret.eq(e::secret.nullable()),
                e::secret.eq(secret),
                e::previous_secret_expires_at.eq(previous_expires_at),
                e::version.eq(e::version + 1),
                e::updated_at.eq(now),
            ))
            .execute(c)?;
        changed(c, org_id, id, n)
    })
}

/// After a conditional write of `n` rows: the row as it now stands, other nodes told.
fn changed(c: &mut DbConn, org_id: &str, id: &str, n: usize) -> Result<Endpoint, StoreError> {
    if n == 0 {
        return Err(StoreError::NotFound("Endpoint"));
    }
    super::notify::endpoint_changed(c, id)?;
    find(c, org_id, id)
}

/// Disables an endpoint that has failed without a success since before `cutoff`, if it
/// still has (and is still active): the caller's transaction then publishes the event.
/// `None` when another node, or a change, got there first.
pub fn disable_if_failing(
    c: &mut DbConn,
    id: &str,
    cutoff: i64,
    now: i64,
) -> Result<Option<Endpoint>, StoreError> {
    let n = diesel::update(
        e::endpoints
            .filter(e::id.eq(id))
            .filter(e::deleted_at.is_null())
            .filter(e::status.eq(EndpointStatus::Active))
            .filter(e::failing_since.lt(cutoff)),
    )
    .set((e::status.eq(EndpointStatus::Disabled), e::version.eq(e::version + 1), e::updated_at.eq(now)))
    .execute(c)?;
    if n == 0 {
        return Ok(None);
    }
    super::notify::endpoint_changed(c, id)?;
    find_any(c, id)
}

/// The versions of these endpoints (deleted ones included), for actors checking that they
/// have not missed a change.
pub fn versions(conn: &mut DbConn, ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(e::endpoints.filter(e::id.eq_any(ids)).select((e::id, e::version)).load(conn)?)
}

/// Marks the endpoint deleted; its pending deliveries stop (failed, "endpoint deleted").
pub fn soft_delete(conn: &mut DbConn, org_id: &str, id: &str, now: i64) -> Result<bool, StoreError> {
    write_txn(conn, |c| {
        let n = diesel::update(live_one!(org_id, id))
            .set((
                e::deleted_at.eq(now),
                e::status.eq(EndpointStatus::Deleted),
                e::version.eq(e::version + 1),
                e::updated_at.eq(now),
            ))
            .execute(c)?;
        if n == 0 {
            return Ok(false);
        }
        // Queued work is dropped by the owner's actor when it hears of this; an attempt in
        // flight keeps only its attempt row (its result no longer changes the delivery).
        settle_deleted(c, id, now)?;
        super::notify::endpoint_changed(c, id)?;
        Ok(true)
    })
}

/// A deleted endpoint's pending deliveries become `failed` ("endpoint deleted"). On
/// PostgreSQL the rows are locked in id order first, as lease renewal and the result writer
/// lock them, so the three never deadlock.
fn settle_deleted(c: &mut DbConn, endpoint_id: &str, now: i64) -> Result<(), StoreError> {
    match c {
        DbConn::Pg(pg) => {
            use diesel::sql_types::{BigInt, Text};
            diesel::sql_query(
                "UPDATE deliveries SET status = 'failed', last_error = 'endpoint deleted', \
                   next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2 \
                 WHERE id IN (SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' \
                   ORDER BY id FOR NO KEY UPDATE)",
            )
            .bind::<Text, _>(endpoint_id)
            .bind::<BigInt, _>(now)
            .execute(pg)?;
        }
        DbConn::Sqlite(_) => {
            diesel::update(
                d::deliveries
                    .filter(d::endpoint_id.eq(endpoint_id))
                    .filter(d::status.eq(DeliveryStatus::Pending)),
            )
            .set((
                d::status.eq(DeliveryStatus::Failed),
                d::last_error.eq("endpoint deleted"),
                d::next_attempt_at.eq(None::<i64>),
                d::lease_owner.eq(None::<String>),
                d::lease_expires_at.eq(None::<i64>),
                d::updated_at.eq(now),
            ))
            .execute(c)?;
        }
    }
    Ok(())
}

/// Delivery counts by status for one endpoint.
pub fn delivery_counts(
    conn: &mut DbConn,
    endpoint_id: &str,
) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
    Ok(d::deliveries
        .filter(d::endpoint_id.eq(endpoint_id))
        .group_by(d::status)
        .select((d::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// What the delivery engine learned about an endpoint's health since the last write.
#[derive(Debug, Clone)]
pub struct CircuitUpdate {
    pub endpoint_id: String,
    pub state: CircuitState,
    pub consecutive_failures: i32,
    pub open_until: Option<i64>,
    /// Some(t) when a delivery succeeded at t.
    pub succeeded_at: Option<i64>,
    /// Some(t) when an attempt failed at t.
    pub failed_at: Option<i64>,
}

/// Writes only the circuit columns (and `last_success_at`/`failing_since`): a `PATCH` in
/// between keeps what it changed, and this never writes a deleted endpoint.
pub fn apply_circuit(conn: &mut DbConn, u: &CircuitUpdate) -> Result<(), StoreError> {
    // Only while active: a late result from before a disable never overwrites the clean
    // slate a re-enable wrote.
    let target = e::endpoints
        .filter(e::id.eq(&u.endpoint_id))
        .filter(e::deleted_at.is_null())
        .filter(e::status.eq(EndpointStatus::Active));
    diesel::update(target)
        .set((
            e::circuit_state.eq(u.state),
            e::consecutive_failures.eq(u.consecutive_failures),
            e::circuit_open_until.eq(u.open_until),
        ))
        .execute(conn)?;
    if let Some(t) = u.succeeded_at {
        diesel::update(target)
            .set((e::last_success_at.eq(t), e::failing_since.eq(None::<i64>)))
            .execute(conn)?;
    }
    if let Some(t) = u.failed_at.filter(|f| u.succeeded_at.is_none_or(|s| *f > s)) {
        diesel::update(target.filter(e::failing_since.is_null()))
            .set(e::failing_since.eq(t))
            .execute(conn)?;
    }
    Ok(())
}

/// Active endpoints that have failed without a success since before `cutoff`.
pub fn failing_since_before(conn: &mut DbConn, cutoff: i64) -> Result<Vec<Endpoint>, StoreError> {
    Ok(e::endpoints
        .filter(e::deleted_at.is_null())
        .filter(e::status.eq(EndpointStatus::Active))
        .filter(e::failing_since.lt(cutoff))
        .select(Endpoint::as_select())
        .load(conn)?)
}
