//! Section 5 (outgoing webhooks) end to end: real herald, real receivers over HTTP.
//! Signatures are checked with code written here, independently of herald's own.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, Reply, TestApp, assert_error, fresh_database, read_reply, spawn_app_on, spawn_crashable_app,
    test_settings,
};
use crate::receiver::{Behaviour, Received, Receiver};
use crate::{both_backends, both_backends_with};

/// Upper bound for anything that should happen within milliseconds (test schedule 10/20/40 ms).
const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched.
const QUIET: Duration = Duration::from_millis(300);

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

pub(crate) async fn sleep(d: Duration) {
    actix_web::rt::time::sleep(d).await;
}

pub(crate) fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}")).to_string()
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// RFC 3339 time `ago` before now.
fn rfc3339_ago(ago: Duration) -> String {
    herald::timefmt::rfc3339(herald::ids::now_ms() - ago.as_millis() as i64)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn create_endpoint(app: &TestApp, key: &str, body: Value) -> Value {
    let r = app.post("/v1/endpoints", key, body.clone()).await;
    assert_eq!(r.status, 201, "POST /v1/endpoints {body}: {}", r.text);
    r.body
}

/// An endpoint for `events` pointing at `receiver` (path `/hook`); its id.
pub(crate) async fn subscribe(app: &TestApp, key: &str, receiver: &Receiver, events: Value) -> String {
    let ep = create_endpoint(app, key, json!({"url": receiver.url("/hook"), "events": events})).await;
    text(&ep["id"])
}

pub(crate) async fn publish(app: &TestApp, key: &str, body: Value) -> Value {
    let r = app.post("/v1/events", key, body.clone()).await;
    assert_eq!(r.status, 202, "POST /v1/events {body}: {}", r.text);
    r.body
}

pub(crate) async fn publish_type(app: &TestApp, key: &str, event_type: &str, data: Value) -> String {
    text(&publish(app, key, json!({"type": event_type, "data": data})).await["id"])
}

pub(crate) async fn get_ok(app: &TestApp, key: &str, path: &str) -> Value {
    let r = app.get(path, key).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body
}

async fn post_status(app: &TestApp, key: &str, path: &str, body: Value, status: u16) -> Value {
    let r = app.post(path, key, body.clone()).await;
    assert_eq!(r.status.as_u16(), status, "POST {path} {body}: {}", r.text);
    r.body
}

/// The ids of an event's deliveries (created with the event, in the same transaction).
async fn delivery_ids(app: &TestApp, key: &str, event_id: &str) -> Vec<String> {
    let event = get_ok(app, key, &format!("/v1/events/{event_id}")).await;
    event["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("event without a deliveries list: {event}"))
        .iter()
        .map(|d| text(&d["id"]))
        .collect()
}

pub(crate) async fn only_delivery(app: &TestApp, key: &str, event_id: &str) -> String {
    let ids = delivery_ids(app, key, event_id).await;
    assert_eq!(ids.len(), 1, "event {event_id} should have exactly one delivery: {ids:?}");
    ids.into_iter().next().unwrap()
}

/// Polls `GET /v1/deliveries/{id}` until its status is `status`; the delivery.
pub(crate) async fn wait_delivery(
    app: &TestApp,
    key: &str,
    id: &str,
    status: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let d = get_ok(app, key, &format!("/v1/deliveries/{id}")).await;
        if d["status"] == status {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "delivery {id} did not become {status} within {timeout:?}; last seen: {d:#}"
        );
        sleep(ms(20)).await;
    }
}

/// Polls `GET /v1/events/{id}` until one of its deliveries has succeeded; the event.
async fn wait_event_delivered(app: &TestApp, key: &str, event_id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let e = get_ok(app, key, &format!("/v1/events/{event_id}")).await;
        if e["deliveries"].as_array().is_some_and(|ds| ds.iter().any(|d| d["status"] == "succeeded")) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "event {event_id} was not delivered within {timeout:?}; last seen: {e:#}"
        );
        sleep(ms(20)).await;
    }
}

/// Polls `GET /v1/endpoints/{id}` until `pred` holds; the endpoint.
async fn wait_endpoint(
    app: &TestApp,
    key: &str,
    id: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let ep = get_ok(app, key, &format!("/v1/endpoints/{id}")).await;
        if pred(&ep) {
            return ep;
        }
        assert!(Instant::now() < deadline, "endpoint {id}: not {what} within {timeout:?}; last seen: {ep:#}");
        sleep(ms(20)).await;
    }
}

