//! Short-lived stream tokens: stored hashed, bound to an organisation, a type filter and
//! the API key that made them (a revoked key's tokens stop working with it).

use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::api_keys::dsl as k;
use super::schema::stream_tokens::dsl as t;

pub fn insert(
    conn: &mut DbConn,
    hash: &str,
    org_id: &str,
    api_key_id: &str,
    types: Option<&str>,
    expires_at: i64,
) -> Result<(), StoreError> {
    diesel::insert_into(t::stream_tokens)
        .values((
            t::token_hash.eq(hash),
            t::org_id.eq(org_id),
            t::api_key_id.eq(api_key_id),
            t::types.eq(types),
            t::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    // Expired tokens are of no use to anyone; clear them as new ones are made.
    diesel::delete(t::stream_tokens.filter(t::expires_at.lt(expires_at - 24 * 60 * 60 * 1000)))
        .execute(conn)?;
    Ok(())
}

/// (organisation, types JSON) of a token that has not expired and whose key is not revoked.
pub fn find_valid(
    conn: &mut DbConn,
    hash: &str,
    now: i64,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let revoked = k::api_keys.filter(k::revoked_at.is_not_null()).select(k::id.nullable());
    Ok(t::stream_tokens
        .filter(t::token_hash.eq(hash))
        .filter(t::expires_at.gt(now))
        .filter(t::api_key_id.is_null().or(t::api_key_id.ne_all(revoked)))
        .select((t::org_id, t::types))
        .first(conn)
        .optional()?)
}
