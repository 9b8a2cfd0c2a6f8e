use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::{api_keys::dsl as k, organizations::dsl as o};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::api_keys)]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// `last_used_at` is written at most this often per key.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// What a valid key resolves to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key_id: String,
    pub org_id: String,
    pub rate_limit_per_minute: i32,
}

/// A key just made, with the key itself: the store keeps only its hash, so this is the one
/// time anyone sees it.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub row: ApiKey,
    pub key: String,
}

/// Makes and stores a new key for an organisation.
pub fn issue(conn: &mut DbConn, org_id: &str) -> Result<IssuedKey, StoreError> {
    let key = crate::ids::secret_token::<32>("hk");
    let row = ApiKey {
        id: crate::ids::new_id("key"),
        org_id: org_id.to_string(),
        prefix: key[..11].to_string(),
        key_hash: crate::ids::sha256_hex(key.as_bytes()),
        created_at: crate::ids::now_ms(),
        revoked_at: None,
        last_used_at: None,
    };
    diesel::insert_into(k::api_keys).values(&row).execute(conn)?;
    Ok(IssuedKey { row, key })
}

/// The live key with this hash: its owner, and when it was last noted as used.
pub fn find_owner(conn: &mut DbConn, key_hash: &str) -> Result<Option<(KeyOwner, Option<i64>)>, StoreError> {
    let row = k::api_keys
        .inner_join(o::organizations)
        .filter(k::key_hash.eq(key_hash))
        .filter(k::revoked_at.is_null())
        .select((k::id, k::org_id, o::rate_limit_per_minute, k::last_used_at))
        .first::<(String, String, i32, Option<i64>)>(conn)
        .optional()?;
    Ok(row.map(|(key_id, org_id, rate_limit_per_minute, last_used_at)| {
        (KeyOwner { key_id, org_id, rate_limit_per_minute }, last_used_at)
    }))
}

/// Whether `last_used_at` is old enough to be written again.
pub fn stale_use(last_used_at: Option<i64>, now: i64) -> bool {
    last_used_at.is_none_or(|t| t < now - LAST_USED_EVERY_MS)
}

/// An organisation's live keys, newest first.
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    range: super::TimeRange,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiKey>, StoreError> {
    let mut q = k::api_keys.filter(k::org_id.eq(org_id)).filter(k::revoked_at.is_null()).into_boxed();
    q = super::within!(q, k::created_at, range);
    if let Some(c) = before_id {
        q = q.filter(k::id.lt(c.to_string()));
    }
    Ok(q.order(k::id.desc()).limit(limit).select(ApiKey::as_select()).load(conn)?)
}

/// Revokes a live key of `org_id` (it and its dashboard sessions stop working); false when
/// there is no such live key.
pub fn revoke(conn: &mut DbConn, org_id: &str, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        k::api_keys.filter(k::id.eq(id)).filter(k::org_id.eq(org_id)).filter(k::revoked_at.is_null()),
    )
    .set(k::revoked_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes a live key by id alone (the command line); its organisation, if it was live.
pub fn revoke_any(conn: &mut DbConn, id: &str, now: i64) -> Result<Option<String>, StoreError> {
    super::write_txn(conn, |c| {
        let org: Option<String> = k::api_keys
            .filter(k::id.eq(id))
            .filter(k::revoked_at.is_null())
            .select(k::org_id)
            .first(c)
            .optional()?;
        match org {
            Some(org) => Ok(revoke(c, &org, id, now)?.then_some(org)),
            None => Ok(None),
        }
    })
}

/// Notes that a key was used, at most once a minute (a conditional write).
pub fn touch(conn: &mut DbConn, id: &str, now: i64) -> Result<(), StoreError> {
    diesel::update(
        k::api_keys
            .filter(k::id.eq(id))
            .filter(k::last_used_at.is_null().or(k::last_used_at.lt(now - LAST_USED_EVERY_MS))),
    )
    .set(k::last_used_at.eq(now))
    .execute(conn)?;
    Ok(())
}