/// A delivery's attempts ordered by attempt number.
fn attempts(delivery: &Value) -> Vec<Value> {
    let mut list = delivery["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("delivery without attempts: {delivery:#}"))
        .clone();
    list.sort_by_key(|a| a["attempt"].as_i64());
    list
}

fn attempt_codes(delivery: &Value) -> Vec<Value> {
    attempts(delivery).iter().map(|a| a["status_code"].clone()).collect()
}

pub(crate) fn data_ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list answer: {list}"))
        .iter()
        .map(|x| text(&x["id"]))
        .collect()
}

fn webhook_ids(got: &[Received]) -> Vec<String> {
    got.iter().map(|r| r.webhook_id().expect("a webhook id header").to_string()).collect()
}

fn has_issue_at(reply: &Reply, paths: &[Value]) -> bool {
    reply.body["issues"].as_array().is_some_and(|issues| issues.iter().any(|i| paths.contains(&i["path"])))
}

/// The Standard Webhooks v1 signature, computed here from the specification:
/// base64(HMAC-SHA256(key = base64-decoded part after `whsec_`, "{id}.{timestamp}.{body}")).
pub(crate) fn standard_webhooks_signature(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    let encoded = secret.strip_prefix("whsec_").unwrap_or_else(|| panic!("not a whsec_ secret: {secret}"));
    let key = B64.decode(encoded).expect("the part after whsec_ is base64");
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    B64.encode(mac.finalize().into_bytes())
}

/// What a Standard Webhooks library checks: a fresh timestamp and one `v1,` signature (of
/// the space-separated list) that matches this secret.
pub(crate) fn verifies_standard_webhooks(r: &Received, secret: &str) -> bool {
    let id = r.header("webhook-id").expect("webhook-id header");
    let ts = r.header("webhook-timestamp").expect("webhook-timestamp header");
    let ts_secs: i64 = ts.parse().unwrap_or_else(|_| panic!("webhook-timestamp is not unix seconds: {ts}"));
    assert!((unix_now() - ts_secs).abs() <= 300, "webhook-timestamp {ts} is not now");
    let expected = standard_webhooks_signature(secret, id, ts, &r.body);
    r.header("webhook-signature")
        .expect("webhook-signature header")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

/// `sha256=` + hex(HMAC-SHA256(key = the secret's own bytes, "{timestamp}.{body}")).
fn hmac_sha256_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn publish_with_idempotency_key(app: &TestApp, key: &str, idem: &str, body: &Value) -> Reply {
    let res = app
        .client
        .post(app.url("/v1/events"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Idempotency-Key", idem))
        .send_json(body)
        .await
        .expect("request reaches herald");
    read_reply(res).await
}

// ---------------------------------------------------------------------------------------
// a) The request: body, headers, signatures of both schemes
// ---------------------------------------------------------------------------------------

both_backends!(webhooks_are_signed_and_carry_the_event, |app: TestApp| async move {
    let key = app.default_key.clone();
    let orders = Receiver::start().await;
    let invoices = Receiver::start().await;

    let ep = create_endpoint(
        &app,
        &key,
        json!({
            "url": orders.url("/orders"),
            "events": ["order.*"],
            "description": "orders",
            "headers": {"X-Tenant": "acme"}
        }),
    )
    .await;
    let ep_id = text(&ep["id"]);
    assert!(ep_id.starts_with("ep_"), "{ep}");
    assert_eq!(ep["status"], "active");
    assert_eq!(ep["events"], json!(["order.*"]));
    assert_eq!(ep["signature_scheme"], "standard-webhooks", "the default scheme");
    let secret = text(&ep["secret"]);
    assert!(secret.starts_with("whsec_"), "generated secrets are whsec_: {secret}");
    assert!(B64.decode(&secret["whsec_".len()..]).is_ok_and(|k| k.len() >= 24), "a real key after whsec_");

    let hmac_secret = "a-shared-secret-the-user-chose";
    let ep2 = create_endpoint(
        &app,
        &key,
        json!({
            "url": invoices.url("/invoices"),
            "events": ["invoice.paid"],
            "signature_scheme": "hmac-sha256",
            "secret": hmac_secret
        }),
    )
    .await;
    assert_eq!(ep2["signature_scheme"], "hmac-sha256");
    assert_eq!(ep2["secret"], hmac_secret, "a given secret is kept as given");

    // Standard Webhooks.
    let data = json!({"order_id": "o-1", "amount": 4200, "currency": "EUR", "note": "ünïcode \"quoted\"\n"});
    let event =
        publish(&app, &key, json!({"type": "order.created", "data": data, "correlation_id": "corr-42"}))
            .await;
    let event_id = text(&event["id"]);
    assert!(event_id.starts_with("evt_"), "{event}");
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["delivery_count"], 1, "only the order.* endpoint matches");
    assert!(event["seq"].is_number() && event["created_at"].is_string(), "{event}");

    let got = orders.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/orders");
    assert!(r.header("content-type").is_some_and(|v| v.starts_with("application/json")), "{:?}", r.headers);
    assert!(r.header("user-agent").is_some_and(|v| v.starts_with("herald/")), "{:?}", r.headers);
    assert_eq!(r.header("x-tenant"), Some("acme"), "the endpoint's own headers are sent");
    assert_eq!(r.header("webhook-id"), Some(event_id.as_str()), "webhook-id is the event id");
    let signature = r.header("webhook-signature").unwrap_or("");
    assert!(signature.starts_with("v1,") && !signature.contains(' '), "one v1 signature: {signature}");
    assert!(verifies_standard_webhooks(r, &secret), "Standard Webhooks verification fails: {:?}", r.headers);
    let wrong = format!("whsec_{}", B64.encode([7u8; 32]));
    assert!(!verifies_standard_webhooks(r, &wrong), "the check above would accept anything");

    let body = r.json();
    let keys: BTreeSet<&str> = body.as_object().expect("a JSON object").keys().map(String::as_str).collect();
    let expected = BTreeSet::from(["correlation_id", "created_at", "data", "id", "type", "version"]);
    assert_eq!(keys, expected, "{body}");
    assert_eq!(body["version"], 1, "the type has no versions registered: version 1");
    assert_eq!(body["id"], event_id);
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["created_at"], event["created_at"]);
    assert_eq!(body["data"], data);
    assert_eq!(body["correlation_id"], "corr-42");

    // The tracking view.
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    assert!(delivery_id.starts_with("dlv_"), "{delivery_id}");
    wait_delivery(&app, &key, &delivery_id, "succeeded", WAIT).await;
    let tracked = get_ok(&app, &key, &format!("/v1/events/{event_id}")).await;
    assert_eq!(tracked["id"], event_id);
    assert_eq!(tracked["data"], data);
    assert_eq!(tracked["correlation_id"], "corr-42");
    assert_eq!(tracked["seq"], event["seq"]);
    let d = &tracked["deliveries"][0];
    assert_eq!(d["endpoint_id"], ep_id);
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempt_count"], 1);
    assert_eq!(d["last_status_code"], 200);

    // hmac-sha256, with the secret's own bytes as the key.
    let invoice = publish(&app, &key, json!({"type": "invoice.paid", "data": {"invoice": "inv-9"}})).await;
    let invoice_id = text(&invoice["id"]);
    let got = invoices.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.path, "/invoices");
    assert_eq!(r.header("x-webhook-id"), Some(invoice_id.as_str()));
    let ts = r.header("x-webhook-timestamp").expect("x-webhook-timestamp header");
    assert!((unix_now() - ts.parse::<i64>().expect("unix seconds")).abs() <= 300, "{ts}");
    let expected = hmac_sha256_signature(hmac_secret, ts, &r.body);
    assert_eq!(r.header("x-webhook-signature"), Some(expected.as_str()), "{:?}", r.headers);
    assert!(r.header("webhook-signature").is_none(), "only the endpoint's scheme is sent");
    let body = r.json();
    assert_eq!(body["id"], invoice_id);
    assert_eq!(body["data"], json!({"invoice": "inv-9"}));
    assert!(body.get("correlation_id").is_none(), "no correlation_id when none was given: {body}");

    // Each endpoint got only the types it subscribed to.
    orders.assert_count_stays(1, QUIET).await;
    assert_eq!(invoices.count(), 1);
    let listed = get_ok(&app, &key, "/v1/events?type=order.created").await;
    assert_eq!(data_ids(&listed), vec![event_id.clone()]);
});

// ---------------------------------------------------------------------------------------
// b) – e) Outcomes: retriable, non-retriable, Retry-After, timeouts, exhaustion
// ---------------------------------------------------------------------------------------

both_backends!(retriable_failures_are_retried_until_success, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.push_once(Behaviour::status(500).body("boom"));
    receiver.push_once(Behaviour::status(500));
    let ep_id = subscribe(&app, &key, &receiver, json!(["*"])).await;

    let event_id = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    let got = receiver.wait_for(3, WAIT).await;
    let delivery = wait_delivery(&app, &key, &delivery_id, "succeeded", WAIT).await;

    assert_eq!(delivery["event_id"], event_id);
    assert_eq!(delivery["endpoint_id"], ep_id);
    assert_eq!(delivery["attempt_count"], 3, "{delivery:#}");
    assert_eq!(delivery["last_status_code"], 200);
    assert_eq!(attempt_codes(&delivery), vec![json!(500), json!(500), json!(200)], "{delivery:#}");
    let list = attempts(&delivery);
    assert_eq!(list[0]["response_body"], "boom", "the answer's body is recorded");
    for a in &list {
        assert!(a["started_at"].is_string() && a["duration_ms"].is_number(), "{a}");
    }

    // The same message every time: same webhook-id (the event id), same body.
    assert_eq!(webhook_ids(&got), vec![event_id.clone(); 3]);
    assert!(got.iter().all(|r| r.body == got[0].body), "every retry sends the same body");
    receiver.assert_count_stays(3, QUIET).await;

    let ep = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
    assert_eq!(ep["counts"]["succeeded"], 1, "{ep:#}");
    assert_eq!(ep["counts"]["pending"], 0, "{ep:#}");
    assert_eq!(ep["circuit"]["state"], "closed", "{ep:#}");
    assert_eq!(ep["circuit"]["consecutive_failures"], 0, "a success resets the count: {ep:#}");

    let metrics = app.request("GET", "/metrics", None, None).await;
    assert!(metrics.text.contains("herald_events_published_total"), "{}", metrics.text);
    assert!(metrics.text.contains(r#"herald_deliveries_total{outcome="succeeded"}"#), "{}", metrics.text);
});

both_backends!(a_client_error_fails_at_once_and_can_be_retried_by_hand, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(400).body("unknown order"));
    let ep_id = subscribe(&app, &key, &receiver, json!(["*"])).await;

    let event_id = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    let delivery = wait_delivery(&app, &key, &delivery_id, "failed", WAIT).await;
    assert_eq!(delivery["attempt_count"], 1, "{delivery:#}");
    assert_eq!(delivery["last_status_code"], 400);
    assert_eq!(attempt_codes(&delivery), vec![json!(400)]);
    assert_eq!(attempts(&delivery)[0]["response_body"], "unknown order");
    // Far beyond the 10 ms retry delay: no second request.
    receiver.assert_count_stays(1, QUIET).await;

    let failed = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}/deliveries?status=failed")).await;
    assert_eq!(data_ids(&failed), vec![delivery_id.clone()]);
    let succeeded = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}/deliveries?status=succeeded")).await;
    assert!(data_ids(&succeeded).is_empty(), "{succeeded}");
    let ep = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
    assert_eq!(ep["counts"]["failed"], 1, "{ep:#}");

    // "Try again now".
    receiver.set_default(Behaviour::ok());
    post_status(&app, &key, &format!("/v1/deliveries/{delivery_id}/retry"), json!({}), 202).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].webhook_id(), Some(event_id.as_str()));
    let delivery = wait_delivery(&app, &key, &delivery_id, "succeeded", WAIT).await;
    assert_eq!(attempt_codes(&delivery), vec![json!(400), json!(200)], "{delivery:#}");
});

