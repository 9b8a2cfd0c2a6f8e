//! What the Janitor purges: finished events (with their deliveries and attempts) past their
//! organisation's retention, receipts past theirs, idempotency keys after 24 h, expired
//! sessions and stream tokens. Each batch is at most `BATCH` rows in one transaction.

use diesel::prelude::*;

use super::StoreError;
use super::schema::deliveries::dsl as d;
use super::schema::delivery_attempts::dsl as a;
use super::schema::events::dsl as ev;
use super::schema::idempotency_keys::dsl as i;
use super::schema::organizations::dsl as o;
use super::schema::receipts::dsl as r;
use super::schema::sessions::dsl as s;
use super::schema::stream_tokens::dsl as t;
use super::{DbConn, write_txn};
use crate::domain::DeliveryStatus;

/// Rows per transaction at most.
pub const BATCH: i64 = 1000;
/// Key for the advisory lock that lets one node purge at a time.
const JANITOR_LOCK_KEY: i64 = 0x6865_7261_6c6a; // "heralj"

/// Rows purged from each table by one batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct Purged {
    pub events: usize,
    pub deliveries: usize,
    pub attempts: usize,
}

/// Every organisation with its own event retention (ms), if it set one.
pub fn org_retentions(conn: &mut DbConn) -> Result<Vec<(String, Option<i64>)>, StoreError> {
    Ok(o::organizations.select((o::id, o::retention_events_ms)).load(conn)?)
}

/// One batch of an organisation's events made before `cutoff` whose deliveries are all
/// final, with those deliveries and their attempts. A delivery re-queued meanwhile (a
/// replay) keeps its event: the deliveries are locked before the check.
pub fn purge_events(conn: &mut DbConn, org_id: &str, cutoff: i64) -> Result<Purged, StoreError> {
    // Nothing old enough: skip without walking the organisation's events.
    let oldest: Option<i64> = ev::events
        .filter(ev::org_id.eq(org_id))
        .order(ev::seq.asc())
        .select(ev::created_at)
        .first(conn)
        .optional()?;
    if oldest.is_none_or(|t| t >= cutoff) {
        return Ok(Purged::default());
    }
    let pending =
        d::deliveries.filter(d::event_seq.eq(ev::seq)).filter(d::status.eq(DeliveryStatus::Pending));
    write_txn(conn, |c| {
        // Oldest first, skipping events still waiting on a delivery (they stay).
        let candidates: Vec<i64> = ev::events
            .filter(ev::org_id.eq(org_id))
            .filter(ev::created_at.lt(cutoff))
            .filter(diesel::dsl::not(diesel::dsl::exists(pending)))
            .order(ev::seq.asc())
            .limit(BATCH)
            .select(ev::seq)
            .load(c)?;
        if candidates.is_empty() {
            return Ok(Purged::default());
        }
        if let DbConn::Pg(pg) = c {
            diesel::sql_query("SELECT 1 FROM deliveries WHERE event_seq = ANY($1) ORDER BY id FOR UPDATE")
                .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&candidates)
                .execute(pg)?;
        }
        let unfinished: Vec<i64> = d::deliveries
            .filter(d::event_seq.eq_any(&candidates))
            .filter(d::status.eq(DeliveryStatus::Pending))
            .select(d::event_seq)
            .distinct()
            .load(c)?;
        let seqs: Vec<i64> = candidates.into_iter().filter(|s| !unfinished.contains(s)).collect();
        if seqs.is_empty() {
            return Ok(Purged::default());
        }
        let doomed = d::deliveries.filter(d::event_seq.eq_any(&seqs)).select(d::id);
        let attempts =
            diesel::delete(a::delivery_attempts.filter(a::delivery_id.eq_any(doomed))).execute(c)?;
        let deliveries = diesel::delete(d::deliveries.filter(d::event_seq.eq_any(&seqs))).execute(c)?;
        let events = diesel::delete(ev::events.filter(ev::seq.eq_any(&seqs))).execute(c)?;
        let newest = seqs.iter().copied().max().unwrap_or(0);
        diesel::update(o::organizations.find(org_id).filter(o::purged_through_seq.lt(newest)))
            .set(o::purged_through_seq.eq(newest))
            .execute(c)?;
        Ok(Purged { events, deliveries, attempts })
    })
}

/// One batch of receipts made before `cutoff`.
pub fn purge_receipts(conn: &mut DbConn, cutoff: i64) -> Result<usize, StoreError> {
    let old = r::receipts.filter(r::received_at.lt(cutoff)).select(r::id).limit(BATCH);
    let ids: Vec<String> = old.load(conn)?;
    Ok(diesel::delete(r::receipts.filter(r::id.eq_any(ids))).execute(conn)?)
}

/// One batch of idempotency keys made before `cutoff`.
pub fn purge_idempotency_keys(conn: &mut DbConn, cutoff: i64) -> Result<usize, StoreError> {
    let old: Vec<(String, String)> = i::idempotency_keys
        .filter(i::created_at.lt(cutoff))
        .select((i::org_id, i::idem_key))
        .limit(BATCH)
        .load(conn)?;
    let mut n = 0;
    write_txn(conn, |c| {
        for (org, key) in &old {
            n += diesel::delete(i::idempotency_keys.find((org, key)).filter(i::created_at.lt(cutoff)))
                .execute(c)?;
        }
        Ok(n)
    })
}

/// One batch of expired sessions.
pub fn purge_sessions(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    let ids: Vec<String> =
        s::sessions.filter(s::expires_at.le(now)).select(s::token_hash).limit(BATCH).load(conn)?;
    Ok(diesel::delete(s::sessions.filter(s::token_hash.eq_any(ids))).execute(conn)?)
}

/// One batch of expired stream tokens.
pub fn purge_stream_tokens(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    let ids: Vec<String> =
        t::stream_tokens.filter(t::expires_at.le(now)).select(t::token_hash).limit(BATCH).load(conn)?;
    Ok(diesel::delete(t::stream_tokens.filter(t::token_hash.eq_any(ids))).execute(conn)?)
}

/// Takes the purging turn for this connection's session (PostgreSQL: an advisory lock that
/// one node holds at a time); false when another node has it.
pub fn take_turn(conn: &mut DbConn) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    match conn {
        DbConn::Pg(pg) => {
            let row: Locked =
                diesel::sql_query(format!("SELECT pg_try_advisory_lock({JANITOR_LOCK_KEY}) AS locked"))
                    .get_result(pg)?;
            Ok(row.locked)
        }
        DbConn::Sqlite(_) => Ok(true),
    }
}

pub fn end_turn(conn: &mut DbConn) -> Result<(), StoreError> {
    if let DbConn::Pg(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_unlock({JANITOR_LOCK_KEY})")).execute(pg)?;
    }
    Ok(())
}
