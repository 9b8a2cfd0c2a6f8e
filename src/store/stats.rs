//! Aggregates for the dashboard's charts, computed by the database over the attempts of
//! one organisation in a time window (so every node of a cluster answers the same).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConn;
use super::StoreError;

/// Upper bounds (ms) of the latency histogram's buckets; the last bucket is unbounded.
pub const LATENCY_BUCKETS_MS: [i64; 7] = [10, 50, 100, 250, 500, 1000, 5000];

#[derive(Debug, QueryableByName)]
pub struct MinuteRow {
    /// Unix minute (ms / 60 000).
    #[diesel(sql_type = BigInt)]
    pub minute: i64,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = BigInt)]
    pub http_error: i64,
    #[diesel(sql_type = BigInt)]
    pub transport_error: i64,
    #[diesel(sql_type = BigInt)]
    pub total_ms: i64,
    #[diesel(sql_type = BigInt)]
    pub max_ms: i64,
}

#[derive(Debug, QueryableByName)]
pub struct BucketRow {
    /// Index into `LATENCY_BUCKETS_MS`, or its length for the unbounded bucket.
    #[diesel(sql_type = BigInt)]
    pub bucket: i64,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

const FROM: &str = "FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
                    WHERE a.started_at >= {since} AND d.org_id = {org}";

fn per_minute_sql() -> String {
    format!(
        "SELECT CAST(a.started_at / 60000 AS BIGINT) AS minute, \
         CAST(SUM(CASE WHEN a.status_code >= 200 AND a.status_code < 300 THEN 1 ELSE 0 END) AS BIGINT) AS succeeded, \
         CAST(SUM(CASE WHEN a.status_code IS NOT NULL AND (a.status_code < 200 OR a.status_code >= 300) \
              THEN 1 ELSE 0 END) AS BIGINT) AS http_error, \
         CAST(SUM(CASE WHEN a.status_code IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS transport_error, \
         CAST(SUM(a.duration_ms) AS BIGINT) AS total_ms, CAST(MAX(a.duration_ms) AS BIGINT) AS max_ms \
         {FROM} GROUP BY 1 ORDER BY 1"
    )
}

fn histogram_sql() -> String {
    let cases: String = LATENCY_BUCKETS_MS
        .iter()
        .enumerate()
        .map(|(i, le)| format!("WHEN a.duration_ms <= {le} THEN {i} "))
        .collect();
    format!(
        "SELECT CAST(CASE {cases}ELSE {} END AS BIGINT) AS bucket, CAST(COUNT(*) AS BIGINT) AS count \
         {FROM} GROUP BY 1 ORDER BY 1",
        LATENCY_BUCKETS_MS.len()
    )
}

fn load<R: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static>(
    conn: &mut DbConn,
    sql: &str,
    org_id: &str,
    since: i64,
) -> Result<Vec<R>, StoreError> {
    Ok(match conn {
        DbConn::Pg(pg) => diesel::sql_query(sql.replace("{since}", "$1").replace("{org}", "$2"))
            .bind::<BigInt, _>(since)
            .bind::<Text, _>(org_id)
            .load(pg)?,
        DbConn::Sqlite(lite) => diesel::sql_query(sql.replace("{since}", "?").replace("{org}", "?"))
            .bind::<BigInt, _>(since)
            .bind::<Text, _>(org_id)
            .load(lite)?,
    })
}

/// Attempts per minute by outcome, and the latency histogram, since `since` (unix ms).
pub fn attempts_since(
    conn: &mut DbConn,
    org_id: &str,
    since: i64,
) -> Result<(Vec<MinuteRow>, Vec<BucketRow>), StoreError> {
    let minutes = load(conn, &per_minute_sql(), org_id, since)?;
    let buckets = load(conn, &histogram_sql(), org_id, since)?;
    Ok((minutes, buckets))
}
