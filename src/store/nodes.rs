//! Node heartbeats: which herald processes share this database and are alive.

use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::nodes::dsl as n;

/// Records that `id` is alive now; forgets nodes silent for a day.
pub fn heartbeat(conn: &mut DbConn, id: &str, started_at: i64, now: i64) -> Result<(), StoreError> {
    let updated = diesel::update(n::nodes.find(id)).set(n::last_seen.eq(now)).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(n::nodes)
            .values((n::id.eq(id), n::started_at.eq(started_at), n::last_seen.eq(now)))
            .execute(conn)?;
        diesel::delete(n::nodes.filter(n::last_seen.lt(now - 24 * 60 * 60 * 1000))).execute(conn)?;
    }
    Ok(())
}

/// Nodes seen since `since`.
pub fn alive(conn: &mut DbConn, since: i64) -> Result<i64, StoreError> {
    Ok(n::nodes.filter(n::last_seen.ge(since)).count().get_result(conn)?)
}

/// A node leaving cleanly says so.
pub fn leave(conn: &mut DbConn, id: &str) -> Result<(), StoreError> {
    diesel::delete(n::nodes.find(id)).execute(conn)?;
    Ok(())
}
