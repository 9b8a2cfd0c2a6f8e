//! The `VerifiedWebhook` extractor in a real actix-web server, fed by awc: signatures of both
//! schemes, timestamps, redeliveries (one after another and concurrent), handlers that fail,
//! secret rotation, limits, and interoperability with the `standardwebhooks` crate.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use herald_client::receiver::{VerifiedWebhook, WebhookConfig};
use herald_client::webhook::{SignatureScheme, generate_secret, signature_headers};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The receiving app
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct State {
    /// The ids `/webhooks` handled, in order.
    handled: Arc<Mutex<Vec<String>>>,
    /// How many times `/flaky`'s handler ran.
    flaky_runs: Arc<AtomicUsize>,
    /// How long `/webhooks`' handler works before answering.
    work: Duration,
}

async fn on_webhook(webhook: VerifiedWebhook, state: web::Data<State>) -> HttpResponse {
    if !state.work.is_zero() {
        tokio::time::sleep(state.work).await;
    }
    assert_eq!(webhook.id(), webhook.id, "the header id is the envelope's");
    state.handled.lock().unwrap().push(webhook.id().to_owned());
    webhook.handled();
    HttpResponse::NoContent().finish()
}

/// Fails the first time without calling `handled()`, so the redelivery is processed again.
async fn on_flaky(webhook: VerifiedWebhook, state: web::Data<State>) -> HttpResponse {
    let run = state.flaky_runs.fetch_add(1, Ordering::SeqCst) + 1;
    if run == 1 {
        return HttpResponse::InternalServerError().finish();
    }
    webhook.handled();
    HttpResponse::NoContent().finish()
}

struct Receiver {
    url: String,
    state: State,
    handle: ServerHandle,
}

impl Receiver {
    async fn start(config: WebhookConfig) -> Receiver {
        Receiver::start_with(config, Duration::ZERO).await
    }

    async fn start_with(config: WebhookConfig, work: Duration) -> Receiver {
        let state = State { work, ..State::default() };
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(config.clone())
                .app_data(data.clone())
                .route("/webhooks", web::post().to(on_webhook))
                .route("/flaky", web::post().to(on_flaky))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .expect("bind 127.0.0.1:0");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Receiver { url: format!("http://{addr}"), state, handle }
    }

    fn handled(&self) -> Vec<String> {
        self.state.handled.lock().unwrap().clone()
    }