both_backends!(retry_after_is_honoured, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.push_once(Behaviour::status(429).header("Retry-After", "1"));
    subscribe(&app, &key, &receiver, json!(["*"])).await;

    let event_id = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at.saturating_duration_since(got[0].at);
    assert!(gap >= ms(900), "Retry-After: 1 means about a second, not the 10 ms schedule; waited {gap:?}");
    assert!(gap < Duration::from_secs(5), "waited far longer than asked: {gap:?}");
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    let delivery = wait_delivery(&app, &key, &delivery_id, "succeeded", WAIT).await;
    assert_eq!(attempt_codes(&delivery), vec![json!(429), json!(200)], "{delivery:#}");
});

both_backends!(a_timeout_is_retriable, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    // The test timeout is 2 s.
    receiver.push_once(Behaviour::ok().delay(ms(2600)));
    subscribe(&app, &key, &receiver, json!(["*"])).await;

    let event_id = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at.saturating_duration_since(got[0].at);
    assert!(gap >= ms(1800), "the retry came after the 2 s timeout, not before: {gap:?}");
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    let delivery = wait_delivery(&app, &key, &delivery_id, "succeeded", WAIT).await;
    let list = attempts(&delivery);
    assert_eq!(list.len(), 2, "{delivery:#}");
    assert!(list[0]["status_code"].is_null(), "a timed-out attempt has no status: {delivery:#}");
    assert!(
        list[0]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the timeout is recorded: {delivery:#}"
    );
    assert_eq!(list[1]["status_code"], 200);
});

both_backends!(retries_exhausted_go_to_dead_letters_and_replay_from_there, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(503).body("down for maintenance"));
    let ep_id = subscribe(&app, &key, &receiver, json!(["order.*"])).await;
    let idle = Receiver::start().await;
    let idle_id = subscribe(&app, &key, &idle, json!(["nothing.*"])).await;

    let data = json!({"order": "o-7"});
    let event_id = publish_type(&app, &key, "order.created", data.clone()).await;
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    let delivery = wait_delivery(&app, &key, &delivery_id, "dead", WAIT).await;
    assert_eq!(delivery["attempt_count"], 4, "1 + the 3 retries of the schedule: {delivery:#}");
    assert_eq!(attempt_codes(&delivery), vec![json!(503); 4]);
    assert_eq!(delivery["last_status_code"], 503);
    receiver.assert_count_stays(4, QUIET).await;
    assert!(webhook_ids(&receiver.received()).iter().all(|id| *id == event_id));

    let dead = get_ok(&app, &key, &format!("/v1/dead-letters?endpoint_id={ep_id}")).await;
    let list = dead["data"].as_array().expect("a list");
    assert_eq!(list.len(), 1, "{dead:#}");
    let entry = &list[0];
    assert_eq!(entry["id"], delivery_id, "dead letters are listed by delivery id");
    assert_eq!(entry["event_id"], event_id);
    assert_eq!(entry["endpoint_id"], ep_id);
    assert_eq!(entry["status"], "dead");
    assert_eq!(entry["attempt_count"], 4);
    assert_eq!(entry["last_status_code"], 503);
    assert!(entry.get("last_error").is_some(), "{entry:#}");
    assert!(entry["first_attempt_at"].is_string() && entry["last_attempt_at"].is_string(), "{entry:#}");
    assert_eq!(entry["event"]["id"], event_id);
    assert_eq!(entry["event"]["type"], "order.created");
    assert_eq!(entry["event"]["data"], data);
    assert!(entry["event"]["created_at"].is_string());
    assert!(dead["next_cursor"].is_null());

    let other = get_ok(&app, &key, &format!("/v1/dead-letters?endpoint_id={idle_id}")).await;
    assert!(data_ids(&other).is_empty(), "the filter filters: {other}");
    let all = get_ok(&app, &key, "/v1/dead-letters").await;
    assert_eq!(data_ids(&all), vec![delivery_id.clone()]);
    let ep = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
    assert_eq!(ep["counts"]["dead"], 1, "{ep:#}");

    // The subscriber is back: replay the dead letter.
    receiver.set_default(Behaviour::ok());
    let replayed =
        post_status(&app, &key, "/v1/dead-letters/replay", json!({"ids": [delivery_id]}), 202).await;
    assert_eq!(replayed["replayed"], 1, "{replayed}");
    let got = receiver.wait_for(5, WAIT).await;
    assert_eq!(got[4].webhook_id(), Some(event_id.as_str()), "the same event, the same webhook-id");
    assert_eq!(got[4].json()["id"], event_id);
    assert_eq!(got[4].json()["data"], data);
    wait_event_delivered(&app, &key, &event_id, WAIT).await;
    let dead = get_ok(&app, &key, &format!("/v1/dead-letters?endpoint_id={ep_id}")).await;
    assert!(data_ids(&dead).is_empty(), "a replayed dead letter leaves the list: {dead}");
    // Nothing is dead any more: a second replay sends nothing.
    let again = post_status(&app, &key, "/v1/dead-letters/replay", json!({"ids": [delivery_id]}), 202).await;
    assert_eq!(again["replayed"], 0, "{again}");
    receiver.assert_count_stays(5, QUIET).await;
});

