use diesel::prelude::*;

use super::DbConn;
use super::schema::organizations::dsl as o;
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::organizations)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub rate_limit_per_minute: i32,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConn, org: &Org) -> Result<(), ApiError> {
    diesel::insert_into(o::organizations).values(org).execute(conn).map_err(|e| {
        if super::is_unique_violation(&e) {
            ApiError::conflict(format!("an organisation named {:?} already exists", org.name))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Org>, ApiError> {
    Ok(o::organizations.find(id).select(Org::as_select()).first(conn).optional()?)
}

pub fn find_by_name(conn: &mut DbConn, name: &str) -> Result<Option<Org>, ApiError> {
    Ok(o::organizations.filter(o::name.eq(name)).select(Org::as_select()).first(conn).optional()?)
}

pub fn count(conn: &mut DbConn) -> Result<i64, ApiError> {
    Ok(o::organizations.count().get_result(conn)?)
}