    /// POSTs `body` with `headers` to `path`; answers the status and the body.
    async fn post(&self, path: &str, headers: &[(&str, String)], body: impl Into<Bytes>) -> Answer {
        let mut request = awc::Client::default()
            .post(format!("{}{path}", self.url))
            .timeout(Duration::from_secs(3))
            .content_type("application/json");
        for (name, value) in headers {
            request = request.insert_header((*name, value.as_str()));
        }
        let mut response = request.send_body(body.into()).await.expect("the receiver answers");
        let body = response.body().await.expect("the answer's body");
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Answer { status: response.status().as_u16(), body, retry_after }
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Bytes,
    retry_after: Option<String>,
}

impl Answer {
    fn code(&self) -> Option<String> {
        let json: Value = serde_json::from_slice(&self.body).ok()?;
        json["code"].as_str().map(str::to_owned)
    }
}

/// Bounds a test: a bug fails it instead of hanging.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), test).await.expect("the test did not finish in time")
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Now, after waiting out the end of the current second if it is close, so that a request
/// signed with `now() ± n` is checked within the same second.
async fn now_early_in_a_second() -> i64 {
    let into_second = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_millis();
    if into_second > 600 {
        tokio::time::sleep(Duration::from_millis(u64::from(1010 - into_second))).await;
    }
    now()
}

/// herald's envelope for `id`.
fn envelope(id: &str) -> String {
    json!({"id": id, "type": "order.created", "version": 1, "created_at": "2026-01-01T00:00:00.000Z",
           "data": {"order_id": 42}})
    .to_string()
}

/// Standard Webhooks headers for `body`, signed with `secrets`.
fn signed(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> Vec<(&'static str, String)> {
    signature_headers(SignatureScheme::StandardWebhooks, id, timestamp, body.as_bytes(), secrets)
}

fn config(secret: &str) -> WebhookConfig {
    WebhookConfig::new(secret).tolerance(Duration::from_secs(300))
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_valid_webhook_is_handled_once() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret)).await;
        let body = envelope("evt_valid");
        let answer = app.post("/webhooks", &signed(&[&secret], "evt_valid", now(), &body), body).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert!(answer.body.is_empty());
        assert_eq!(app.handled(), ["evt_valid"]);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn forged_and_unsigned_requests_are_refused() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret)).await;
        let body = envelope("evt_1");
        let headers = signed(&[&secret], "evt_1", now(), &body);

        let tampered = body.replace("42", "43");
        assert_ne!(tampered, body);
        let answer = app.post("/webhooks", &headers, tampered).await;
        assert_eq!(answer.status, 401, "tampered body: {answer:?}");
        assert_eq!(answer.code().as_deref(), Some("UNAUTHORIZED"));

        // The signature covers the id too.
        let mut other_id = headers.clone();
        other_id[0].1 = "evt_2".into();
        let answer = app.post("/webhooks", &other_id, body.clone()).await;
        assert_eq!((answer.status, answer.code().as_deref()), (401, Some("UNAUTHORIZED")), "other id");

        let wrong = signed(&[&generate_secret()], "evt_1", now(), &body);
        let answer = app.post("/webhooks", &wrong, body.clone()).await;
        assert_eq!((answer.status, answer.code().as_deref()), (401, Some("UNAUTHORIZED")), "wrong secret");

        let answer = app.post("/webhooks", &[], body.clone()).await;
        assert_eq!((answer.status, answer.code().as_deref()), (401, Some("UNAUTHORIZED")), "no headers");
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let partial: Vec<_> = headers.iter().filter(|(n, _)| *n != missing).cloned().collect();
            let answer = app.post("/webhooks", &partial, body.clone()).await;
            assert_eq!(
                (answer.status, answer.code().as_deref()),
                (401, Some("UNAUTHORIZED")),
                "no {missing}"
            );
        }
        assert!(app.handled().is_empty());

        // The untouched request still goes through: nothing above reserved its id.
        let answer = app.post("/webhooks", &headers, body).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(app.handled(), ["evt_1"]);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn timestamps_outside_the_tolerance_are_refused_either_way() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret)).await;
        for (id, offset) in [("evt_old", -301), ("evt_future", 301)] {
            let body = envelope(id);
            let now = now_early_in_a_second().await;
            let answer = app.post("/webhooks", &signed(&[&secret], id, now + offset, &body), body).await;
            assert_eq!(
                (answer.status, answer.code().as_deref()),
                (401, Some("UNAUTHORIZED")),
                "{offset:+} s"
            );
        }
        // Just inside the tolerance, either way, is accepted.
        for (id, offset) in [("evt_recent", -299), ("evt_soon", 299)] {
            let body = envelope(id);
            let now = now_early_in_a_second().await;
            let answer = app.post("/webhooks", &signed(&[&secret], id, now + offset, &body), body).await;
            assert_eq!(answer.status, 204, "{offset:+} s: {answer:?}");
        }
        assert_eq!(app.handled(), ["evt_recent", "evt_soon"]);
        app.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Redeliveries
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_redelivery_is_answered_204_without_running_the_handler() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret)).await;
        let body = envelope("evt_dup");
        let answer =
            app.post("/webhooks", &signed(&[&secret], "evt_dup", now() - 5, &body), body.clone()).await;
        assert_eq!(answer.status, 204);
        // herald's retry: the same id, a fresh timestamp, a new signature.
        let answer = app.post("/webhooks", &signed(&[&secret], "evt_dup", now(), &body), body.clone()).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert!(answer.body.is_empty());
        assert_eq!(app.handled(), ["evt_dup"], "the handler did not run again");
        // A forged copy of a handled id is still refused: the signature is checked first.
        let headers = signed(&[&generate_secret()], "evt_dup", now(), &body);
        assert_eq!(app.post("/webhooks", &headers, body).await.status, 401);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn concurrent_copies_of_one_id_are_handled_once() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start_with(config(&secret), Duration::from_millis(300)).await;
        let body = envelope("evt_burst");
        let headers = signed(&[&secret], "evt_burst", now(), &body);
        let copies = (0..20).map(|_| app.post("/webhooks", &headers, body.clone()));
        let answers = futures_util::future::join_all(copies).await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert!(statuses.iter().all(|s| *s == 204 || *s == 503), "{statuses:?}");
        assert_eq!(app.handled(), ["evt_burst"], "the handler ran exactly once");
        let busy: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
        assert!(!busy.is_empty(), "copies sent while the handler works are told to retry: {statuses:?}");
        for answer in &busy {
            assert_eq!(answer.retry_after.as_deref(), Some("1"));
            assert_eq!(answer.code().as_deref(), Some("UNAVAILABLE"));
        }
        // herald retries each 503: the id is handled by now.
        for _ in &busy {
            let headers = signed(&[&secret], "evt_burst", now(), &body);
            let answer = app.post("/webhooks", &headers, body.clone()).await;
            assert_eq!(answer.status, 204, "{answer:?}");
        }
        assert_eq!(app.handled(), ["evt_burst"]);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_webhook_not_marked_handled_is_processed_again() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret)).await;
        let body = envelope("evt_flaky");
        let answer = app.post("/flaky", &signed(&[&secret], "evt_flaky", now(), &body), body.clone()).await;
        assert_eq!(answer.status, 500);
        assert_eq!(app.state.flaky_runs.load(Ordering::SeqCst), 1);
        let answer = app.post("/flaky", &signed(&[&secret], "evt_flaky", now(), &body), body.clone()).await;
        assert_eq!(answer.status, 204, "the redelivery was processed: {answer:?}");
        assert_eq!(app.state.flaky_runs.load(Ordering::SeqCst), 2);
        // Handled now: a third copy does not run the handler.
        let answer = app.post("/flaky", &signed(&[&secret], "evt_flaky", now(), &body), body).await;
        assert_eq!(answer.status, 204);
        assert_eq!(app.state.flaky_runs.load(Ordering::SeqCst), 2);
        app.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Rotation, the hmac-sha256 scheme, limits
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn during_a_rotation_either_secret_verifies() {
    within(async {
        let (old, new) = (generate_secret(), generate_secret());
        let app = Receiver::start(config(&new).also_accept(&old)).await;

        let body = envelope("evt_old_only");
        let answer = app.post("/webhooks", &signed(&[&old], "evt_old_only", now(), &body), body).await;
        assert_eq!(answer.status, 204, "signed with the old secret only: {answer:?}");

        // What herald sends during a rotation: both signatures, space-separated.
        let body = envelope("evt_both");
        let headers = signed(&[&old, &new], "evt_both", now(), &body);
        let signature = &headers.iter().find(|(n, _)| *n == "webhook-signature").unwrap().1;
        assert_eq!(signature.split(' ').count(), 2, "{signature}");
        assert_eq!(app.post("/webhooks", &headers, body).await.status, 204);

        // A retired secret next to a current one: the current one verifies.
        let body = envelope("evt_retired_first");
        let headers = signed(&[&generate_secret(), &new], "evt_retired_first", now(), &body);
        assert_eq!(app.post("/webhooks", &headers, body).await.status, 204);

        // Neither secret: refused.
        let body = envelope("evt_neither");
        let headers = signed(&[&generate_secret(), &generate_secret()], "evt_neither", now(), &body);
        assert_eq!(app.post("/webhooks", &headers, body).await.status, 401);

        assert_eq!(app.handled(), ["evt_old_only", "evt_both", "evt_retired_first"]);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_hmac_sha256_scheme() {
    within(async {
        // This scheme keys the HMAC with the secret string's own bytes.
        let secret = "a plain secret, not whsec_";
        let app = Receiver::start(config(secret).scheme(SignatureScheme::HmacSha256)).await;
        let body = envelope("evt_hmac");
        let headers =
            signature_headers(SignatureScheme::HmacSha256, "evt_hmac", now(), body.as_bytes(), &[secret]);
        assert!(headers.iter().any(|(n, v)| *n == "X-Webhook-Signature" && v.starts_with("sha256=")));

        let answer = app.post("/webhooks", &headers, body.replace("42", "43")).await;
        assert_eq!((answer.status, answer.code().as_deref()), (401, Some("UNAUTHORIZED")), "tampered");
        // Standard Webhooks headers are not what this endpoint is configured for.
        let answer = app.post("/webhooks", &signed(&[secret], "evt_hmac", now(), &body), body.clone()).await;
        assert_eq!(answer.status, 401, "wrong scheme");

        let answer = app.post("/webhooks", &headers, body).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(app.handled(), ["evt_hmac"]);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn an_oversized_body_is_413_and_a_signed_non_json_body_is_400() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret).max_body_bytes(1024)).await;

        let big = json!({"id": "evt_big", "type": "order.created", "version": 1,
                         "created_at": "2026-01-01T00:00:00.000Z", "data": {"pad": "x".repeat(4096)}})
        .to_string();
        let answer = app.post("/webhooks", &signed(&[&secret], "evt_big", now(), &big), big).await;
        assert_eq!((answer.status, answer.code().as_deref()), (413, Some("PAYLOAD_TOO_LARGE")));

        let answer =
            app.post("/webhooks", &signed(&[&secret], "evt_text", now(), "not json"), "not json").await;
        assert_eq!((answer.status, answer.code().as_deref()), (400, Some("VALIDATION_ERROR")));
        // JSON, but not an envelope.
        let answer = app.post("/webhooks", &signed(&[&secret], "evt_arr", now(), "[1,2]"), "[1,2]").await;
        assert_eq!((answer.status, answer.code().as_deref()), (400, Some("VALIDATION_ERROR")));
        assert!(app.handled().is_empty());

        // The refused id was released: the corrected delivery is handled.
        let body = envelope("evt_text");
        let answer = app.post("/webhooks", &signed(&[&secret], "evt_text", now(), &body), body).await;
        assert_eq!(answer.status, 204);
        assert_eq!(app.handled(), ["evt_text"]);
        app.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Interoperability with the Standard Webhooks project's own library
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_request_signed_by_the_standardwebhooks_crate_is_accepted() {
    within(async {
        let secret = generate_secret();
        let app = Receiver::start(config(&secret)).await;
        let body = envelope("msg_interop");
        let timestamp = now();
        let signature = standardwebhooks::Webhook::new(&secret)
            .expect("a whsec_ secret")
            .sign("msg_interop", timestamp, body.as_bytes())
            .expect("signs");
        let headers = [
            ("webhook-id", "msg_interop".to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        let answer = app.post("/webhooks", &headers, body).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(app.handled(), ["msg_interop"]);
        app.stop().await;
    })
    .await;
}

fn http_headers(pairs: &[(&'static str, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().unwrap());
    }
    map
}

#[test]
fn herald_signatures_verify_with_the_standardwebhooks_crate() {
    let (secret, other) = (generate_secret(), generate_secret());
    let body = envelope("evt_interop");
    let headers = signed(&[&secret], "evt_interop", now(), &body);
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    verifier.verify(body.as_bytes(), &http_headers(&headers)).expect("herald's signature verifies");
    assert!(verifier.verify(body.replace("42", "43").as_bytes(), &http_headers(&headers)).is_err());
    assert!(
        standardwebhooks::Webhook::new(&other)
            .unwrap()
            .verify(body.as_bytes(), &http_headers(&headers))
            .is_err()
    );

    // A rotation's two signatures: either secret verifies the one header.
    let both = signed(&[&other, &secret], "evt_interop", now(), &body);
    for s in [&secret, &other] {
        standardwebhooks::Webhook::new(s)
            .unwrap()
            .verify(body.as_bytes(), &http_headers(&both))
            .expect("rotation");
    }
    // And the same bytes as the crate's own signature.
    let ours = &headers.iter().find(|(n, _)| *n == "webhook-signature").unwrap().1;
    let timestamp: i64 = headers[1].1.parse().unwrap();
    assert_eq!(*ours, verifier.sign("evt_interop", timestamp, body.as_bytes()).unwrap());
}