both_backends!(connection_errors_are_retried_until_dead, |app: TestApp| async move {
    let key = app.default_key.clone();
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let ep =
        create_endpoint(&app, &key, json!({"url": format!("http://127.0.0.1:{port}/gone"), "events": ["*"]}))
            .await;
    let ep_id = text(&ep["id"]);
    let event_id = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    let delivery = wait_delivery(&app, &key, &delivery_id, "dead", WAIT).await;
    assert_eq!(delivery["attempt_count"], 4, "{delivery:#}");
    assert!(delivery["last_status_code"].is_null(), "{delivery:#}");
    for a in attempts(&delivery) {
        assert!(a["status_code"].is_null(), "{a}");
        assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "the connection error is recorded: {a}");
    }
    let dead = get_ok(&app, &key, &format!("/v1/dead-letters?endpoint_id={ep_id}")).await;
    assert_eq!(data_ids(&dead), vec![delivery_id]);
    assert!(dead["data"][0]["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{dead:#}");
});

// ---------------------------------------------------------------------------------------
// f) Endpoint replay
// ---------------------------------------------------------------------------------------

both_backends!(endpoint_replay_resends_failed_deliveries_in_a_window, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(422));
    let ep_id = subscribe(&app, &key, &receiver, json!(["*"])).await;
    let since = rfc3339_ago(Duration::from_secs(60));

    let event_id = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let delivery_id = only_delivery(&app, &key, &event_id).await;
    wait_delivery(&app, &key, &delivery_id, "failed", WAIT).await;
    let replay_path = format!("/v1/endpoints/{ep_id}/replay");

    // Nothing dead; nothing failed an hour ago.
    let none = post_status(&app, &key, &replay_path, json!({"since": since, "status": "dead"}), 202).await;
    assert_eq!(none["replayed"], 0, "{none}");
    let old = json!({
        "since": rfc3339_ago(Duration::from_secs(3600)),
        "until": rfc3339_ago(Duration::from_secs(1800)),
        "status": "failed"
    });
    let none = post_status(&app, &key, &replay_path, old, 202).await;
    assert_eq!(none["replayed"], 0, "{none}");
    receiver.assert_count_stays(1, QUIET).await;

    receiver.set_default(Behaviour::ok());
    let one = post_status(&app, &key, &replay_path, json!({"since": since, "status": "failed"}), 202).await;
    assert_eq!(one["replayed"], 1, "{one}");
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].webhook_id(), Some(event_id.as_str()));
    wait_event_delivered(&app, &key, &event_id, WAIT).await;
    receiver.assert_count_stays(2, QUIET).await;
});

// ---------------------------------------------------------------------------------------
// g) Circuit breaker
// ---------------------------------------------------------------------------------------

both_backends_with!(
    circuit_opens_after_consecutive_failures_and_a_probe_closes_it,
    |s: &mut herald::Settings| {
        s.delivery.circuit_open_for = Duration::from_millis(1500);
        // One retry, 5 s later: the five failures come from five events, not from retries.
        s.delivery.retry_schedule = vec![Duration::from_secs(5)];
    },
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let receiver = Receiver::start().await;
        receiver.set_default(Behaviour::status(500));
        // One request at a time, so the sixth cannot be on its way before the circuit opens.
        let ep = create_endpoint(
            &app,
            &key,
            json!({"url": receiver.url("/hook"), "events": ["*"], "max_in_flight": 1}),
        )
        .await;
        let ep_id = text(&ep["id"]);

        let mut events = Vec::new();
        for i in 0..6 {
            events.push(publish_type(&app, &key, "order.created", json!({"n": i})).await);
        }
        receiver.wait_for(5, WAIT).await;
        let open = wait_endpoint(&app, &key, &ep_id, "open", Duration::from_secs(3), |e| {
            e["circuit"]["state"] == "open"
        })
        .await;
        assert!(open["circuit"]["open_until"].is_string(), "{open:#}");
        assert!(open["circuit"]["consecutive_failures"].as_u64().is_some_and(|n| n >= 5), "{open:#}");

        // While open, nothing reaches the endpoint (the sixth event waits).
        receiver.assert_count_stays(5, ms(900)).await;

        // The subscriber recovers before the probe; the probe closes the circuit and the
        // backlog (and the retries, when due) go out.
        receiver.set_default(Behaviour::ok());
        for id in &events {
            wait_event_delivered(&app, &key, id, Duration::from_secs(15)).await;
        }
        let closed = wait_endpoint(&app, &key, &ep_id, "closed", WAIT, |e| {
            e["circuit"]["state"] == "closed" && e["circuit"]["consecutive_failures"] == 0
        })
        .await;
        assert!(closed["circuit"]["open_until"].is_null(), "{closed:#}");
        assert_eq!(closed["counts"]["succeeded"], 6, "{closed:#}");

        // Waiting behind an open circuit is not an attempt: attempts == requests.
        let mut total_attempts = 0;
        for id in &events {
            let delivery_id = only_delivery(&app, &key, id).await;
            let d = get_ok(&app, &key, &format!("/v1/deliveries/{delivery_id}")).await;
            total_attempts += d["attempt_count"].as_u64().expect("attempt_count");
        }
        assert_eq!(
            total_attempts as usize,
            receiver.count(),
            "{}",
            crate::receiver::summary(&receiver.received())
        );
        assert!(receiver.count() >= 11, "5 failures, then 6 successes");
    }
);

// ---------------------------------------------------------------------------------------
// h), i) Isolation and per-endpoint limits
// ---------------------------------------------------------------------------------------

