use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::event_type_versions::dsl as v;
use super::schema::event_types::dsl as t;

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

/// One registered version of a type, with its schema (JSON text).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::event_type_versions)]
pub struct TypeVersion {
    pub type_id: String,
    pub version: i32,
    pub json_schema: Option<String>,
    pub created_at: i64,
}

/// Registers `version` of a type: the type itself when it is new (with `et`'s name and
/// description), the version beside the others when it is not. A version registered
/// before is a conflict. Answers the type.
pub fn register(conn: &mut DbConn, et: &EventType, version: i32) -> Result<EventType, StoreError> {
    super::write_txn(conn, |c| {
        let existing = find_by_name(c, &et.org_id, &et.name)?;
        let stored = if let Some(found) = existing {
            found
        } else {
            diesel::insert_into(t::event_types).values(et).execute(c).map_err(|e| {
                super::conflict_if_taken(e, || {
                    format!("event type {:?} was registered meanwhile; try again", et.name)
                })
            })?;
            et.clone()
        };
        let row = TypeVersion {
            type_id: stored.id.clone(),
            version,
            json_schema: et.json_schema.clone(),
            created_at: et.created_at,
        };
        diesel::insert_into(v::event_type_versions).values(&row).execute(c).map_err(|e| {
            super::conflict_if_taken(e, || {
                format!("version {version} of event type {:?} is already registered", et.name)
            })
        })?;
        Ok(stored)
    })
}

/// The versions of these types, oldest first.
pub fn versions_of(conn: &mut DbConn, type_ids: &[String]) -> Result<Vec<TypeVersion>, StoreError> {
    if type_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(v::event_type_versions
        .filter(v::type_id.eq_any(type_ids))
        .order((v::type_id, v::version))
        .select(TypeVersion::as_select())
        .load(conn)?)
}

/// A type's id and registered versions, by name; `None` when it is not registered.
pub fn versions_by_name(
    conn: &mut DbConn,
    org_id: &str,
    name: &str,
) -> Result<Option<(String, Vec<TypeVersion>)>, StoreError> {
    let Some(found) = find_by_name(conn, org_id, name)? else { return Ok(None) };
    let versions = versions_of(conn, std::slice::from_ref(&found.id))?;
    Ok(Some((found.id, versions)))
}

/// One page, newest first: `limit` rows after the cursor id (plus one to know if more exist).
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    range: super::TimeRange,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<EventType>, StoreError> {
    let mut q = t::event_types.filter(t::org_id.eq(org_id)).into_boxed();
    q = super::within!(q, t::created_at, range);
    if let Some(c) = before_id {
        q = q.filter(t::id.lt(c.to_string()));
    }
    Ok(q.order(t::id.desc()).limit(limit).select(EventType::as_select()).load(conn)?)
}

pub fn find_by_name(conn: &mut DbConn, org_id: &str, name: &str) -> Result<Option<EventType>, StoreError> {
    Ok(t::event_types
        .filter(t::org_id.eq(org_id))
        .filter(t::name.eq(name))
        .select(EventType::as_select())
        .first(conn)
        .optional()?)
}
