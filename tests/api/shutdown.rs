//! Section 8: a graceful stop writes pending results and gives its claims back, so the
//! next node (here: the restart) takes the work over at once rather than after the lease.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, fresh_database, spawn_app_on, test_settings};
use crate::receiver::{Behaviour, Receiver};

async fn a_graceful_stop_hands_work_over_at_once(backend: Backend) {
    let Some(database) = fresh_database(backend) else { return };
    let mut settings = test_settings();
    settings.database.url = database.url.clone();
    // Long enough that only a release, not an expiry, can explain a prompt hand-over.
    settings.delivery.lease = Duration::from_secs(60);
    settings.delivery.timeout = Duration::from_secs(10);
    let app = herald::Application::build(settings).await.unwrap();
    let (port, handle) = (app.port(), app.handle());
    let key = app.bootstrap_key.clone().unwrap();
    let running = actix_web::rt::spawn(app.run_until_stopped());
    let client = awc::Client::default();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");

    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(Duration::from_secs(3)));
    let ep = client
        .post(url("/v1/endpoints"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send_json(&json!({"url": receiver.url("/hook"), "events": ["*"], "max_in_flight": 1}))
        .await
        .unwrap();
    assert_eq!(ep.status(), 201);
    let mut accepted = BTreeSet::new();
    for i in 0..4 {
        let mut r = client
            .post(url("/v1/events"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send_json(&json!({"type": "order.created", "data": {"n": i}}))
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        accepted.insert(body["id"].as_str().unwrap().to_string());
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;

    handle.stop(true).await;
    running.await.unwrap().unwrap();
    receiver.set_default(Behaviour::ok());
    let restarted_at = Instant::now();
    let _second = spawn_app_on(database, key, |s| s.delivery.lease = Duration::from_secs(60)).await;

    // Within 10 s although the lease is 60 s: only a release explains that.
    receiver.wait_for_ids(&accepted, Some(restarted_at), Duration::from_secs(10)).await;
}

#[actix_web::test]
async fn graceful_stop_releases_claims_sqlite() {
    a_graceful_stop_hands_work_over_at_once(Backend::Sqlite).await;
}

#[actix_web::test]
async fn graceful_stop_releases_claims_postgres() {
    a_graceful_stop_hands_work_over_at_once(Backend::Postgres).await;
}