both_backends!(a_hanging_endpoint_does_not_delay_another, |app: TestApp| async move {
    let key = app.default_key.clone();
    let slow = Receiver::start().await;
    // Just under the 2 s timeout: every request hangs, none fails.
    slow.set_default(Behaviour::ok().delay(ms(1900)));
    let fast = Receiver::start().await;
    subscribe(&app, &key, &slow, json!(["*"])).await;
    subscribe(&app, &key, &fast, json!(["*"])).await;

    let mut published: HashMap<String, Instant> = HashMap::new();
    for i in 0..20 {
        let id = publish_type(&app, &key, "order.created", json!({"n": i})).await;
        published.insert(id, Instant::now());
    }
    let got = fast.wait_for(20, WAIT).await;
    assert!(slow.in_flight() > 0, "the slow endpoint is still hanging while the fast one is done");
    let ids: BTreeSet<String> = webhook_ids(&got).into_iter().collect();
    assert_eq!(ids, published.keys().cloned().collect::<BTreeSet<_>>());
    for r in &got {
        let id = r.webhook_id().unwrap();
        let lag = r.at.saturating_duration_since(published[id]);
        assert!(lag <= ms(1500), "event {id} reached the fast endpoint {lag:?} after its publish");
    }
    // And the slow one gets everything too, at its own pace.
    slow.wait_for(20, Duration::from_secs(15)).await;
});

both_backends!(max_in_flight_caps_concurrent_requests, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(ms(200)));
    let ep = create_endpoint(
        &app,
        &key,
        json!({"url": receiver.url("/hook"), "events": ["*"], "max_in_flight": 2}),
    )
    .await;
    assert_eq!(ep["max_in_flight"], 2);

    let mut published = BTreeSet::new();
    for i in 0..10 {
        published.insert(publish_type(&app, &key, "order.created", json!({"n": i})).await);
    }
    let got = receiver.wait_for(10, Duration::from_secs(15)).await;
    assert_eq!(webhook_ids(&got).into_iter().collect::<BTreeSet<_>>(), published);
    let max = receiver.max_in_flight();
    assert!((1..=2).contains(&max), "at most 2 requests at a time, saw {max}");
    for id in &published {
        wait_event_delivered(&app, &key, id, WAIT).await;
    }
    assert_eq!(receiver.count(), 10, "no request was repeated");
});

both_backends!(rate_limit_per_second_paces_requests, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let ep = create_endpoint(
        &app,
        &key,
        json!({"url": receiver.url("/hook"), "events": ["*"], "rate_limit_per_second": 5}),
    )
    .await;
    assert_eq!(ep["rate_limit_per_second"], 5);

    let mut published = BTreeSet::new();
    for i in 0..10 {
        published.insert(publish_type(&app, &key, "order.created", json!({"n": i})).await);
    }
    let got = receiver.wait_for(10, Duration::from_secs(15)).await;
    assert_eq!(webhook_ids(&got).into_iter().collect::<BTreeSet<_>>(), published);
    // At 5/s, 10 requests take about a second even when the first 5 go at once.
    let span = got[9].at.saturating_duration_since(got[0].at);
    assert!(span >= ms(800), "10 requests at 5/s spanned only {span:?}");
});

// ---------------------------------------------------------------------------------------
// j) A crash loses nothing
// ---------------------------------------------------------------------------------------

async fn every_accepted_event_survives_a_crash(backend: Backend) {
    let Some(database) = fresh_database(backend) else { return };
    let mut settings = test_settings();
    settings.database.url = database.url.clone();
    settings.delivery.lease = Duration::from_secs(2);
    // The subscriber answers after 5 s: nothing can succeed before the crash.
    settings.delivery.timeout = Duration::from_secs(10);
    let (first, crash) = spawn_crashable_app(settings).await;
    let key = first.default_key.clone();

    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(Duration::from_secs(5)));
    subscribe(&first, &key, &receiver, json!(["*"])).await;
    let mut accepted = BTreeSet::new();
    for i in 0..8 {
        accepted.insert(publish_type(&first, &key, "order.created", json!({"n": i})).await);
    }
    // Deliveries are on the wire, unanswered: crash now.
    receiver.wait_for(1, WAIT).await;
    crash.crash().await;
    drop(first);

    receiver.set_default(Behaviour::ok());
    let restarted_at = Instant::now();
    let second = spawn_app_on(database, key.clone(), |s| s.delivery.lease = Duration::from_secs(2)).await;

    // Every accepted event arrives again after the restart (at least once).
    receiver.wait_for_ids(&accepted, Some(restarted_at), Duration::from_secs(15)).await;
    for id in &accepted {
        wait_event_delivered(&second, &key, id, WAIT).await;
    }
}

mod crash_recovery {
    use super::*;

    #[actix_web::test]
    async fn sqlite() {
        every_accepted_event_survives_a_crash(Backend::Sqlite).await;
    }

    #[actix_web::test]
    async fn postgres() {
        every_accepted_event_survives_a_crash(Backend::Postgres).await;
    }
}

// ---------------------------------------------------------------------------------------
// k) Idempotent publishing
// ---------------------------------------------------------------------------------------

both_backends!(a_repeated_publish_makes_one_event_and_one_delivery, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    subscribe(&app, &key, &receiver, json!(["*"])).await;

    // By the body's id.
    let body = json!({"type": "order.created", "id": "order-1001", "data": {"n": 1}});
    let first = publish(&app, &key, body.clone()).await;
    let again = publish(&app, &key, body).await;
    assert_eq!(again["id"], first["id"], "{first} / {again}");
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["type"], "order.created");

    // By Idempotency-Key.
    let body = json!({"type": "order.updated", "data": {"n": 2}});
    let one = publish_with_idempotency_key(&app, &key, "publish-1", &body).await;
    assert_eq!(one.status, 202, "{}", one.text);
    let two = publish_with_idempotency_key(&app, &key, "publish-1", &body).await;
    assert_eq!(two.status, 202, "{}", two.text);
    assert_eq!(two.header("idempotent-replayed"), Some("true"));
    assert_eq!(two.body, one.body);

    let got = receiver.wait_for(2, WAIT).await;
    receiver.assert_count_stays(2, QUIET).await;
    let ids: BTreeSet<String> = webhook_ids(&got).into_iter().collect();
    let expected: BTreeSet<String> = [text(&first["id"]), text(&one.body["id"])].into_iter().collect();
    assert_eq!(ids, expected);
    for (t, id) in [("order.created", &first["id"]), ("order.updated", &one.body["id"])] {
        let list = get_ok(&app, &key, &format!("/v1/events?type={t}")).await;
        assert_eq!(data_ids(&list), vec![text(id)], "one {t} event");
        assert_eq!(delivery_ids(&app, &key, &text(id)).await.len(), 1, "one delivery for {t}");
    }
});

// Concurrent copies share a group-commit batch: the first stores the event, the others in
// the same batch and after it answer with that event and make no delivery.
both_backends!(concurrent_copies_of_one_id_make_one_event_and_one_delivery, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    subscribe(&app, &key, &receiver, json!(["*"])).await;
    let body = json!({"type": "order.created", "id": "order-2002", "data": {"n": 1}});
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (client, url, body, key) = (app.client.clone(), app.url("/v1/events"), body.clone(), key.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let res = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {key}")))
                .send_json(&body)
                .await
                .expect("request reaches herald");
            crate::helpers::read_reply(res).await
        }));
    }
    let mut fresh = 0;
    let mut seqs = BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["delivery_count"], 1, "{}", r.text);
        if r.header("idempotent-replayed") == Some("false") {
            fresh += 1;
        }
        seqs.insert(r.body["seq"].to_string());
    }
    assert_eq!(fresh, 1, "exactly one copy stored the event");
    assert_eq!(seqs.len(), 1, "every copy names the same event: {seqs:?}");
    receiver.wait_for(1, WAIT).await;
    receiver.assert_count_stays(1, QUIET).await;
    assert_eq!(delivery_ids(&app, &key, "order-2002").await.len(), 1);
});

