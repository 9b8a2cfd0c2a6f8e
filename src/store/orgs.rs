use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::organizations::dsl as o;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::organizations)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub rate_limit_per_minute: i32,
    pub created_at: i64,
    /// Overrides of `limits.max_endpoints` / `limits.max_streams` / `retention.events`.
    pub max_endpoints: Option<i32>,
    pub max_streams: Option<i32>,
    pub retention_events_ms: Option<i64>,
    pub purged_through_seq: i64,
}

impl Org {
    pub fn new(id: String, name: String, rate_limit_per_minute: i32, created_at: i64) -> Self {
        Self {
            id,
            name,
            rate_limit_per_minute,
            created_at,
            max_endpoints: None,
            max_streams: None,
            retention_events_ms: None,
            purged_through_seq: 0,
        }
    }
}

/// A quota in force: the organisation's own (`max_endpoints`, `max_streams`), or the
/// setting's.
pub fn quota(own: Option<i32>, setting: u32) -> u32 {
    own.map_or(setting, |n| n.max(0) as u32)
}

/// An admin's change to an organisation: each `Some` column is written.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = super::schema::organizations)]
pub struct OrgChanges {
    pub rate_limit_per_minute: Option<i32>,
    pub max_endpoints: Option<i32>,
    pub max_streams: Option<i32>,
    pub retention_events_ms: Option<i64>,
}

/// Applies an admin's change in one statement; the organisation as it now stands.
pub fn update(conn: &mut DbConn, id: &str, changes: &OrgChanges) -> Result<Org, StoreError> {
    let nothing = changes.rate_limit_per_minute.is_none()
        && changes.max_endpoints.is_none()
        && changes.max_streams.is_none()
        && changes.retention_events_ms.is_none();
    super::write_txn(conn, |c| {
        if !nothing {
            let n = diesel::update(o::organizations.find(id)).set(changes).execute(c)?;
            if n == 0 {
                return Err(StoreError::NotFound("Organisation"));
            }
        }
        find(c, id)?.ok_or(StoreError::NotFound("Organisation"))
    })
}

pub fn insert(conn: &mut DbConn, org: &Org) -> Result<(), StoreError> {
    diesel::insert_into(o::organizations).values(org).execute(conn).map_err(|e| {
        super::conflict_if_taken(e, || format!("an organisation named {:?} already exists", org.name))
    })?;
    Ok(())
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Org>, StoreError> {
    Ok(o::organizations.find(id).select(Org::as_select()).first(conn).optional()?)
}

pub fn find_by_name(conn: &mut DbConn, name: &str) -> Result<Option<Org>, StoreError> {
    Ok(o::organizations.filter(o::name.eq(name)).select(Org::as_select()).first(conn).optional()?)
}

pub fn count(conn: &mut DbConn) -> Result<i64, StoreError> {
    Ok(o::organizations.count().get_result(conn)?)
}
