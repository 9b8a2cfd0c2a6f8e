//! Inbound sources and the receipts of what arrived at them.

use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::events::{Lease, NewEvent, Published, publish_in_txn};
use super::schema::receipts::dsl as r;
use super::schema::sources::dsl as s;
use crate::domain::SourceKind;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::sources)]
pub struct Source {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub kind: SourceKind,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub event_type_prefix: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

impl Source {
    /// The secrets a signature may be made with: the current one, then the previous one
    /// during its grace period.
    pub fn secrets(&self, now: i64) -> Vec<&str> {
        crate::delivery::signing::secrets_in_force(
            &self.secret,
            self.previous_secret.as_deref(),
            self.previous_secret_expires_at,
            now,
        )
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::receipts)]
pub struct Receipt {
    pub id: String,
    pub source_id: String,
    pub org_id: String,
    pub received_at: i64,
    pub provider_event_id: Option<String>,
    pub verified: bool,
    pub duplicate: bool,
    pub error: Option<String>,
    pub event_id: Option<String>,
}

pub fn insert(conn: &mut DbConn, source: &Source) -> Result<(), StoreError> {
    diesel::insert_into(s::sources).values(source).execute(conn)?;
    Ok(())
}

/// A new provider secret on a live source; the current one becomes the previous one until
/// `previous_expires_at`. One statement: a deleted source stays deleted (404).
pub fn rotate_secret(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
    secret: &str,
    previous_expires_at: i64,
) -> Result<Source, StoreError> {
    super::write_txn(conn, |c| {
        let n = diesel::update(
            s::sources.filter(s::id.eq(id)).filter(s::org_id.eq(org_id)).filter(s::deleted_at.is_null()),
        )
        .set((
            s::previous_secret.eq(s::secret.nullable()),
            s::secret.eq(secret),
            s::previous_secret_expires_at.eq(previous_expires_at),
        ))
        .execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound("Source"));
        }
        find(c, org_id, id)
    })
}

/// A live source by id alone: inbound requests carry no key, only the source id.
pub fn find_live(conn: &mut DbConn, id: &str) -> Result<Option<Source>, StoreError> {
    Ok(s::sources
        .filter(s::id.eq(id))
        .filter(s::deleted_at.is_null())
        .select(Source::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> Result<Source, StoreError> {
    find_live(conn, id)?.filter(|src| src.org_id == org_id).ok_or(StoreError::NotFound("Source"))
}

pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    range: super::TimeRange,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Source>, StoreError> {
    let mut q = s::sources.filter(s::org_id.eq(org_id)).filter(s::deleted_at.is_null()).into_boxed();
    q = super::within!(q, s::created_at, range);
    if let Some(c) = before_id {
        q = q.filter(s::id.lt(c.to_string()));
    }
    Ok(q.order(s::id.desc()).limit(limit).select(Source::as_select()).load(conn)?)
}

pub fn soft_delete(conn: &mut DbConn, org_id: &str, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        s::sources.filter(s::id.eq(id)).filter(s::org_id.eq(org_id)).filter(s::deleted_at.is_null()),
    )
    .set(s::deleted_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn record_receipt(conn: &mut DbConn, receipt: &Receipt) -> Result<(), StoreError> {
    diesel::insert_into(r::receipts).values(receipt).execute(conn)?;
    Ok(())
}

/// What became of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Verified, and the first sighting of its provider event.
    Accepted,
    /// Verified, a copy of an event seen before.
    Duplicate,
    /// Not verified (bad signature, stale timestamp, malformed).
    Rejected,
}

/// Which receipts a list shows: these outcomes (any when empty), received within a range.
#[derive(Debug, Default, Clone)]
pub struct ReceiptFilter {
    pub outcomes: Vec<Outcome>,
    pub range: super::TimeRange,
}

pub fn receipts(
    conn: &mut DbConn,
    source_id: &str,
    filter: &ReceiptFilter,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Receipt>, StoreError> {
    let mut q = r::receipts.filter(r::source_id.eq(source_id)).into_boxed();
    q = super::within!(q, r::received_at, filter.range);
    let has = |o| filter.outcomes.contains(&o);
    let (accepted, duplicate, rejected) =
        (has(Outcome::Accepted), has(Outcome::Duplicate), has(Outcome::Rejected));
    q = match (accepted, duplicate, rejected) {
        (true, true, true) | (false, false, false) => q,
        (true, false, false) => q.filter(r::verified.eq(true)).filter(r::duplicate.eq(false)),
        (false, true, false) => q.filter(r::verified.eq(true)).filter(r::duplicate.eq(true)),
        (false, false, true) => q.filter(r::verified.eq(false)),
        (true, true, false) => q.filter(r::verified.eq(true)),
        (true, false, true) => q.filter(r::verified.eq(false).or(r::duplicate.eq(false))),
        (false, true, true) => q.filter(r::verified.eq(false).or(r::duplicate.eq(true))),
    };
    if let Some(c) = before_id {
        q = q.filter(r::id.lt(c.to_string()));
    }
    Ok(q.order(r::id.desc()).limit(limit).select(Receipt::as_select()).load(conn)?)
}

/// The outcome of accepting one verified provider event.
pub enum Accepted {
    /// New: stored as this event (with its deliveries).
    New(Published),
    /// Seen before for this source: the event it became.
    Duplicate(Option<String>),
}

/// In one transaction: a first sighting stores the event, its deliveries and the accepted
/// receipt; a repeat stores a duplicate receipt. The unique index on accepted receipts makes
/// this hold across nodes too.
pub fn accept(
    conn: &mut DbConn,
    receipt: Receipt,
    event: &NewEvent,
    lease: &Lease,
) -> Result<Accepted, StoreError> {
    let provider_id = receipt.provider_event_id.clone().unwrap_or_default();
    let duplicate_of =
        |existing: Option<String>| Receipt { duplicate: true, event_id: existing, ..receipt.clone() };
    let attempt = super::write_txn(conn, |c| {
        if let Some(existing) = accepted_event(c, &receipt.source_id, &provider_id)? {
            diesel::insert_into(r::receipts).values(&duplicate_of(existing.clone())).execute(c)?;
            return Ok(Accepted::Duplicate(existing));
        }
        let published = publish_in_txn(c, event, None, lease)?;
        let accepted = Receipt { event_id: Some(event.id.clone()), ..receipt.clone() };
        diesel::insert_into(r::receipts)
            .values(&accepted)
            .execute(c)
            .map_err(|e| super::conflict_if_taken(e, || "already accepted".into()))?;
        Ok(Accepted::New(published))
    });
    match attempt {
        // Another node accepted the same provider event at the same moment.
        Err(StoreError::Conflict(_)) => {
            let existing = accepted_event(conn, &receipt.source_id, &provider_id)?.flatten();
            record_receipt(conn, &duplicate_of(existing.clone()))?;
            Ok(Accepted::Duplicate(existing))
        }
        other => other,
    }
}

fn accepted_event(
    conn: &mut DbConn,
    source_id: &str,
    provider_id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    Ok(r::receipts
        .filter(r::source_id.eq(source_id))
        .filter(r::provider_event_id.eq(provider_id))
        .filter(r::verified.eq(true))
        .filter(r::duplicate.eq(false))
        .select(r::event_id)
        .first::<Option<String>>(conn)
        .optional()?)
}