// ---------------------------------------------------------------------------------------
// l) SSRF guard
// ---------------------------------------------------------------------------------------

both_backends_with!(
    endpoint_urls_must_be_public_https_by_default,
    |s: &mut herald::Settings| {
        s.security.allow_insecure_urls = false;
        s.security.allowed_networks = Vec::new();
    },
    |app: TestApp| async move {
        let key = app.default_key.clone();
        for url in [
            "http://10.0.0.1/x",
            "https://10.0.0.1/x",
            "https://192.168.1.10/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://127.0.0.1/",
            "http://127.0.0.1:9/hook",
            "not a url",
            "ftp://example.com/hook",
        ] {
            let r = app.post("/v1/endpoints", &key, json!({"url": url, "events": ["*"]})).await;
            assert_error(&r, 400, "VALIDATION_ERROR");
            assert!(has_issue_at(&r, &[json!(["url"])]), "{url}: the issue names url: {}", r.text);
        }
        let list = get_ok(&app, &key, "/v1/endpoints").await;
        assert!(data_ids(&list).is_empty(), "nothing was created: {list}");
    }
);

both_backends!(the_allow_list_permits_only_listed_networks, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    // Test settings: http allowed, 127.0.0.0/8 and ::1/128 exempt.
    let ep = create_endpoint(&app, &key, json!({"url": receiver.url("/hook"), "events": ["*"]})).await;
    let ep_id = text(&ep["id"]);
    let v6 = create_endpoint(
        &app,
        &key,
        json!({"url": format!("http://[::1]:{}/hook", receiver.port()), "events": ["nothing.*"]}),
    )
    .await;
    assert!(text(&v6["id"]).starts_with("ep_"));

    for url in ["http://10.0.0.1/x", "https://169.254.169.254/", "http://192.168.0.1/"] {
        let r = app.post("/v1/endpoints", &key, json!({"url": url, "events": ["*"]})).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(has_issue_at(&r, &[json!(["url"])]), "{url}: {}", r.text);
    }
    // Changing the URL is checked the same way, and a refused change changes nothing.
    let r = app
        .request(
            "PATCH",
            &format!("/v1/endpoints/{ep_id}"),
            Some(&key),
            Some(&json!({"url": "http://10.0.0.1/x"})),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(has_issue_at(&r, &[json!(["url"])]), "{}", r.text);
    let still = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
    assert_eq!(still["url"], receiver.url("/hook"));

    // And the allowed one is delivered to.
    let event_id = publish_type(&app, &key, "order.created", json!({})).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].webhook_id(), Some(event_id.as_str()));
});

// ---------------------------------------------------------------------------------------
// m) Tenant isolation
// ---------------------------------------------------------------------------------------

both_backends!(another_organisation_sees_none_of_it, |app: TestApp| async move {
    let key_a = app.default_key.clone();
    let receiver = Receiver::start().await;
    let ep_id = subscribe(&app, &key_a, &receiver, json!(["*"])).await;
    let event_id = publish_type(&app, &key_a, "order.created", json!({"secret": "of a"})).await;
    let delivery_id = only_delivery(&app, &key_a, &event_id).await;
    wait_delivery(&app, &key_a, &delivery_id, "succeeded", WAIT).await;

    let (_, key_b) = app.new_org("beta", 100000).await;
    let since = rfc3339_ago(Duration::from_secs(3600));
    let probes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/endpoints/{ep_id}"), None),
        ("PATCH", format!("/v1/endpoints/{ep_id}"), Some(json!({"description": "mine now"}))),
        ("POST", format!("/v1/endpoints/{ep_id}/rotate-secret"), Some(json!({}))),
        ("POST", format!("/v1/endpoints/{ep_id}/test"), Some(json!({}))),
        ("POST", format!("/v1/endpoints/{ep_id}/replay"), Some(json!({"since": since, "status": "all"}))),
        ("GET", format!("/v1/endpoints/{ep_id}/deliveries"), None),
        ("GET", format!("/v1/events/{event_id}"), None),
        ("GET", format!("/v1/deliveries/{delivery_id}"), None),
        ("POST", format!("/v1/deliveries/{delivery_id}/retry"), Some(json!({}))),
        ("DELETE", format!("/v1/endpoints/{ep_id}"), None),
    ];
    for (method, path, body) in &probes {
        let r = app.request(method, path, Some(&key_b), body.as_ref()).await;
        assert_error(&r, 404, "NOT_FOUND");
        assert!(!r.text.contains("of a"), "{method} {path} leaks: {}", r.text);
    }
    for path in ["/v1/endpoints", "/v1/events", "/v1/dead-letters", "/v1/events?type=order.created"] {
        let list = get_ok(&app, &key_b, path).await;
        assert!(data_ids(&list).is_empty(), "{path} as org B: {list}");
    }
    let replay = app.post("/v1/dead-letters/replay", &key_b, json!({"ids": [delivery_id]})).await;
    match replay.status.as_u16() {
        202 => assert_eq!(replay.body["replayed"], 0, "{}", replay.text),
        _ => assert_error(&replay, 404, "NOT_FOUND"),
    }

    // B's events do not reach A's endpoint.
    let b_event = publish(&app, &key_b, json!({"type": "order.created", "data": {"from": "b"}})).await;
    assert_eq!(b_event["delivery_count"], 0, "{b_event}");
    receiver.assert_count_stays(1, QUIET).await;

    // A's things are untouched by B's attempts.
    let ep = get_ok(&app, &key_a, &format!("/v1/endpoints/{ep_id}")).await;
    assert_eq!(ep["status"], "active");
    assert!(ep["description"] != "mine now", "{ep}");
    assert_eq!(get_ok(&app, &key_a, &format!("/v1/events/{event_id}")).await["id"], event_id);
});

// ---------------------------------------------------------------------------------------
// n), o) Test events and secret rotation
// ---------------------------------------------------------------------------------------

