//! Versioned webhooks: a type registers several versions (each with its schema), a publish
//! names its version (or gets the latest), the envelope carries it, and each endpoint gets
//! only the version it pinned (or the latest).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::delivery::text;
use crate::helpers::{TestApp, assert_error};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);

async fn register(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/event-types", &app.default_key, body.clone()).await;
    assert_eq!(r.status, 201, "{body}: {}", r.text);
    r.body
}

async fn pinned(app: &TestApp, receiver: &Receiver, events: Value, versions: Value) -> String {
    let mut body = json!({"url": receiver.url("/hook"), "events": events});
    if !versions.is_null() {
        body["versions"] = versions;
    }
    let r = app.post("/v1/endpoints", &app.default_key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    text(&r.body["id"])
}

async fn publish(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/events", &app.default_key, body.clone()).await;
    assert_eq!(r.status, 202, "{body}: {}", r.text);
    r.body
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(std::string::ToString::to_string).collect()
}

both_backends!(each_endpoint_gets_the_version_it_pinned, |app: TestApp| async move {
    let key = app.default_key.clone();
    let amount = |field: &str, kind: &str| json!({"type": "object", "required": [field], "properties": {field: {"type": kind}}});
    register(&app, json!({"name": "order.created", "schema": amount("amount", "number")})).await;
    let v2 = register(
        &app,
        json!({"name": "order.created", "version": 2, "schema": amount("amount_cents", "integer")}),
    )
    .await;
    assert_eq!(v2["latest_version"], 2);
    assert_eq!(v2["versions"].as_array().unwrap().len(), 2);
    let again = app.post("/v1/event-types", &key, json!({"name": "order.created", "version": 2})).await;
    assert_error(&again, 409, "CONFLICT");
    let listed = app.get("/v1/event-types", &key).await;
    let t = &listed.body["data"][0];
    assert_eq!(t["name"], "order.created");
    assert_eq!(t["versions"][0]["version"], 1);
    assert_eq!(t["versions"][1]["schema"]["required"], json!(["amount_cents"]));

    let (one, two, latest) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    let one_ep = pinned(&app, &one, json!(["order.*"]), json!({"order.created": 1})).await;
    pinned(&app, &two, json!(["order.*"]), json!({"order.created": 2})).await;
    pinned(&app, &latest, json!(["order.*"]), Value::Null).await;

    // A publisher migrating the type sends each version, with one correlation id.
    let old = publish(&app, json!({"type": "order.created", "version": 1, "id": "o1-v1", "correlation_id": "o1", "data": {"amount": 4.2}})).await;
    assert_eq!(old["version"], 1);
    let new = publish(&app, json!({"type": "order.created", "id": "o1-v2", "correlation_id": "o1", "data": {"amount_cents": 420}})).await;
    assert_eq!(new["version"], 2, "no version named: the latest");
    one.wait_for_ids(&ids(&["o1-v1"]), None, WAIT).await;
    two.wait_for_ids(&ids(&["o1-v2"]), None, WAIT).await;
    latest.wait_for_ids(&ids(&["o1-v2"]), None, WAIT).await;
    for r in [&one, &two, &latest] {
        r.assert_count_stays(1, Duration::from_millis(300)).await;
    }
    let envelope = one.received()[0].json();
    assert_eq!(envelope["version"], 1);
    assert_eq!(envelope["correlation_id"], "o1");
    assert_eq!(two.received()[0].json()["version"], 2);

    // Each version's own schema, and only versions that exist.
    let wrong_shape =
        app.post("/v1/events", &key, json!({"type": "order.created", "data": {"amount": 4.2}})).await;
    assert_error(&wrong_shape, 400, "VALIDATION_ERROR");
    let v1_shape = app
        .post("/v1/events", &key, json!({"type": "order.created", "version": 1, "data": {"amount_cents": 1}}))
        .await;
    assert_error(&v1_shape, 400, "VALIDATION_ERROR");
    let missing =
        app.post("/v1/events", &key, json!({"type": "order.created", "version": 3, "data": {}})).await;
    assert_error(&missing, 400, "VALIDATION_ERROR");
    assert_eq!(missing.body["issues"][0]["path"], json!(["version"]), "{}", missing.text);

    // Unpinned, the endpoint follows the latest version.
    let r = app
        .request("PATCH", &format!("/v1/endpoints/{one_ep}"), Some(&key), Some(&json!({"versions": null})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["versions"], json!({}));
    publish(&app, json!({"type": "order.created", "id": "o2-v2", "data": {"amount_cents": 7}})).await;
    one.wait_for_ids(&ids(&["o2-v2"]), None, WAIT).await;

    let bad = app
        .post(
            "/v1/endpoints",
            &key,
            json!({"url": one.url("/x"), "events": ["*"], "versions": {"order.created": 0}}),
        )
        .await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
    assert_eq!(bad.body["issues"][0]["path"], json!(["versions", "order.created"]));
});

both_backends!(types_without_versions_reach_every_unpinned_endpoint, |app: TestApp| async move {
    let receiver = Receiver::start().await;
    let pinned_two = Receiver::start().await;
    pinned(&app, &receiver, json!(["note.*"]), Value::Null).await;
    pinned(&app, &pinned_two, json!(["note.*"]), json!({"note.made": 2})).await;
    let first = publish(&app, json!({"type": "note.made", "id": "n1", "data": {}})).await;
    assert_eq!(first["version"], 1);
    publish(&app, json!({"type": "note.made", "id": "n5", "version": 5, "data": {}})).await;
    publish(&app, json!({"type": "note.made", "id": "n2", "version": 2, "data": {}})).await;
    receiver.wait_for_ids(&ids(&["n1", "n5", "n2"]), None, WAIT).await;
    pinned_two.wait_for_ids(&ids(&["n2"]), None, WAIT).await;
    pinned_two.assert_count_stays(1, Duration::from_millis(300)).await;
    let zero = app
        .post("/v1/events", &app.default_key, json!({"type": "note.made", "version": 0, "data": {}}))
        .await;
    assert_error(&zero, 400, "VALIDATION_ERROR");
});
