//! List filters: `from`/`to` on every list with a time, several `status`es on delivery
//! lists, `outcome` on receipts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::delivery::{only_delivery, publish_type, subscribe, text, wait_delivery};
use crate::helpers::{TestApp, assert_error};
use crate::inbound::{create_source, deliver, hmac_sha256};
use crate::receiver::{Behaviour, Receiver};

const WAIT: Duration = Duration::from_secs(10);
const HOUR_MS: i64 = 3_600_000;

fn at(offset_ms: i64) -> String {
    herald::timefmt::rfc3339(herald::ids::now_ms() + offset_ms)
}

/// Today's date (UTC), as a date.
fn today() -> String {
    at(0)[..10].to_string()
}

/// The ids a list answers (one page of up to 100).
async fn ids(app: &TestApp, key: &str, path: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = app.get(&format!("{path}{sep}limit=100"), key).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body["data"].as_array().unwrap().iter().map(|row| text(&row["id"])).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

both_backends!(delivery_lists_filter_by_several_statuses_and_by_time, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &key, &receiver, json!(["*"])).await;
    receiver.push_once(Behaviour::status(400));
    let first = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let failed = only_delivery(&app, &key, &first).await;
    wait_delivery(&app, &key, &failed, "failed", WAIT).await;
    let second = publish_type(&app, &key, "order.created", json!({"n": 2})).await;
    let succeeded = only_delivery(&app, &key, &second).await;
    wait_delivery(&app, &key, &succeeded, "succeeded", WAIT).await;

    let log = format!("/v1/endpoints/{endpoint}/deliveries");
    assert_eq!(ids(&app, &key, &format!("{log}?status=failed")).await, std::slice::from_ref(&failed));
    assert_eq!(ids(&app, &key, &format!("{log}?status=succeeded")).await, std::slice::from_ref(&succeeded));
    let both = sorted(vec![failed.clone(), succeeded.clone()]);
    assert_eq!(sorted(ids(&app, &key, &format!("{log}?status=failed,succeeded")).await), both);
    assert_eq!(sorted(ids(&app, &key, &format!("{log}?status=succeeded,%20failed")).await), both);
    assert!(ids(&app, &key, &format!("{log}?status=pending,dead")).await.is_empty());
    assert_error(&app.get(&format!("{log}?status=failed,lost"), &key).await, 400, "VALIDATION_ERROR");

    // Time: a range around now holds both, one in the future or the past none; a date as
    // `to` takes in its whole day.
    let around = format!("{log}?from={}&to={}", at(-HOUR_MS), at(HOUR_MS));
    assert_eq!(sorted(ids(&app, &key, &around).await), both);
    assert!(ids(&app, &key, &format!("{log}?from={}", at(HOUR_MS))).await.is_empty());
    assert!(ids(&app, &key, &format!("{log}?to={}", at(-HOUR_MS))).await.is_empty());
    assert_eq!(sorted(ids(&app, &key, &format!("{log}?from={0}&to={0}", today())).await), both);
    assert_eq!(ids(&app, &key, &format!("{log}?status=failed&to={}", today())).await, [failed]);
    let backwards = app.get(&format!("{log}?from={}&to={}", at(HOUR_MS), at(-HOUR_MS)), &key).await;
    assert_error(&backwards, 400, "VALIDATION_ERROR");
    assert_error(&app.get(&format!("{log}?from=yesterday"), &key).await, 400, "VALIDATION_ERROR");

    // Dead letters take the range too (and their status is their own).
    assert!(ids(&app, &key, &format!("/v1/dead-letters?from={}", at(-HOUR_MS))).await.is_empty());
});

both_backends!(every_list_with_a_time_takes_from_and_to, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &key, &receiver, json!(["thing.*"])).await;
    let r = app.post("/v1/event-types", &key, json!({"name": "thing.made"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let source = create_source(&app, "hmac-sha256", "list-secret-1").await;
    let event = publish_type(&app, &key, "thing.made", json!({})).await;

    let future = format!("from={}", at(HOUR_MS));
    let this_day = format!("from={0}&to={0}", today());
    for (path, id) in [
        ("/v1/endpoints", endpoint.as_str()),
        ("/v1/sources", source.as_str()),
        ("/v1/events", event.as_str()),
    ] {
        assert!(ids(&app, &key, &format!("{path}?{this_day}")).await.contains(&id.to_string()), "{path}");
        assert!(ids(&app, &key, &format!("{path}?{future}")).await.is_empty(), "{path}");
    }
    for path in ["/v1/event-types", "/v1/api-keys"] {
        assert!(!ids(&app, &key, &format!("{path}?{this_day}")).await.is_empty(), "{path}");
        assert!(ids(&app, &key, &format!("{path}?{future}")).await.is_empty(), "{path}");
    }
    assert_error(&app.get("/v1/sources?to=not-a-time", &key).await, 400, "VALIDATION_ERROR");
});

both_backends!(receipts_filter_by_outcome, |app: TestApp| async move {
    let key = app.default_key.clone();
    let secret = "outcome-secret-1";
    let source = create_source(&app, "hmac-sha256", secret).await;
    let t = crate::inbound::now_s();
    let send = |body: &'static str, signature: String| {
        let app = &app;
        let source = source.clone();
        async move {
            let headers = [
                ("X-Webhook-Signature", signature),
                ("X-Webhook-Timestamp", t.to_string()),
                ("X-Webhook-Id", "evt-outcome-1".to_string()),
            ];
            deliver(app, &source, &headers, body).await
        }
    };
    let body = r#"{"type":"thing.made"}"#;
    let good =
        format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes())));
    assert_eq!(send(body, good.clone()).await.status, 200);
    let again = send(body, good).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["duplicate"], true, "{}", again.text);
    assert_eq!(send(body, "sha256=00".into()).await.status, 401);

    let receipts = |q: &'static str| {
        let app = &app;
        let key = key.clone();
        let source = source.clone();
        async move {
            let r = app.get(&format!("/v1/sources/{source}/receipts?{q}"), &key).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r.body["data"].as_array().unwrap().clone()
        }
    };
    let kinds = |rows: &[Value]| -> Vec<(bool, bool)> {
        let mut v: Vec<(bool, bool)> = rows
            .iter()
            .map(|r| (r["verified"].as_bool().unwrap(), r["duplicate"].as_bool().unwrap()))
            .collect();
        v.sort_unstable();
        v
    };
    let (accepted, duplicate, rejected) = ((true, false), (true, true), (false, false));
    assert_eq!(kinds(&receipts("outcome=accepted").await), [accepted]);
    assert_eq!(kinds(&receipts("outcome=duplicate").await), [duplicate]);
    assert_eq!(kinds(&receipts("outcome=rejected").await), [rejected]);
    assert_eq!(kinds(&receipts("outcome=accepted,duplicate").await), [accepted, duplicate]);
    assert_eq!(kinds(&receipts("outcome=accepted,rejected").await), [rejected, accepted]);
    assert_eq!(kinds(&receipts("outcome=duplicate,rejected").await), [rejected, duplicate]);
    assert_eq!(receipts("").await.len(), 3);
    assert!(receipts("outcome=rejected&to=2000-01-01").await.is_empty());
    let bad = app.get(&format!("/v1/sources/{source}/receipts?outcome=lost"), &key).await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
});