both_backends!(a_test_event_goes_to_that_endpoint_only, |app: TestApp| async move {
    let key = app.default_key.clone();
    let one = Receiver::start().await;
    let two = Receiver::start().await;
    let ep = create_endpoint(&app, &key, json!({"url": one.url("/one"), "events": ["*"]})).await;
    let ep_id = text(&ep["id"]);
    let secret = text(&ep["secret"]);
    subscribe(&app, &key, &two, json!(["*"])).await;

    let r = post_status(&app, &key, &format!("/v1/endpoints/{ep_id}/test"), json!({}), 202).await;
    let delivery_id = text(&r["delivery_id"]);
    let got = one.wait_for(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["type"], "webhook.test", "{body}");
    assert_eq!(got[0].webhook_id(), body["id"].as_str());
    assert!(verifies_standard_webhooks(&got[0], &secret), "{:?}", got[0].headers);

    let delivery = wait_delivery(&app, &key, &delivery_id, "succeeded", WAIT).await;
    assert_eq!(delivery["endpoint_id"], ep_id);
    assert_eq!(delivery["event_id"], body["id"]);
    two.assert_count_stays(0, QUIET).await;
    one.assert_count_stays(1, ms(1)).await;
});

both_backends!(after_rotation_both_secrets_sign, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let ep = create_endpoint(&app, &key, json!({"url": receiver.url("/hook"), "events": ["*"]})).await;
    let ep_id = text(&ep["id"]);
    let old = text(&ep["secret"]);

    let rotated =
        post_status(&app, &key, &format!("/v1/endpoints/{ep_id}/rotate-secret"), json!({}), 200).await;
    let new = text(&rotated["secret"]);
    assert!(new.starts_with("whsec_"), "{new}");
    assert_ne!(new, old);
    // Only `GET …/secret` shows it after the rotation; the endpoint itself never does.
    assert_eq!(get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}/secret")).await["secret"], new);
    assert!(get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await.get("secret").is_none());

    publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let got = receiver.wait_for(1, WAIT).await;
    let r = &got[0];
    let header = r.header("webhook-signature").expect("webhook-signature");
    let sent: BTreeSet<&str> = header.split(' ').collect();
    assert_eq!(sent.len(), 2, "two signatures during a rotation: {header}");
    assert!(sent.iter().all(|s| s.starts_with("v1,")), "{header}");
    let (id, ts) = (r.header("webhook-id").unwrap(), r.header("webhook-timestamp").unwrap());
    let expected: BTreeSet<String> = [&old, &new]
        .iter()
        .map(|secret| format!("v1,{}", standard_webhooks_signature(secret, id, ts, &r.body)))
        .collect();
    assert_eq!(sent, expected.iter().map(String::as_str).collect::<BTreeSet<_>>(), "one per secret");
    assert!(verifies_standard_webhooks(r, &old) && verifies_standard_webhooks(r, &new));
});

// ---------------------------------------------------------------------------------------
// p) Payload validation
// ---------------------------------------------------------------------------------------

both_backends!(event_type_schemas_validate_published_data, |app: TestApp| async move {
    let key = app.default_key.clone();
    let schema = json!({
        "type": "object",
        "required": ["amount", "currency"],
        "properties": {
            "amount": {"type": "integer", "minimum": 1},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3}
        }
    });
    post_status(&app, &key, "/v1/event-types", json!({"name": "payment.completed", "schema": schema}), 201)
        .await;

    let bad = app
        .post(
            "/v1/events",
            &key,
            json!({"type": "payment.completed", "data": {"amount": "ten", "currency": "EUR"}}),
        )
        .await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
    assert!(has_issue_at(&bad, &[json!(["amount"]), json!(["data", "amount"])]), "{}", bad.text);

    let good =
        publish(&app, &key, json!({"type": "payment.completed", "data": {"amount": 10, "currency": "EUR"}}))
            .await;
    let list = get_ok(&app, &key, "/v1/events?type=payment.completed").await;
    assert_eq!(data_ids(&list), vec![text(&good["id"])], "the refused publish stored nothing");

    // `data` must be an object, for every type.
    for data in [json!([1, 2]), json!("text"), json!(5), Value::Null] {
        let r = app.post("/v1/events", &key, json!({"type": "misc.thing", "data": data})).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(has_issue_at(&r, &[json!(["data"])]), "data = {data}: {}", r.text);
    }
    let r = app.post("/v1/events", &key, json!({"type": "misc.thing"})).await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    let list = get_ok(&app, &key, "/v1/events?type=misc.thing").await;
    assert!(data_ids(&list).is_empty(), "{list}");
});

// ---------------------------------------------------------------------------------------
// More of the contract: ?wait=true, endpoint lifecycle
// ---------------------------------------------------------------------------------------

