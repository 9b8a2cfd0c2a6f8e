//! Idempotency keys: the first request with a key claims it (a row with no answer yet);
//! its answer is stored when it completes and replayed to every repeat for 24 hours.

use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::idempotency_keys::dsl as i;

pub const TTL_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::idempotency_keys)]
pub struct IdempotencyRecord {
    pub org_id: String,
    pub idem_key: String,
    pub request_hash: String,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: i64,
}

pub enum Claim {
    /// This request owns the key and must run.
    Claimed,
    /// The key was used before; here is what it recorded.
    Existing(IdempotencyRecord),
}

pub fn claim(
    conn: &mut DbConn,
    org_id: &str,
    key: &str,
    request_hash: &str,
    now: i64,
) -> Result<Claim, StoreError> {
    // An expired key is free again.
    diesel::delete(i::idempotency_keys.filter(i::org_id.eq(org_id)).filter(i::idem_key.eq(key)))
        .filter(i::created_at.lt(now - TTL_MS))
        .execute(conn)?;
    let record = IdempotencyRecord {
        org_id: org_id.to_string(),
        idem_key: key.to_string(),
        request_hash: request_hash.to_string(),
        status_code: None,
        response_body: None,
        created_at: now,
    };
    match diesel::insert_into(i::idempotency_keys).values(&record).execute(conn) {
        Ok(_) => Ok(Claim::Claimed),
        Err(e) if super::is_unique_violation(&e) => {
            let existing =
                i::idempotency_keys.find((org_id, key)).select(IdempotencyRecord::as_select()).first(conn)?;
            Ok(Claim::Existing(existing))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn complete(
    conn: &mut DbConn,
    org_id: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    diesel::update(i::idempotency_keys.find((org_id, key)))
        .set((i::status_code.eq(status as i32), i::response_body.eq(body)))
        .execute(conn)?;
    Ok(())
}

/// A request that failed on the server side gives its key back, so a retry can run.
pub fn release(conn: &mut DbConn, org_id: &str, key: &str) -> Result<(), StoreError> {
    diesel::delete(i::idempotency_keys.find((org_id, key))).execute(conn)?;
    Ok(())
}
