//! Deliveries, their attempts, leases and the batched writes of attempt results.

use diesel::prelude::*;

use super::StoreError;
use super::endpoints::Endpoint;
use super::events::{Event, Lease};
use super::schema::deliveries::dsl as d;
use super::schema::delivery_attempts::dsl as a;
use super::schema::endpoints::dsl as e;
use super::schema::events::dsl as ev;
use super::{DbConn, write_txn};
use crate::domain::{DeliveryOrder, DeliveryStatus};

diesel::define_sql_function! {
    /// SQL's COALESCE for a nullable time and a fallback.
    fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::BigInt>, y: diesel::sql_types::BigInt) -> diesel::sql_types::Nullable<diesel::sql_types::BigInt>;
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::deliveries)]
pub struct Delivery {
    pub id: String,
    pub org_id: String,
    pub event_seq: i64,
    pub endpoint_id: String,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub retry_base: i32,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub first_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = super::schema::deliveries)]
pub struct NewDelivery {
    pub id: String,
    pub org_id: String,
    pub event_seq: i64,
    pub endpoint_id: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl NewDelivery {
    pub fn pending(event: &Event, endpoint_id: &str, now: i64, lease: Option<&Lease>) -> Self {
        Self {
            id: crate::ids::new_id("dlv"),
            org_id: event.org_id.clone(),
            event_seq: event.seq,
            endpoint_id: endpoint_id.to_string(),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            lease_owner: lease.map(|l| l.owner.clone()),
            lease_expires_at: lease.map(|l| l.expires_at),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn into_delivery(self) -> Delivery {
        Delivery {
            id: self.id,
            org_id: self.org_id,
            event_seq: self.event_seq,
            endpoint_id: self.endpoint_id,
            status: self.status,
            attempt_count: 0,
            retry_base: 0,
            next_attempt_at: self.next_attempt_at,
            last_status_code: None,
            last_error: None,
            first_attempt_at: None,
            last_attempt_at: None,
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::delivery_attempts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct AttemptRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub delivery_id: String,
    pub attempt: i32,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

pub fn get(conn: &mut DbConn, org_id: &str, id: &str) -> Result<Delivery, StoreError> {
    find(conn, org_id, id)?.ok_or(StoreError::NotFound("Delivery"))
}

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> Result<Option<Delivery>, StoreError> {
    Ok(d::deliveries
        .filter(d::org_id.eq(org_id))
        .filter(d::id.eq(id))
        .select(Delivery::as_select())
        .first(conn)
        .optional()?)
}

pub fn attempts(conn: &mut DbConn, delivery_id: &str) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(a::delivery_attempts
        .filter(a::delivery_id.eq(delivery_id))
        .order(a::id.asc())
        .select(AttemptRow::as_select())
        .load(conn)?)
}

pub fn for_event(conn: &mut DbConn, seq: i64) -> Result<Vec<Delivery>, StoreError> {
    Ok(d::deliveries
        .filter(d::event_seq.eq(seq))
        .order(d::id.asc())
        .select(Delivery::as_select())
        .load(conn)?)
}

pub fn event_of(conn: &mut DbConn, delivery: &Delivery) -> Result<Event, StoreError> {
    Ok(ev::events.find(delivery.event_seq).select(Event::as_select()).first(conn)?)
}

/// One page of deliveries, newest first; by endpoint and/or status.
/// Which deliveries a list shows: of one endpoint, in these statuses (any when empty),
/// created within a time range.
#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub statuses: Vec<DeliveryStatus>,
    pub range: super::TimeRange,
}

pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    filter: &DeliveryFilter,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<(Delivery, Event)>, StoreError> {
    let mut q = d::deliveries.inner_join(ev::events).filter(d::org_id.eq(org_id)).into_boxed();
    if let Some(ep) = &filter.endpoint_id {
        q = q.filter(d::endpoint_id.eq(ep.clone()));
    }
    if !filter.statuses.is_empty() {
        q = q.filter(d::status.eq_any(filter.statuses.clone()));
    }
    q = super::within!(q, d::created_at, filter.range);
    if let Some(c) = before_id {
        q = q.filter(d::id.lt(c.to_string()));
    }
    Ok(q.order(d::id.desc()).limit(limit).select((Delivery::as_select(), Event::as_select())).load(conn)?)
}

/// What happened to a delivery, written by the result writer.
#[derive(Debug, Clone)]
pub enum NextState {
    Succeeded,
    Failed,
    Dead,
    /// Try again at this time (an attempt failed and the schedule allows another).
    Retry(i64),
    /// Not attempted (circuit open, over capacity); back to the store until then.
    Release(i64),
}

#[derive(Debug, Clone)]
pub struct DeliveryUpdate {
    pub delivery_id: String,
    pub attempt: Option<AttemptRow>,
    pub next: NextState,
}

/// Writes a batch of results in one transaction. A result changes its delivery only while
/// `owner` still holds it and no other attempt was recorded since this one started: a
/// stale result (the delivery was retried, replayed or taken over meanwhile) keeps its
/// attempt row and changes nothing else.
pub fn record(
    conn: &mut DbConn,
    updates: &[DeliveryUpdate],
    owner: &str,
    now: i64,
) -> Result<(), StoreError> {
    write_txn(conn, |c| {
        let attempts: Vec<AttemptRow> = updates.iter().filter_map(|u| u.attempt.clone()).collect();
        if !attempts.is_empty() {
            super::insert_all!(c, a::delivery_attempts, &attempts)?;
        }
        let ids: std::collections::HashSet<&str> = updates.iter().map(|u| u.delivery_id.as_str()).collect();
        match c {
            // One statement for the whole batch; PostgreSQL would otherwise pay a round trip
            // per result. (A delivery with two results in one batch goes row by row.)
            DbConn::Pg(pg) if ids.len() == updates.len() => record_bulk_pg(pg, updates, owner, now),
            _ => record_rows(c, updates, owner, now),
        }
    })
}

impl NextState {
    /// The delivery's status once this is written.
    pub fn status(&self) -> DeliveryStatus {
        match self {
            NextState::Succeeded => DeliveryStatus::Succeeded,
            NextState::Failed => DeliveryStatus::Failed,
            NextState::Dead => DeliveryStatus::Dead,
            NextState::Retry(_) | NextState::Release(_) => DeliveryStatus::Pending,
        }
    }

    /// When it is due next, if it stays pending.
    fn next_attempt_at(&self) -> Option<i64> {
        match self {
            NextState::Retry(at) | NextState::Release(at) => Some(*at),
            NextState::Succeeded | NextState::Failed | NextState::Dead => None,
        }
    }
}

fn record_bulk_pg(
    pg: &mut diesel::PgConnection,
    updates: &[DeliveryUpdate],
    owner: &str,
    now: i64,
) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
    let mut ids = Vec::with_capacity(updates.len());
    let (mut statuses, mut next_ats, mut attempted) = (Vec::new(), Vec::new(), Vec::new());
    let (mut numbers, mut codes, mut errors, mut started) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for u in updates {
        ids.push(u.delivery_id.clone());
        statuses.push(u.next.status().as_str());
        next_ats.push(u.next.next_attempt_at());
        attempted.push(u.attempt.is_some());
        numbers.push(u.attempt.as_ref().map(|a| a.attempt));
        codes.push(u.attempt.as_ref().and_then(|a| a.status_code));
        errors.push(u.attempt.as_ref().and_then(|a| a.error.clone()));
        started.push(u.attempt.as_ref().map(|a| a.started_at));
    }
    // The rows are locked in id order first, as lease renewal does, so the two never
    // deadlock. The holder is compared as an expression so that the planner drives the
    // lookup by the ids (at most a batch) and never by the node's index of held rows (all
    // of them: a scan per batch).
    diesel::sql_query(
        "UPDATE deliveries AS d SET \
           status = v.status, next_attempt_at = v.next_at, \
           attempt_count = CASE WHEN v.attempted THEN v.attempt ELSE d.attempt_count END, \
           last_status_code = CASE WHEN v.attempted THEN v.code ELSE d.last_status_code END, \
           last_error = CASE WHEN v.attempted THEN v.error ELSE d.last_error END, \
           last_attempt_at = CASE WHEN v.attempted THEN v.started ELSE d.last_attempt_at END, \
           first_attempt_at = CASE WHEN v.attempted THEN COALESCE(d.first_attempt_at, v.started) \
                              ELSE d.first_attempt_at END, \
           updated_at = $9, lease_owner = NULL, lease_expires_at = NULL \
         FROM unnest($1, $2, $3, $4, $5, $6, $7, $8) \
           AS v(id, status, next_at, attempted, attempt, code, error, started) \
         WHERE d.id = v.id AND (NOT v.attempted OR d.attempt_count = v.attempt - 1) AND d.id IN \
           (SELECT id FROM deliveries WHERE id = ANY($1) AND status = 'pending' \
              AND COALESCE(lease_owner, '') = $10 ORDER BY id FOR NO KEY UPDATE)",
    )
    .bind::<Array<Text>, _>(ids)
    .bind::<Array<Text>, _>(statuses)
    .bind::<Array<Nullable<BigInt>>, _>(next_ats)
    .bind::<Array<Bool>, _>(attempted)
    .bind::<Array<Nullable<Integer>>, _>(numbers)
    .bind::<Array<Nullable<Integer>>, _>(codes)
    .bind::<Array<Nullable<Text>>, _>(errors)
    .bind::<Array<Nullable<BigInt>>, _>(started)
    .bind::<BigInt, _>(now)
    .bind::<Text, _>(owner)
    .execute(pg)?;
    Ok(())
}

fn record_rows(c: &mut DbConn, updates: &[DeliveryUpdate], owner: &str, now: i64) -> Result<(), StoreError> {
    // In id order (stable: one delivery's results keep theirs), as renew_leases locks.
    let mut ordered: Vec<&DeliveryUpdate> = updates.iter().collect();
    ordered.sort_by(|a, b| a.delivery_id.cmp(&b.delivery_id));
    for u in ordered {
        let row = d::deliveries
            .filter(d::id.eq(&u.delivery_id))
            .filter(d::status.eq(DeliveryStatus::Pending))
            .filter(d::lease_owner.eq(owner));
        let (status, next_at) = (u.next.status(), u.next.next_attempt_at());
        let lease_clear = (d::lease_owner.eq(None::<String>), d::lease_expires_at.eq(None::<i64>));
        match &u.attempt {
            Some(att) => {
                diesel::update(row.filter(d::attempt_count.eq(att.attempt - 1)))
                    .set((
                        d::status.eq(status),
                        d::next_attempt_at.eq(next_at),
                        d::attempt_count.eq(att.attempt),
                        d::last_status_code.eq(att.status_code),
                        d::last_error.eq(&att.error),
                        d::last_attempt_at.eq(att.started_at),
                        d::first_attempt_at.eq(coalesce(d::first_attempt_at, att.started_at)),
                        d::updated_at.eq(now),
                        lease_clear,
                    ))
                    .execute(c)?;
            }
            None => {
                diesel::update(row)
                    .set((
                        d::status.eq(status),
                        d::next_attempt_at.eq(next_at),
                        d::updated_at.eq(now),
                        lease_clear,
                    ))
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Which due deliveries a claim looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimable {
    /// Held by no node: new retries, work an open circuit released, replays. Served by a
    /// partial index of exactly these, so a claim never reads work other nodes hold.
    Unleased,
    /// Held by a node whose lease ran out (it crashed or stalled). This reads every held
    /// row, so the Scheduler asks for it less often.
    Expired,
}

/// Claims up to `limit` due deliveries of active endpoints for `lease.owner`.
/// PostgreSQL: `FOR UPDATE SKIP LOCKED`, so nodes never claim the same row; SQLite has one
/// writer at a time, which gives the same guarantee.
/// Whose deliveries a claim takes.
#[derive(Debug, Clone, Copy)]
pub enum ClaimScope<'a> {
    /// Every endpoint but these: their actors on this node hold all the payload bytes they
    /// may, and their work stays in the store until they have room again.
    AllBut(&'a [String]),
    /// One endpoint's refill: in due order, as much as its actor has room for.
    Only(&'a str),
}

/// Endpoint ids are generated (`ep_` and a ULID): anything else never goes into SQL.
fn generated_id(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub fn claim_due(
    conn: &mut DbConn,
    lease: &Lease,
    now: i64,
    limit: i64,
    which: Claimable,
    scope: ClaimScope,
) -> Result<Vec<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    use diesel::sql_types::{BigInt, Text};
    let Some(pick) = claimable_sql(matches!(conn, DbConn::Pg(_)), which, scope) else {
        return Ok(Vec::new());
    };
    // $4: the lease's expiry, beside the query's $1 to $3.
    let update = |pick: &str| {
        format!(
            "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $4 WHERE id IN ({pick}) RETURNING id"
        )
    };
    let claim = |sql: String| {
        diesel::sql_query(sql)
            .bind::<Text, _>(lease.owner.clone())
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit)
            .bind::<BigInt, _>(lease.expires_at)
    };
    let rows: Vec<Claimed> = match conn {
        DbConn::Pg(pg) => claim(update(&(pick + " FOR UPDATE OF d SKIP LOCKED"))).load(pg)?,
        DbConn::Sqlite(_) => write_txn(conn, |c| {
            let DbConn::Sqlite(lite) = c else { unreachable!() };
            Ok(claim(update(&pick).replace('$', "?")).load(lite)?)
        })?,
    };
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// The query of the deliveries a claim takes, oldest due first: $1 owner, $2 now, $3 limit
/// (SQLite numbers its `?` the same way). `None` when the scope names no endpoint that can
/// be in SQL.
fn claimable_sql(postgres: bool, which: Claimable, scope: ClaimScope) -> Option<String> {
    let lease_condition = match which {
        Claimable::Unleased => "d.lease_owner IS NULL",
        Claimable::Expired => "d.lease_owner IS NOT NULL AND d.lease_expires_at < $2",
    };
    // In a cluster only the endpoint's owner sends its deliveries.
    let owned = if postgres {
        "AND EXISTS (SELECT 1 FROM endpoint_owners o WHERE o.endpoint_id = d.endpoint_id \
         AND o.owner = $1 AND o.expires_at > $2)"
    } else {
        ""
    };
    let scoped = match scope {
        ClaimScope::AllBut(full) => {
            let skipped: Vec<String> =
                full.iter().filter(|id| generated_id(id)).map(|id| format!("'{id}'")).collect();
            if skipped.is_empty() {
                String::new()
            } else {
                format!("AND d.endpoint_id NOT IN ({})", skipped.join(","))
            }
        }
        ClaimScope::Only(id) if generated_id(id) => format!("AND d.endpoint_id = '{id}'"),
        ClaimScope::Only(_) => return None,
    };
    // A FIFO endpoint's delivery is claimable only at the head of its queue (the lowest
    // event seq still pending) and while none of its others is held: one at a time, in order,
    // across retries, restarts and replays.
    let fifo = "AND (e.ordering <> 'fifo' OR (\
         d.event_seq = (SELECT MIN(q.event_seq) FROM deliveries q \
           WHERE q.endpoint_id = d.endpoint_id AND q.status = 'pending') \
         AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.endpoint_id = d.endpoint_id \
           AND f.status = 'pending' AND f.id <> d.id AND f.lease_owner IS NOT NULL AND f.lease_expires_at >= $2)))";
    Some(format!(
        "SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'pending' AND {lease_condition} AND d.next_attempt_at <= $2 \
         AND e.status = 'active' AND e.deleted_at IS NULL {owned} {scoped} {fifo} \
         ORDER BY d.next_attempt_at LIMIT $3"
    ))
}

/// Makes the head of each active FIFO endpoint's queue due, when it waits undated behind
/// a delivery that is now final (a FIFO endpoint's deliveries are stored without a due time:
/// a claim never scans its backlog). One statement, an index probe per FIFO endpoint.
pub fn promote_queue_heads(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    use diesel::sql_types::BigInt;
    let sql = "UPDATE deliveries SET next_attempt_at = $1 \
               WHERE status = 'pending' AND next_attempt_at IS NULL AND id IN ( \
                 SELECT (SELECT q.id FROM deliveries q WHERE q.endpoint_id = e.id AND q.status = 'pending' \
                         ORDER BY q.event_seq LIMIT 1) \
                 FROM endpoints e WHERE e.ordering = 'fifo' AND e.status = 'active' AND e.deleted_at IS NULL)";
    write_txn(conn, |c| {
        Ok(match c {
            DbConn::Pg(pg) => diesel::sql_query(sql).bind::<BigInt, _>(now).execute(pg)?,
            DbConn::Sqlite(lite) => {
                diesel::sql_query(sql.replace('$', "?")).bind::<BigInt, _>(now).execute(lite)?
            }
        })
    })
}

/// Everything needed to send the given deliveries.
pub fn load_jobs(conn: &mut DbConn, ids: &[String]) -> Result<Vec<(Delivery, Event, Endpoint)>, StoreError> {
    Ok(d::deliveries
        .inner_join(ev::events)
        .inner_join(e::endpoints)
        .filter(d::id.eq_any(ids))
        .select((Delivery::as_select(), Event::as_select(), Endpoint::as_select()))
        .load(conn)?)
}

/// Keeps alive the claims an actor holds (queued or in flight), and only those: anything
/// dropped is claimable again once its lease runs out.
pub fn renew_ids(
    conn: &mut DbConn,
    owner: &str,
    ids: &[String],
    expires_at: i64,
) -> Result<usize, StoreError> {
    update_ids(conn, owner, ids, Some(expires_at))
}

/// Gives back claims an actor will not attempt (it was retired, or its queue overflowed).
pub fn release_ids(conn: &mut DbConn, owner: &str, ids: &[String]) -> Result<usize, StoreError> {
    update_ids(conn, owner, ids, None)
}

/// Renews (`Some(expiry)`) or releases (`None`) the given pending deliveries `owner` holds.
/// On PostgreSQL the rows are locked in id order first, the order the ResultWriter writes
/// in, so the two never deadlock.
fn update_ids(
    conn: &mut DbConn,
    owner: &str,
    ids: &[String],
    renew: Option<i64>,
) -> Result<usize, StoreError> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    if ids.is_empty() {
        return Ok(0);
    }
    let mut sorted = ids.to_vec();
    sorted.sort();
    write_txn(conn, |c| {
        let mut n = 0;
        for chunk in sorted.chunks(1000) {
            n += match c {
                DbConn::Pg(pg) => diesel::sql_query(
                    "UPDATE deliveries SET lease_expires_at = $3, \
                       lease_owner = CASE WHEN $3 IS NULL THEN NULL ELSE lease_owner END \
                     WHERE id IN (SELECT id FROM deliveries \
                       WHERE id = ANY($2) AND COALESCE(lease_owner, '') = $1 AND status = 'pending' \
                       ORDER BY id FOR NO KEY UPDATE)",
                )
                .bind::<Text, _>(owner)
                .bind::<Array<Text>, _>(chunk)
                .bind::<Nullable<BigInt>, _>(renew)
                .execute(pg)?,
                DbConn::Sqlite(_) => {
                    let held = d::deliveries
                        .filter(d::id.eq_any(chunk))
                        .filter(d::lease_owner.eq(owner))
                        .filter(d::status.eq(DeliveryStatus::Pending));
                    match renew {
                        Some(at) => diesel::update(held).set(d::lease_expires_at.eq(at)).execute(c)?,
                        None => diesel::update(held)
                            .set((d::lease_owner.eq(None::<String>), d::lease_expires_at.eq(None::<i64>)))
                            .execute(c)?,
                    }
                }
            };
        }
        Ok(n)
    })
}

/// Gives back every claim this node holds (graceful shutdown).
pub fn release_node(conn: &mut DbConn, owner: &str) -> Result<usize, StoreError> {
    release_held(conn, owner, None)
}

/// Gives back the claims this node holds for one endpoint (its actor died).
pub fn release_endpoint(conn: &mut DbConn, owner: &str, endpoint_id: &str) -> Result<usize, StoreError> {
    release_held(conn, owner, Some(endpoint_id))
}

fn release_held(conn: &mut DbConn, owner: &str, endpoint_id: Option<&str>) -> Result<usize, StoreError> {
    let mut query = d::deliveries
        .filter(d::lease_owner.eq(owner))
        .filter(d::status.eq(DeliveryStatus::Pending))
        .into_boxed();
    if let Some(id) = endpoint_id {
        query = query.filter(d::endpoint_id.eq(id));
    }
    let held: Vec<String> = query.select(d::id).load(conn)?;
    release_ids(conn, owner, &held)
}

/// Which deliveries a replay re-queues.
pub struct ReplaySelection<'a> {
    pub org_id: &'a str,
    pub ids: Option<&'a [String]>,
    pub endpoint_id: Option<&'a str>,
    pub statuses: &'a [DeliveryStatus],
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Puts matching deliveries of live endpoints back to `pending`, due now, with a fresh
/// retry schedule. The update re-checks every condition, so a delivery that changed
/// meanwhile is left alone. Returns how many were re-queued.
pub fn requeue(conn: &mut DbConn, sel: &ReplaySelection, now: i64) -> Result<usize, StoreError> {
    let statuses = sel.statuses.to_vec();
    let live_endpoints = || e::endpoints.filter(e::deleted_at.is_null()).select(e::id);
    write_txn(conn, |c| {
        let mut q = d::deliveries
            .filter(d::org_id.eq(sel.org_id))
            .filter(d::status.eq_any(statuses.clone()))
            .filter(d::endpoint_id.eq_any(live_endpoints()))
            .select(d::id)
            .into_boxed();
        if let Some(ids) = sel.ids {
            q = q.filter(d::id.eq_any(ids.to_vec()));
        }
        if let Some(ep) = sel.endpoint_id {
            q = q.filter(d::endpoint_id.eq(ep.to_string()));
        }
        if let Some(since) = sel.since {
            q = q.filter(d::created_at.ge(since));
        }
        if let Some(until) = sel.until {
            q = q.filter(d::created_at.le(until));
        }
        let ids: Vec<String> = q.load(c)?;
        let mut n = 0;
        for chunk in ids.chunks(500) {
            n += diesel::update(
                d::deliveries
                    .filter(d::id.eq_any(chunk))
                    .filter(d::status.eq_any(statuses.clone()))
                    .filter(d::endpoint_id.eq_any(live_endpoints())),
            )
            .set((
                d::status.eq(DeliveryStatus::Pending),
                d::next_attempt_at.eq(now),
                d::retry_base.eq(d::attempt_count),
                d::lease_owner.eq(None::<String>),
                d::lease_expires_at.eq(None::<i64>),
                d::updated_at.eq(now),
            ))
            .execute(c)?;
            // A FIFO endpoint's replayed deliveries wait undated in its queue, like new ones:
            // the scheduler dates each as it heads the queue.
            diesel::update(
                d::deliveries
                    .filter(d::id.eq_any(chunk))
                    .filter(d::status.eq(DeliveryStatus::Pending))
                    .filter(
                        d::endpoint_id
                            .eq_any(e::endpoints.filter(e::ordering.eq(DeliveryOrder::Fifo)).select(e::id)),
                    ),
            )
            .set(d::next_attempt_at.eq(None::<i64>))
            .execute(c)?;
        }
        Ok(n)
    })
}

/// What `POST /v1/deliveries/{id}/retry` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Due now, with a fresh retry schedule.
    Queued,
    NotFound,
    /// A node holds it (queued in its endpoint's actor, or being sent): left alone.
    BeingAttempted,
    EndpointDeleted,
}

/// Makes one delivery due now, unless a node holds it or its endpoint is deleted: one
/// conditional statement, so a retry can never race an attempt into a second send.
pub fn retry(conn: &mut DbConn, org_id: &str, id: &str, now: i64) -> Result<Retry, StoreError> {
    use diesel::sql_types::{BigInt, Text};
    // $1 id, $2 org, $3 now (SQLite numbers its `?` the same way).
    // A FIFO endpoint's delivery waits undated in its queue (dated when it heads it).
    let sql = "UPDATE deliveries SET status = 'pending', \
                 next_attempt_at = CASE WHEN endpoint_id IN (SELECT id FROM endpoints WHERE ordering = 'fifo') \
                   THEN NULL ELSE $3 END, \
                 retry_base = attempt_count, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
               WHERE id = $1 AND org_id = $2 \
                 AND (status <> 'pending' OR lease_owner IS NULL OR lease_expires_at < $3) \
                 AND endpoint_id IN (SELECT id FROM endpoints WHERE deleted_at IS NULL)";
    write_txn(conn, |c| {
        let query = |sql: String| {
            diesel::sql_query(sql).bind::<Text, _>(id).bind::<Text, _>(org_id).bind::<BigInt, _>(now)
        };
        let n = match c {
            DbConn::Pg(pg) => query(sql.to_string()).execute(pg)?,
            DbConn::Sqlite(lite) => query(sql.replace('$', "?")).execute(lite)?,
        };
        if n == 1 {
            return Ok(Retry::Queued);
        }
        let Some(delivery) = find(c, org_id, id)? else {
            return Ok(Retry::NotFound);
        };
        let deleted = e::endpoints
            .find(&delivery.endpoint_id)
            .select(e::deleted_at.is_not_null())
            .first::<bool>(c)
            .optional()?
            .unwrap_or(true);
        Ok(if deleted { Retry::EndpointDeleted } else { Retry::BeingAttempted })
    })
}

/// The head of an endpoint's queue: its pending delivery of the lowest event seq.
pub fn queue_head(conn: &mut DbConn, endpoint_id: &str) -> Result<Option<Delivery>, StoreError> {
    Ok(d::deliveries
        .filter(d::endpoint_id.eq(endpoint_id))
        .filter(d::status.eq(DeliveryStatus::Pending))
        .order(d::event_seq.asc())
        .select(Delivery::as_select())
        .first(conn)
        .optional()?)
}

/// What became of a cancel.
pub enum Cancel {
    Cancelled(Delivery),
    NotFound,
    /// Being attempted now (its attempt decides), or already final.
    NotPending(Delivery),
}

/// Marks a pending delivery that no node is attempting `failed` ("cancelled"): a FIFO
/// endpoint's queue moves on past it. One conditional write.
pub fn cancel(conn: &mut DbConn, org_id: &str, id: &str, now: i64) -> Result<Cancel, StoreError> {
    write_txn(conn, |c| {
        let n = diesel::update(
            d::deliveries
                .filter(d::id.eq(id))
                .filter(d::org_id.eq(org_id))
                .filter(d::status.eq(DeliveryStatus::Pending))
                // Held (even past its lease: its node may still be sending it), it is not
                // cancelled: a FIFO receiver must never see two at once.
                .filter(d::lease_owner.is_null()),
        )
        .set((
            d::status.eq(DeliveryStatus::Failed),
            d::last_error.eq("cancelled"),
            d::next_attempt_at.eq(None::<i64>),
            d::lease_owner.eq(None::<String>),
            d::lease_expires_at.eq(None::<i64>),
            d::updated_at.eq(now),
        ))
        .execute(c)?;
        if n == 1 {
            // The endpoint's owner (maybe another node) moves its queue on.
            super::notify::work_waiting(c)?;
        }
        Ok(match (n, find(c, org_id, id)?) {
            (_, None) => Cancel::NotFound,
            (1, Some(d)) => Cancel::Cancelled(d),
            (_, Some(d)) => Cancel::NotPending(d),
        })
    })
}

pub fn count_pending(conn: &mut DbConn) -> Result<i64, StoreError> {
    Ok(d::deliveries.filter(d::status.eq(DeliveryStatus::Pending)).count().get_result(conn)?)
}