both_backends!(publish_with_wait_answers_with_first_attempt_outcomes, |app: TestApp| async move {
    let key = app.default_key.clone();
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.set_default(Behaviour::status(400));
    let good_id = subscribe(&app, &key, &good, json!(["*"])).await;
    let bad_id = subscribe(&app, &key, &bad, json!(["*"])).await;

    let r = app.post("/v1/events?wait=true", &key, json!({"type": "order.created", "data": {"n": 1}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(text(&r.body["id"]).starts_with("evt_"));
    assert_eq!(r.body["type"], "order.created");
    assert!(r.body["seq"].is_number() && r.body["created_at"].is_string(), "{}", r.text);
    assert_eq!(r.body["delivery_count"], 2);
    let deliveries = r.body["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2, "{}", r.text);
    let by_endpoint = |id: &str| deliveries.iter().find(|d| d["endpoint_id"] == id).cloned().expect(id);
    let ok = by_endpoint(good_id.as_str());
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert_eq!(ok["attempt_count"], 1);
    assert_eq!(ok["status_code"], 200);
    let failed = by_endpoint(bad_id.as_str());
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["status_code"], 400);
    assert_eq!(good.count(), 1, "the answer came after the attempt");
    assert_eq!(bad.count(), 1);
});

both_backends!(endpoints_are_listed_changed_disabled_and_deleted, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let ep = create_endpoint(
        &app,
        &key,
        json!({
            "url": receiver.url("/hook"),
            "events": ["order.created"],
            "description": "orders",
            "rate_limit_per_second": 50,
            "max_in_flight": 4
        }),
    )
    .await;
    let ep_id = text(&ep["id"]);
    assert_eq!(ep["url"], receiver.url("/hook"));
    assert_eq!(ep["description"], "orders");
    assert_eq!(ep["rate_limit_per_second"], 50);
    assert_eq!(ep["max_in_flight"], 4);
    assert!(ep["created_at"].is_string() && ep["updated_at"].is_string(), "{ep}");

    let got = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
    assert_eq!(got["id"], ep_id);
    assert_eq!(got["circuit"]["state"], "closed", "{got:#}");
    assert_eq!(got["circuit"]["consecutive_failures"], 0);
    assert!(got["circuit"]["open_until"].is_null());
    assert_eq!(
        got["counts"],
        json!({"pending": 0, "succeeded": 0, "failed": 0, "dead": 0, "success_rate": null}),
        "no finished deliveries: no success rate yet"
    );
    assert_eq!(data_ids(&get_ok(&app, &key, "/v1/endpoints").await), vec![ep_id.clone()]);

    let r = app
        .post(
            "/v1/endpoints",
            &key,
            json!({"url": receiver.url("/x"), "events": ["*"], "signature_scheme": "md5"}),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert!(has_issue_at(&r, &[json!(["signature_scheme"])]), "{}", r.text);

    // Exact names and wildcards.
    publish_type(&app, &key, "order.shipped", json!({})).await;
    let patched = app
        .request(
            "PATCH",
            &format!("/v1/endpoints/{ep_id}"),
            Some(&key),
            Some(&json!({"events": ["order.*"]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["events"], json!(["order.*"]));
    let shipped = publish_type(&app, &key, "order.shipped", json!({})).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].webhook_id(), Some(shipped.as_str()), "the first order.shipped was not subscribed to");

    // Disabled: nothing is sent.
    let disabled = app
        .request("PATCH", &format!("/v1/endpoints/{ep_id}"), Some(&key), Some(&json!({"status": "disabled"})))
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.body["status"], "disabled");
    assert_eq!(data_ids(&get_ok(&app, &key, "/v1/endpoints?status=disabled").await), vec![ep_id.clone()]);
    assert!(data_ids(&get_ok(&app, &key, "/v1/endpoints?status=active").await).is_empty());
    publish_type(&app, &key, "order.created", json!({})).await;
    receiver.assert_count_stays(1, QUIET).await;

    // Deleted: gone, and nothing is sent.
    let deleted = app.request("DELETE", &format!("/v1/endpoints/{ep_id}"), Some(&key), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_error(&app.get(&format!("/v1/endpoints/{ep_id}"), &key).await, 404, "NOT_FOUND");
    assert!(data_ids(&get_ok(&app, &key, "/v1/endpoints").await).is_empty());
    let after = publish(&app, &key, json!({"type": "order.created", "data": {}})).await;
    assert_eq!(after["delivery_count"], 0);
    receiver.assert_count_stays(1, QUIET).await;
});

// ---------------------------------------------------------------------------------------
// An endpoint failing without a success for delivery.disable_after is disabled
// ---------------------------------------------------------------------------------------

both_backends_with!(
    an_endpoint_that_only_fails_is_disabled_and_announced,
    |s: &mut herald::Settings| {
        s.delivery.disable_after = ms(300);
        s.delivery.retry_schedule = vec![ms(50); 20];
    },
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let receiver = Receiver::start().await;
        receiver.set_default(Behaviour::status(503));
        let ep_id = subscribe(&app, &key, &receiver, json!(["order.*"])).await;
        publish_type(&app, &key, "order.created", json!({"n": 1})).await;

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ep = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
            if ep["status"] == "disabled" {
                break;
            }
            assert!(Instant::now() < deadline, "still {ep:#}");
            sleep(ms(50)).await;
        }
        let announced = get_ok(&app, &key, "/v1/events?type=endpoint.disabled").await;
        let events = announced["data"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{announced:#}");
        assert_eq!(events[0]["data"]["endpoint_id"], ep_id.as_str());
        // Disabled: nothing more reaches it.
        let before = receiver.count();
        publish_type(&app, &key, "order.created", json!({"n": 2})).await;
        receiver.assert_count_stays(before, ms(400)).await;
    }
);

// ---------------------------------------------------------------------------------------
// What a subscriber answers cannot break the store; deleting an endpoint settles its work
// ---------------------------------------------------------------------------------------

both_backends!(an_answer_with_nul_bytes_is_recorded_and_harms_nothing, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(400).body("bad\0answer"));
    subscribe(&app, &key, &receiver, json!(["*"])).await;
    let first = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
    let id = only_delivery(&app, &key, &first).await;
    let failed = wait_delivery(&app, &key, &id, "failed", WAIT).await;
    let body = attempts(&failed)[0]["response_body"].as_str().unwrap().to_string();
    assert!(body.starts_with("bad") && !body.contains('\0'), "{body:?}");
    // The node keeps recording results afterwards.
    receiver.set_default(Behaviour::ok());
    let second = publish_type(&app, &key, "order.created", json!({"n": 2})).await;
    wait_event_delivered(&app, &key, &second, WAIT).await;
});

both_backends!(deleting_an_endpoint_settles_its_pending_deliveries, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(503));
    let ep_id = subscribe(&app, &key, &receiver, json!(["*"])).await;
    let event = publish_type(&app, &key, "order.created", json!({})).await;
    let id = only_delivery(&app, &key, &event).await;
    receiver.wait_for(1, WAIT).await;
    let deleted = app.request("DELETE", &format!("/v1/endpoints/{ep_id}"), Some(&key), None).await;
    assert_eq!(deleted.status, 204);
    let d = wait_delivery(&app, &key, &id, "failed", WAIT).await;
    assert_eq!(d["last_error"], "endpoint deleted", "{d:#}");
});

both_backends!(hostile_schemas_are_refused_and_the_server_keeps_serving, |app: TestApp| async move {
    let key = app.default_key.clone();
    // The schema that used to overflow the stack on the first publish of its type: `not`
    // nested deep around a `$ref` back to the top; and shallower, and a remote `$ref`.
    let nest = |levels: usize| {
        let mut schema = json!({"$ref": "#"});
        for _ in 0..levels {
            schema = json!({"not": schema});
        }
        schema
    };
    for (name, schema) in [
        ("evil.deep", nest(120)),
        ("evil.loop", nest(3)),
        ("evil.remote", json!({"$ref": "https://example.com/schema.json"})),
        // The loop hidden where the check does not look for schemas.
        ("evil.hidden", json!({"$ref": "#/x", "x": {"not": {"$ref": "#/x"}}})),
        ("evil.pattern", json!({"properties": {"a": {"type": "string", "pattern": "(a+)+\\1"}}})),
    ] {
        let r = app.post("/v1/event-types", &key, json!({"name": name, "schema": schema})).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(has_issue_at(&r, &[json!(["schema"])]), "{name}: {}", r.text);
        // Nothing was registered: publishing the type is not validated against anything.
        publish(&app, &key, json!({"type": name, "data": {"a": "x"}})).await;
    }
    assert_eq!(app.get("/healthz", &key).await.status, 200);

    // What the old validator skipped is enforced now.
    let schema = json!({
        "type": "object",
        "properties": {
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "email": {"type": "string", "format": "email"},
            "kind": {"enum": ["card", "bank"]},
            "iban": {"type": "string"}
        },
        "if": {"properties": {"kind": {"const": "bank"}}},
        "then": {"required": ["iban"]}
    });
    post_status(&app, &key, "/v1/event-types", json!({"name": "pay.made", "schema": schema}), 201).await;
    let bad = app
        .post(
            "/v1/events",
            &key,
            json!({"type": "pay.made", "data": {"currency": "euro", "email": "nope", "kind": "bank"}}),
        )
        .await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
    for path in [json!(["data", "currency"]), json!(["data", "email"]), json!(["data"])] {
        assert!(has_issue_at(&bad, std::slice::from_ref(&path)), "{path}: {}", bad.text);
    }
    publish(
        &app,
        &key,
        json!({"type": "pay.made", "data": {"currency": "EUR", "email": "a@b.example", "kind": "card"}}),
    )
    .await;
});
