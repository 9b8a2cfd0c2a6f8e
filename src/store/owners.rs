//! Endpoint ownership in a cluster (PostgreSQL): one row per endpoint naming the node whose
//! actor sends its deliveries, until `expires_at`. The owner renews its rows while it lives;
//! another node may take a row only once it has expired, so two nodes never own one
//! endpoint at once (up to the clock difference between them). A single SQLite node owns
//! every endpoint and keeps no rows.

use diesel::prelude::*;

use super::DbConn;
use super::StoreError;
use super::schema::endpoint_owners::dsl as o;
use super::schema::endpoints::dsl as e;
use super::schema::nodes::dsl as n;
use crate::domain::EndpointStatus;

/// Nodes that have said they are alive since `since`, by id.
pub fn live_nodes(conn: &mut DbConn, since: i64) -> Result<Vec<String>, StoreError> {
    Ok(n::nodes.filter(n::last_seen.ge(since)).select(n::id).load(conn)?)
}

/// Every endpoint that may have work to send: active and not deleted.
pub fn active_endpoints(conn: &mut DbConn) -> Result<Vec<String>, StoreError> {
    Ok(e::endpoints
        .filter(e::deleted_at.is_null())
        .filter(e::status.eq(EndpointStatus::Active))
        .select(e::id)
        .load(conn)?)
}

/// Whether some active endpoint has no owner now (new, re-enabled, or its owner died):
/// the nodes then renew at once rather than at their next round.
pub fn any_unowned(conn: &mut DbConn, now: i64) -> Result<bool, StoreError> {
    let owned_now = o::endpoint_owners.filter(o::expires_at.gt(now)).select(o::endpoint_id);
    Ok(diesel::select(diesel::dsl::exists(
        e::endpoints
            .filter(e::deleted_at.is_null())
            .filter(e::status.eq(EndpointStatus::Active))
            .filter(e::id.ne_all(owned_now)),
    ))
    .get_result(conn)?)
}

/// Endpoints whose row names `owner`, expired or not.
pub fn rows_of(conn: &mut DbConn, owner: &str) -> Result<Vec<String>, StoreError> {
    Ok(o::endpoint_owners.filter(o::owner.eq(owner)).select(o::endpoint_id).load(conn)?)
}

/// Takes or renews `ids` for `owner` until `expires_at`: rows it already has, rows nobody
/// has, and rows whose owner let them expire. Answers the ids it now owns.
pub fn acquire(
    conn: &mut DbConn,
    owner: &str,
    ids: &[String],
    now: i64,
    expires_at: i64,
) -> Result<Vec<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Owned {
        #[diesel(sql_type = diesel::sql_types::Text)]
        endpoint_id: String,
    }
    use diesel::sql_types::{Array, BigInt, Text};
    let DbConn::Pg(pg) = conn else {
        return Ok(ids.to_vec());
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // In id order, so two nodes acquiring overlapping sets lock rows in the same order.
    let mut ids = ids.to_vec();
    ids.sort();
    let rows: Vec<Owned> = diesel::sql_query(
        "INSERT INTO endpoint_owners (endpoint_id, owner, expires_at) \
         SELECT id, $2, $3 FROM unnest($1) AS v(id) ORDER BY id \
         ON CONFLICT (endpoint_id) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
         WHERE endpoint_owners.owner = EXCLUDED.owner OR endpoint_owners.expires_at < $4 \
         RETURNING endpoint_id",
    )
    .bind::<Array<Text>, _>(ids)
    .bind::<Text, _>(owner)
    .bind::<BigInt, _>(expires_at)
    .bind::<BigInt, _>(now)
    .load(pg)?;
    Ok(rows.into_iter().map(|r| r.endpoint_id).collect())
}

/// Gives an endpoint up (its actor has finished): the next owner need not wait for expiry.
pub fn give_up(conn: &mut DbConn, owner: &str, endpoint_id: &str) -> Result<(), StoreError> {
    diesel::delete(o::endpoint_owners.filter(o::endpoint_id.eq(endpoint_id)).filter(o::owner.eq(owner)))
        .execute(conn)?;
    Ok(())
}

/// Gives up every endpoint (clean shutdown).
pub fn give_up_all(conn: &mut DbConn, owner: &str) -> Result<(), StoreError> {
    diesel::delete(o::endpoint_owners.filter(o::owner.eq(owner))).execute(conn)?;
    Ok(())
}

/// The node that owns the endpoint now, if any.
pub fn owner_of(conn: &mut DbConn, endpoint_id: &str, now: i64) -> Result<Option<String>, StoreError> {
    Ok(o::endpoint_owners
        .filter(o::endpoint_id.eq(endpoint_id))
        .filter(o::expires_at.gt(now))
        .select(o::owner)
        .first(conn)
        .optional()?)
}
