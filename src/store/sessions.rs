//! Dashboard sessions: an opaque cookie token, stored hashed, standing for the API key it
//! was exchanged for. A session ends when it expires, is signed out or its key is revoked.

use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::api_keys::KeyOwner;
use super::schema::{api_keys::dsl as k, organizations::dsl as o, sessions::dsl as s};

pub fn insert(
    conn: &mut DbConn,
    hash: &str,
    owner: &KeyOwner,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    diesel::insert_into(s::sessions)
        .values((
            s::token_hash.eq(hash),
            s::org_id.eq(&owner.org_id),
            s::api_key_id.eq(&owner.key_id),
            s::created_at.eq(now),
            s::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    // Expired sessions are of no use to anyone; clear them as new ones are made.
    diesel::delete(s::sessions.filter(s::expires_at.le(now))).execute(conn)?;
    Ok(())
}

/// The key owner behind a live session, and when the session expires.
pub fn find_valid(conn: &mut DbConn, hash: &str, now: i64) -> Result<Option<(KeyOwner, i64)>, StoreError> {
    let row = s::sessions
        .inner_join(k::api_keys.on(k::id.eq(s::api_key_id)))
        .inner_join(o::organizations.on(o::id.eq(s::org_id)))
        .filter(s::token_hash.eq(hash))
        .filter(s::expires_at.gt(now))
        .filter(k::revoked_at.is_null())
        .select((k::id, s::org_id, o::rate_limit_per_minute, s::expires_at))
        .first::<(String, String, i32, i64)>(conn)
        .optional()?;
    Ok(row.map(|(key_id, org_id, rate_limit_per_minute, expires_at)| {
        (KeyOwner { key_id, org_id, rate_limit_per_minute }, expires_at)
    }))
}

pub fn delete(conn: &mut DbConn, hash: &str) -> Result<(), StoreError> {
    diesel::delete(s::sessions.filter(s::token_hash.eq(hash))).execute(conn)?;
    Ok(())
}
