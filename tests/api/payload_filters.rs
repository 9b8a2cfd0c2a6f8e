//! Payload filters on endpoints and streams: exactly the matching events arrive.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::delivery::{publish_type, text};
use crate::helpers::{TestApp, assert_error};
use crate::receiver::Receiver;
use crate::sse_client::{auth, connect};

const WAIT: Duration = Duration::from_secs(10);

async fn endpoint(app: &TestApp, receiver: &Receiver, filter: Value) -> String {
    let mut body = json!({"url": receiver.url("/hook"), "events": ["order.*"]});
    if !filter.is_null() {
        body["filter"] = filter;
    }
    let r = app.post("/v1/endpoints", &app.default_key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    text(&r.body["id"])
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

both_backends!(payload_filters_deliver_exactly_the_matching_events, |app: TestApp| async move {
    let key = app.default_key.clone();
    let (big, usd_or_vip, all) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    let big_ep = endpoint(&app, &big, json!({"data.amount": {"$gte": 100}})).await;
    endpoint(&app, &usd_or_vip, json!({"$or": [{"data.currency": "USD"}, {"data.customer.vip": true}]}))
        .await;
    endpoint(&app, &all, Value::Null).await;

    let publish = |data: Value| publish_type(&app, &key, "order.created", data);
    let large_eur = publish(json!({"amount": 250, "currency": "EUR"})).await;
    let small_usd = publish(json!({"amount": 5, "currency": "USD"})).await;
    // A string where a number is asked for, and a missing path, match neither.
    let string_amount = publish(json!({"amount": "150", "currency": "GBP"})).await;
    let no_amount = publish(json!({"currency": "CHF", "customer": {"vip": true}})).await;
    let exactly_100 = publish(json!({"amount": 100.0, "customer": {"vip": false}})).await;

    let everything = set(&[&large_eur, &small_usd, &string_amount, &no_amount, &exactly_100]);
    all.wait_for_ids(&everything, None, WAIT).await;
    big.wait_for_ids(&set(&[&large_eur, &exactly_100]), None, WAIT).await;
    usd_or_vip.wait_for_ids(&set(&[&small_usd, &no_amount]), None, WAIT).await;
    big.assert_count_stays(2, Duration::from_millis(300)).await;
    usd_or_vip.assert_count_stays(2, Duration::from_millis(300)).await;

    // The endpoint shows its filter; PATCH null removes it, and then everything arrives.
    let shown = app.get(&format!("/v1/endpoints/{big_ep}"), &key).await;
    assert_eq!(shown.body["filter"], json!({"data.amount": {"$gte": 100}}));
    let cleared = app
        .request("PATCH", &format!("/v1/endpoints/{big_ep}"), Some(&key), Some(&json!({"filter": null})))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.body["filter"], Value::Null);
    let later = publish(json!({"amount": 1})).await;
    big.wait_for_ids(&set(&[&later]), None, WAIT).await;
    // PATCH without `filter` leaves it as it is.
    let kept = app
        .request(
            "PATCH",
            &format!("/v1/endpoints/{big_ep}"),
            Some(&key),
            Some(&json!({"filter": {"data.amount": 7}})),
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let renamed = app
        .request("PATCH", &format!("/v1/endpoints/{big_ep}"), Some(&key), Some(&json!({"description": "x"})))
        .await;
    assert_eq!(renamed.body["filter"], json!({"data.amount": 7}));
});

both_backends!(bad_filters_are_refused_with_the_path_of_the_fault, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let body = |filter: Value| json!({"url": receiver.url("/hook"), "events": ["*"], "filter": filter});
    let r = app.post("/v1/endpoints", &key, body(json!({"data.amount": {"$gt": [1]}}))).await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(r.body["issues"][0]["path"], json!(["filter", "data.amount", "$gt"]), "{}", r.text);
    for bad in [json!({"a": {"$near": 1}}), json!([1]), json!({"a": {"$regex": "("}}), json!({"$or": []})] {
        assert_error(&app.post("/v1/endpoints", &key, body(bad)).await, 400, "VALIDATION_ERROR");
    }
    let ep = endpoint(&app, &receiver, Value::Null).await;
    let patch = app
        .request("PATCH", &format!("/v1/endpoints/{ep}"), Some(&key), Some(&json!({"filter": {"$not": 1}})))
        .await;
    assert_error(&patch, 400, "VALIDATION_ERROR");
    assert_eq!(patch.body["issues"][0]["path"], json!(["filter", "$not"]));
    assert_eq!(
        app.get(&format!("/v1/endpoints/{ep}"), &key).await.body["filter"],
        Value::Null,
        "nothing changed"
    );
});

both_backends!(filter_test_says_which_condition_failed, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let ep = endpoint(&app, &receiver, json!({"data.currency": "EUR", "data.amount": {"$gt": 1000}})).await;
    let path = format!("/v1/endpoints/{ep}/filter-test");
    let sample = json!({"type": "order.created", "data": {"currency": "EUR", "amount": 250}});
    let r = app.post(&path, &key, json!({"payload": sample})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["matches"], false);
    assert_eq!(r.body["failed"], "data.amount $gt 1000 (it is 250)");
    let other =
        app.post(&path, &key, json!({"payload": sample, "filter": {"data.amount": {"$lte": 250}}})).await;
    assert_eq!(other.body["matches"], true, "{}", other.text);
    assert_eq!(other.body["failed"], Value::Null);
    assert_error(
        &app.post(&path, &key, json!({"payload": sample, "filter": {"x": {"$bad": 1}}})).await,
        400,
        "VALIDATION_ERROR",
    );
    let (_, other_key) = app.new_org("other", 100_000).await;
    assert_error(&app.post(&path, &other_key, json!({"payload": sample})).await, 404, "NOT_FOUND");
});

both_backends!(a_stream_takes_the_same_filter, |app: TestApp| async move {
    let key = app.default_key.clone();
    let filter = urlencode(r#"{"data.amount":{"$gte":100}}"#);
    let mut s = connect(&app, &format!("/v1/events/stream?filter={filter}"), &[auth(&key)]).await;
    assert_eq!(s.status, 200);
    let publish = |n: i64| {
        let app = &app;
        let key = key.clone();
        async move {
            let r =
                app.post("/v1/events", &key, json!({"type": "order.created", "data": {"amount": n}})).await;
            assert_eq!(r.status, 202, "{}", r.text);
            r.body["seq"].as_i64().unwrap()
        }
    };
    publish(5).await;
    let big = publish(500).await;
    publish(99).await;
    let bigger = publish(1000).await;
    let got: Vec<i64> = s.take_events(2, WAIT).await.iter().map(|e| e.0).collect();
    assert_eq!(got, [big, bigger]);
    assert!(s.next_event(Duration::from_millis(300)).await.is_none());
    // A resume replays from the store through the same filter.
    let mut resumed = connect(
        &app,
        &format!("/v1/events/stream?filter={filter}"),
        &[auth(&key), ("Last-Event-ID", "0".into())],
    )
    .await;
    let replayed: Vec<i64> = resumed.take_events(2, WAIT).await.iter().map(|e| e.0).collect();
    assert_eq!(replayed, [big, bigger]);
    let bad = app.get(&format!("/v1/events/stream?filter={}", urlencode("{\"a\":{\"$x\":1}}")), &key).await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
    assert_error(&app.get("/v1/events/stream?filter=%7Bnot", &key).await, 400, "VALIDATION_ERROR");
});

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
