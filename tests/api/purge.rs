//! How fast the Janitor purges: 20,000 finished events, each with a delivery and an attempt,
//! written straight into a real database, purged batch by batch as the Janitor does; 100
//! events with a pending delivery must stay. Prints rows per second (measured, not
//! asserted: these machines are shared).

use std::time::Instant;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use herald::store::{Db, DbConn, retention};

use crate::helpers::{Backend, fresh_database};

const FINISHED: usize = 20_000;
const PENDING: usize = 100;
const CHUNK: usize = 500;

fn exec(conn: &mut DbConn, sql: &str) {
    conn.batch_execute(sql).unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(200)]));
}

/// Events `from..to` of org_p, each with one delivery (`status`) and, when finished, one attempt.
fn fill(conn: &mut DbConn, from: usize, to: usize, status: &str) {
    for start in (from..to).step_by(CHUNK) {
        let end = (start + CHUNK).min(to);
        let events: Vec<String> =
            (start..end).map(|i| format!("('e{i}', 'org_p', 'bulk.item', '{{\"n\":{i}}}', 0)")).collect();
        exec(
            conn,
            &format!(
                "INSERT INTO events (id, org_id, event_type, payload, created_at) VALUES {}",
                events.join(",")
            ),
        );
        let deliveries: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "('d{i}', 'org_p', (SELECT seq FROM events WHERE org_id = 'org_p' AND id = 'e{i}'), 'ep_p', \
                     '{status}', 1, 0, 0)"
                )
            })
            .collect();
        exec(
            conn,
            &format!(
                "INSERT INTO deliveries (id, org_id, event_seq, endpoint_id, status, attempt_count, created_at, \
                 updated_at) VALUES {}",
                deliveries.join(",")
            ),
        );
        if status != "pending" {
            let attempts: Vec<String> = (start..end).map(|i| format!("('d{i}', 1, 0, 5, 200)")).collect();
            exec(
                conn,
                &format!(
                    "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code) \
                     VALUES {}",
                    attempts.join(",")
                ),
            );
        }
    }
}

async fn purge_throughput(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    let store = Db::connect(&db.url, 1).unwrap();
    store.migrate().unwrap();
    let mut conn = store.get().unwrap();
    exec(
        &mut conn,
        "INSERT INTO organizations (id, name, rate_limit_per_minute, created_at) VALUES ('org_p', 'p', 100, 0);
         INSERT INTO endpoints (id, org_id, url, event_filter, secret, signature_scheme, status, headers, \
           circuit_state, consecutive_failures, created_at, updated_at) \
         VALUES ('ep_p', 'org_p', 'https://example.com', '[\"*\"]', 's', 'standard-webhooks', 'active', '{}', \
           'closed', 0, 0, 0);",
    );
    fill(&mut conn, 0, PENDING, "pending");
    fill(&mut conn, PENDING, PENDING + FINISHED, "succeeded");

    let started = Instant::now();
    let (mut events, mut rows, mut batches) = (0, 0, 0);
    loop {
        let purged = retention::purge_events(&mut conn, "org_p", herald::ids::now_ms()).unwrap();
        batches += 1;
        events += purged.events;
        rows += purged.events + purged.deliveries + purged.attempts;
        if purged.events == 0 && batches > (FINISHED + PENDING) / retention::BATCH as usize + 1 {
            break;
        }
        if purged.events == 0 && events == FINISHED {
            break;
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{backend:?}: purged {events} events ({rows} rows with their deliveries and attempts) in {batches} \
         transactions, {took:.2} s: {:.0} rows/s",
        rows as f64 / took
    );
    assert_eq!(events, FINISHED, "every finished event was purged");
    let left: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT COUNT(*) FROM events WHERE org_id = 'org_p')",
    ))
    .get_result(&mut *conn)
    .unwrap();
    assert_eq!(left, PENDING as i64, "events with a pending delivery stay");
}

#[actix_web::test]
async fn purge_throughput_sqlite() {
    purge_throughput(Backend::Sqlite).await;
}

#[actix_web::test]
async fn purge_throughput_postgres() {
    purge_throughput(Backend::Postgres).await;
}
