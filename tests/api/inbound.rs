//! Section 7: inbound webhooks. Signatures are computed here, from each provider's
//! published format, independently of herald's signing code.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_backends;
use crate::helpers::{Reply, TestApp, assert_error, read_reply};
use crate::sse_client::{auth, connect};

pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Stripe: `t=<ts>,v1=<hex HMAC-SHA256 of "{t}.{body}">`.
fn stripe_header(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", hex::encode(hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes())))
}

/// Standard Webhooks: base64 HMAC of "{id}.{t}.{body}" keyed by the decoded whsec_ secret.
fn standard_signature(secret: &str, id: &str, t: i64, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mac = hmac_sha256(&key, format!("{id}.{t}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac))
}

pub(crate) async fn create_source(app: &TestApp, kind: &str, secret: &str) -> String {
    let r = app
        .post("/v1/sources", &app.default_key, json!({"name": kind, "kind": kind, "secret": secret}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["ingest_path"], format!("/v1/inbound/{}", r.body["id"].as_str().unwrap()));
    r.body["id"].as_str().unwrap().to_string()
}

pub(crate) async fn deliver(app: &TestApp, source: &str, headers: &[(&str, String)], body: &str) -> Reply {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/inbound/{source}")))
        .insert_header(("Content-Type", "application/json"));
    for (k, v) in headers {
        req = req.insert_header((*k, v.as_str()));
    }
    read_reply(req.send_body(body.to_string()).await.unwrap()).await
}

async fn receipts(app: &TestApp, source: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/sources/{source}/receipts?limit=250"), &app.default_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

const STRIPE_SECRET: &str = "whsec_stripe_test_secret_1";

both_backends!(stripe_signatures_are_verified, |app: TestApp| async move {
    let src = create_source(&app, "stripe", STRIPE_SECRET).await;
    let body = r#"{"id":"evt_1Stripe","type":"payment_intent.succeeded","data":{"object":{"amount":2000}}}"#;
    let ok =
        deliver(&app, &src, &[("Stripe-Signature", stripe_header(STRIPE_SECRET, now_s(), body))], body).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["received"], true);
    assert_eq!(ok.body["duplicate"], false);
    let event_id = ok.body["event_id"].as_str().unwrap();
    let event = app.get(&format!("/v1/events/{event_id}"), &app.default_key).await;
    assert_eq!(event.body["type"], "stripe.payment_intent.succeeded");
    assert_eq!(event.body["data"]["data"]["object"]["amount"], 2000);
    assert_eq!(event.body["correlation_id"], "evt_1Stripe", "the provider's id is kept");

    let tampered = body.replace("2000", "9000");
    let sig = stripe_header(STRIPE_SECRET, now_s(), body);
    assert_error(&deliver(&app, &src, &[("Stripe-Signature", sig)], &tampered).await, 401, "UNAUTHORIZED");
    let wrong = stripe_header("whsec_other", now_s(), body);
    assert_error(&deliver(&app, &src, &[("Stripe-Signature", wrong)], body).await, 401, "UNAUTHORIZED");
    let stale = stripe_header(STRIPE_SECRET, now_s() - 600, body);
    assert_error(&deliver(&app, &src, &[("Stripe-Signature", stale)], body).await, 401, "UNAUTHORIZED");
    let future = stripe_header(STRIPE_SECRET, now_s() + 600, body);
    assert_error(&deliver(&app, &src, &[("Stripe-Signature", future)], body).await, 401, "UNAUTHORIZED");
    assert_error(&deliver(&app, &src, &[], body).await, 401, "UNAUTHORIZED");

    // Rotation: the provider signs with both secrets; either verifies.
    let t = now_s();
    let body2 = r#"{"id":"evt_2Stripe","type":"charge.refunded"}"#;
    let both = format!(
        "{},v1={}",
        stripe_header("whsec_brand_new", t, body2),
        hex::encode(hmac_sha256(STRIPE_SECRET.as_bytes(), format!("{t}.{body2}").as_bytes()))
    );
    assert_eq!(deliver(&app, &src, &[("Stripe-Signature", both)], body2).await.status, 200);

    let all = receipts(&app, &src).await;
    assert_eq!(all.len(), 7);
    assert_eq!(all.iter().filter(|r| r["verified"] == true).count(), 2);
    assert!(
        all.iter()
            .filter(|r| r["verified"] == false)
            .all(|r| r["error"].is_string() && r["event_id"].is_null())
    );
    let events = app.get("/v1/events?type=stripe.*", &app.default_key).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 2, "rejections never create events");
});

both_backends!(github_and_standard_and_hmac_sources_verify, |app: TestApp| async move {
    let gh = create_source(&app, "github", "gh-secret-123").await;
    let body = r#"{"action":"opened","number":7}"#;
    let sig = format!("sha256={}", hex::encode(hmac_sha256(b"gh-secret-123", body.as_bytes())));
    let headers = [
        ("X-Hub-Signature-256", sig.clone()),
        ("X-GitHub-Delivery", "d-1".to_string()),
        ("X-GitHub-Event", "pull_request".to_string()),
    ];
    let r = deliver(&app, &gh, &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ev = app.get(&format!("/v1/events/{}", r.body["event_id"].as_str().unwrap()), &app.default_key).await;
    assert_eq!(ev.body["type"], "github.pull_request.opened");
    let missing_id = [("X-Hub-Signature-256", sig), ("X-GitHub-Event", "push".to_string())];
    assert_error(&deliver(&app, &gh, &missing_id, body).await, 400, "VALIDATION_ERROR");

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sw = create_source(&app, "standard-webhooks", secret).await;
    let body = r#"{"type":"invoice.paid","amount":5}"#;
    let t = now_s();
    let ok = [
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", t.to_string()),
        ("webhook-signature", standard_signature(secret, "msg_1", t, body)),
    ];
    let r = deliver(&app, &sw, &ok, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let swapped_id = [
        ("webhook-id", "msg_2".to_string()),
        ("webhook-timestamp", t.to_string()),
        ("webhook-signature", standard_signature(secret, "msg_1", t, body)),
    ];
    assert_error(&deliver(&app, &sw, &swapped_id, body).await, 401, "UNAUTHORIZED");

    let hm = create_source(&app, "hmac-sha256", "plain-secret-1").await;
    let body = r#"{"type":"thing.happened"}"#;
    let sig =
        format!("sha256={}", hex::encode(hmac_sha256(b"plain-secret-1", format!("{t}.{body}").as_bytes())));
    let headers = [
        ("X-Webhook-Id", "h-1".to_string()),
        ("X-Webhook-Timestamp", t.to_string()),
        ("X-Webhook-Signature", sig),
    ];
    let r = deliver(&app, &hm, &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ev = app.get(&format!("/v1/events/{}", r.body["event_id"].as_str().unwrap()), &app.default_key).await;
    assert_eq!(ev.body["type"], "thing.happened");
});

both_backends!(bad_inbound_requests_get_clear_errors, |app: TestApp| async move {
    assert_error(&deliver(&app, "src_nope", &[], "{}").await, 404, "NOT_FOUND");
    let gh = create_source(&app, "github", "gh-secret-123").await;
    let not_json = "this is not json";
    let sig = format!("sha256={}", hex::encode(hmac_sha256(b"gh-secret-123", not_json.as_bytes())));
    let headers = [("X-Hub-Signature-256", sig), ("X-GitHub-Delivery", "d-9".to_string())];
    assert_error(&deliver(&app, &gh, &headers, not_json).await, 400, "VALIDATION_ERROR");
    let huge = format!("{{\"pad\":\"{}\"}}", "a".repeat(300 * 1024));
    let r = app
        .client
        .post(app.url(&format!("/v1/inbound/{gh}")))
        .insert_header(("Content-Type", "application/json"))
        .send_body(huge)
        .await;
    if let Ok(r) = r {
        assert_error(&read_reply(r).await, 413, "PAYLOAD_TOO_LARGE");
    }
    let all = receipts(&app, &gh).await;
    assert!(!all.is_empty() && all.iter().all(|r| r["error"].is_string()));
    let bad_kind = app
        .post("/v1/sources", &app.default_key, json!({"name": "x", "kind": "paypal", "secret": "12345678"}))
        .await;
    assert_error(&bad_kind, 400, "VALIDATION_ERROR");
    // Another organisation cannot see this source.
    let (_, other) = app.new_org("other", 100_000).await;
    assert_error(&app.get(&format!("/v1/sources/{gh}/receipts"), &other).await, 404, "NOT_FOUND");
});

both_backends!(fifty_concurrent_copies_make_one_event_and_one_fan_out, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = crate::receiver::Receiver::start().await;
    let ep =
        app.post("/v1/endpoints", &key, json!({"url": receiver.url("/hook"), "events": ["stripe.*"]})).await;
    assert_eq!(ep.status, 201, "{}", ep.text);
    let mut stream = connect(&app, "/v1/events/stream?types=stripe.*", &[auth(&key)]).await;

    let src = create_source(&app, "stripe", STRIPE_SECRET).await;
    let body = r#"{"id":"evt_dup","type":"charge.succeeded","data":{}}"#.to_string();
    let sig = stripe_header(STRIPE_SECRET, now_s(), &body);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, body, sig) = (app.url(&format!("/v1/inbound/{src}")), body.clone(), sig.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let res = awc::Client::default()
                .post(url)
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("Stripe-Signature", sig))
                .send_body(body)
                .await
                .unwrap();
            read_reply(res).await
        }));
    }
    let mut fresh = 0;
    let mut event_ids = BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["duplicate"] == false {
            fresh += 1;
        }
        event_ids.insert(r.body["event_id"].as_str().unwrap().to_string());
    }
    assert_eq!(fresh, 1, "exactly one copy is new");
    assert_eq!(event_ids.len(), 1, "every copy names the same event");
    let events = app.get("/v1/events?type=stripe.*", &key).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1);
    let all = receipts(&app, &src).await;
    assert_eq!(all.len(), 50);
    assert_eq!(all.iter().filter(|r| r["duplicate"] == true).count(), 49);

    // The one event reaches the subscribed endpoint once and the open stream.
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["type"], "stripe.charge.succeeded");
    let (_, t, _) = stream.next_event(Duration::from_secs(10)).await.expect("the stream sees it");
    assert_eq!(t, "stripe.charge.succeeded");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1, "one fan-out");
});
