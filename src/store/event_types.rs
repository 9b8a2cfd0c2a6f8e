use diesel::prelude::*;

use super::DbConn;
use super::schema::event_types::dsl as t;
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::event_types)]
pub struct EventType {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: Option<String>,
    pub json_schema: Option<String>,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConn, et: &EventType) -> Result<(), ApiError> {
    diesel::insert_into(t::event_types).values(et).execute(conn).map_err(|e| {
        if super::is_unique_violation(&e) {
            ApiError::conflict(format!("event type {:?} is already registered", et.name))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// One page, newest first: `limit` rows after the cursor id (plus one to know if more exist).
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    range: super::TimeRange,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<EventType>, ApiError> {
    let mut q = t::event_types.filter(t::org_id.eq(org_id)).into_boxed();
    q = super::within!(q, t::created_at, range);
    if let Some(c) = before_id {
        q = q.filter(t::id.lt(c.to_string()));
    }
    Ok(q.order(t::id.desc()).limit(limit).select(EventType::as_select()).load(conn)?)
}

pub fn find_by_name(conn: &mut DbConn, org_id: &str, name: &str) -> Result<Option<EventType>, ApiError> {
    Ok(t::event_types
        .filter(t::org_id.eq(org_id))
        .filter(t::name.eq(name))
        .select(EventType::as_select())
        .first(conn)
        .optional()?)
}
