use diesel::prelude::*;

use super::DbConn;
use super::schema::{api_keys::dsl as k, organizations::dsl as o};
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::api_keys)]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What a valid key resolves to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key_id: String,
    pub org_id: String,
    pub rate_limit_per_minute: i32,
}

pub fn insert(conn: &mut DbConn, key: &ApiKey) -> Result<(), ApiError> {
    diesel::insert_into(k::api_keys).values(key).execute(conn)?;
    Ok(())
}

pub fn find_owner(conn: &mut DbConn, key_hash: &str) -> Result<Option<KeyOwner>, ApiError> {
    let row = k::api_keys
        .inner_join(o::organizations)
        .filter(k::key_hash.eq(key_hash))
        .filter(k::revoked_at.is_null())
        .select((k::id, k::org_id, o::rate_limit_per_minute))
        .first::<(String, String, i32)>(conn)
        .optional()?;
    Ok(row.map(|(key_id, org_id, rate_limit_per_minute)| KeyOwner { key_id, org_id, rate_limit_per_minute }))
}
