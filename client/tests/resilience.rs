//! The transport against a scripted fake herald: a real actix-web server on 127.0.0.1 that
//! answers each request with the next planned answer and logs what it received, so every
//! test asserts on what the server saw as well as on what the client returned.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use futures_util::stream;
use herald_client::{Client, ClientBuilder, Error, NewEvent, PathSegment, StreamOptions};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The fake herald
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
enum Body {
    Json(String),
    /// An event stream: each string is one chunk; `hang` keeps the response open afterwards.
    Sse {
        chunks: Vec<String>,
        hang: bool,
    },
}

/// One planned answer.
#[derive(Clone)]
struct Plan {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
    delay: Duration,
}

impl Plan {
    fn json(status: u16, body: Value) -> Plan {
        Plan { status, headers: Vec::new(), body: Body::Json(body.to_string()), delay: Duration::ZERO }
    }

    fn error(status: u16, code: &str, message: &str) -> Plan {
        Plan::json(status, json!({"code": code, "message": message}))
    }

    fn ok() -> Plan {
        Plan::json(200, json!({"ok": true}))
    }

    /// A publish's `202`.
    fn published() -> Plan {
        Plan::json(
            202,
            json!({"id": "evt_1", "type": "order.created", "created_at": "2026-01-01T00:00:00.000Z",
                   "seq": 1, "delivery_count": 0}),
        )
    }

    fn sse(chunks: Vec<String>) -> Plan {
        Plan {
            status: 200,
            headers: Vec::new(),
            body: Body::Sse { chunks, hang: false },
            delay: Duration::ZERO,
        }
    }

    fn sse_then_hang(chunks: Vec<String>) -> Plan {
        Plan {
            status: 200,
            headers: Vec::new(),
            body: Body::Sse { chunks, hang: true },
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl ToString) -> Plan {
        self.headers.push((name, value.to_string()));
        self
    }

    fn after(mut self, delay: Duration) -> Plan {
        self.delay = delay;
        self
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: HashMap<String, String>,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct State {
    script: Arc<Mutex<VecDeque<Plan>>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    state.log.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query,
        headers,
        at: Instant::now(),
    });
    let plan = state.script.lock().unwrap().pop_front();
    let Some(plan) = plan else {
        // A test that sends more than it planned fails on this rather than passing by luck.
        return HttpResponse::build(StatusCode::IM_A_TEAPOT)
            .json(json!({"code": "SCRIPT_EXHAUSTED", "message": "no planned answer left"}));
    };
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let mut response = HttpResponse::build(StatusCode::from_u16(plan.status).unwrap());
    for (name, value) in &plan.headers {
        response.insert_header((*name, value.as_str()));
    }
    match plan.body {
        Body::Json(body) => response.content_type("application/json").body(body),
        Body::Sse { chunks, hang } => {
            let chunks = stream::iter(chunks.into_iter().map(|c| Ok::<_, actix_web::Error>(Bytes::from(c))));
            response.content_type("text/event-stream");
            if hang {
                response.streaming(chunks.chain(stream::pending()))
            } else {
                // The body's end closes the connection: a disconnect, for the consumer.
                response.force_close().streaming(chunks)
            }
        }
    }
}

struct Fake {
    url: String,
    state: State,
    handle: ServerHandle,
}

impl Fake {
    async fn start(plans: impl IntoIterator<Item = Plan>) -> Fake {
        Fake::start_on(0, plans).await
    }

    async fn start_on(port: u16, plans: impl IntoIterator<Item = Plan>) -> Fake {
        let state = State::default();
        state.script.lock().unwrap().extend(plans);
        let data = web::Data::new(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind(("127.0.0.1", port))
                .expect("bind 127.0.0.1");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Fake { url: format!("http://{addr}"), state, handle }
    }

    fn push(&self, plan: Plan) {
        self.state.script.lock().unwrap().push_back(plan);
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.log.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }

    fn unused_plans(&self) -> usize {
        self.state.script.lock().unwrap().len()
    }

    /// A client for this fake with fast backoff and a short timeout.
    fn client(&self) -> ClientBuilder {
        Client::builder(&self.url)
            .api_key("hk_test")
            .backoff(Duration::from_millis(20), Duration::from_millis(200))
            .timeout(Duration::from_secs(2))
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Bounds a test: a bug fails it instead of hanging.
async fn within<T>(limit: Duration, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, test).await.expect("the test did not finish in time")
}

const LIMIT: Duration = Duration::from_secs(5);

fn gap(earlier: &Seen, later: &Seen) -> Duration {
    later.at.duration_since(earlier.at)
}

fn api_error(result: Result<impl std::fmt::Debug, Error>) -> herald_client::ApiError {
    match result {
        Err(Error::Api(e)) => e,
        other => panic!("expected Error::Api, got {other:?}"),
    }
}

fn event() -> NewEvent {
    NewEvent::new("order.created", json!({"order_id": 42}))
}

// ---------------------------------------------------------------------------------------------
// Retries, Retry-After and idempotency keys
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn retry_after_is_honoured_and_every_try_of_a_post_carries_one_idempotency_key() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::error(429, "RATE_LIMITED", "slow down").header("retry-after", 1),
            Plan::published(),
        ])
        .await;
        let client = fake.client().build();
        let started = Instant::now();
        let published = client.publish(&event()).await.expect("the retry succeeds");
        assert_eq!((published.id.as_str(), published.seq), ("evt_1", 1));
        assert!(started.elapsed() >= Duration::from_millis(900), "returned after {:?}", started.elapsed());

        let seen = fake.seen();
        assert_eq!(seen.len(), 2, "one 429, one retry");
        assert!(seen.iter().all(|s| s.method == "POST" && s.path == "/v1/events"));
        assert!(
            gap(&seen[0], &seen[1]) >= Duration::from_millis(900),
            "retried after {:?}",
            gap(&seen[0], &seen[1])
        );
        let key = seen[0].header("idempotency-key").expect("an Idempotency-Key on the first try");
        assert!(!key.is_empty());
        assert_eq!(seen[1].header("idempotency-key"), Some(key), "the retry repeats the key");
        assert!(seen.iter().all(|s| s.header("authorization") == Some("Bearer hk_test")));
        assert!(seen.iter().all(|s| s.header("content-type") == Some("application/json")));

        // Another publish gets another key.
        fake.push(Plan::published());
        client.publish(&event()).await.unwrap();
        let third = &fake.seen()[2];
        assert_ne!(third.header("idempotency-key"), Some(key), "each publish has its own key");
        assert!(third.header("idempotency-key").is_some_and(|k| !k.is_empty()));

        // A caller's key is the one sent, on every try.
        fake.push(Plan::error(503, "UNAVAILABLE", "database down"));
        fake.push(Plan::published());
        client.publish_with_key(&event(), "order-42-created").await.expect("the retry succeeds");
        let seen = fake.seen();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[3].header("idempotency-key"), Some("order-42-created"));
        assert_eq!(seen[4].header("idempotency-key"), Some("order-42-created"));
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn server_errors_are_retried_with_backoff_then_the_last_error_is_returned() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::error(503, "UNAVAILABLE", "database down"),
            Plan::error(500, "INTERNAL_ERROR", "internal error"),
            Plan::ok(),
        ])
        .await;
        let client = fake.client().max_retries(3).build();
        let body = client.openapi().await.expect("the third try succeeds");
        assert_eq!(body, json!({"ok": true}));
        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        // Equal jitter: the first delay is in [10, 20) ms, the second in [20, 40) ms.
        assert!(gap(&seen[0], &seen[1]) >= Duration::from_millis(9), "{:?}", gap(&seen[0], &seen[1]));
        assert!(gap(&seen[1], &seen[2]) >= Duration::from_millis(19), "{:?}", gap(&seen[1], &seen[2]));
        // GETs carry no idempotency key.
        assert!(seen.iter().all(|s| s.method == "GET" && s.header("idempotency-key").is_none()));

        // max_retries(2): three tries, then the last answer's error, parsed.
        let client = fake.client().max_retries(2).build();
        fake.push(Plan::error(503, "UNAVAILABLE", "first"));
        fake.push(Plan::error(500, "INTERNAL_ERROR", "second"));
        fake.push(
            Plan::json(
                503,
                json!({"code": "UNAVAILABLE", "message": "third",
                       "issues": [{"path": ["database"], "message": "unreachable"}]}),
            )
            .header("x-request-id", "req_3"),
        );
        fake.push(Plan::ok()); // must not be reached
        let e = api_error(client.openapi().await);
        assert_eq!((e.status, e.code.as_str(), e.message.as_str()), (503, "UNAVAILABLE", "third"));
        assert_eq!(e.issues.len(), 1);
        assert_eq!(e.issues[0].path, vec![PathSegment::Key("database".into())]);
        assert_eq!(e.issues[0].message, "unreachable");
        assert_eq!(e.request_id.as_deref(), Some("req_3"));
        assert_eq!(fake.count(), 6, "1 + max_retries tries");
        assert_eq!(fake.unused_plans(), 1);
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_client_error_is_not_retried() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::json(
                400,
                json!({"code": "VALIDATION_ERROR", "message": "Invalid payload",
                       "issues": [{"path": ["items", 2, "sku"], "message": "required"},
                                  {"path": [], "message": "whole body"}]}),
            ),
            Plan::published(),
        ])
        .await;
        let client = fake.client().build();
        let result = client.publish(&event()).await;
        let error = result.as_ref().unwrap_err().clone();
        assert!(!error.is_retriable());
        let e = api_error(result);
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (400, "VALIDATION_ERROR", "Invalid payload")
        );
        assert_eq!(
            e.issues[0].path,
            vec![PathSegment::Key("items".into()), PathSegment::Index(2), PathSegment::Key("sku".into())]
        );
        assert_eq!(e.issues[0].message, "required");
        assert!(e.issues[1].path.is_empty());
        assert_eq!(fake.count(), 1, "exactly one request");
        assert_eq!(fake.unused_plans(), 1);
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn refused_connections_and_slow_answers() {
    within(LIMIT, async {
        // A port with nothing listening.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = Client::builder(format!("http://127.0.0.1:{port}"))
            .api_key("hk_test")
            .backoff(Duration::from_millis(20), Duration::from_millis(200))
            .max_retries(1)
            .build();
        match client.openapi().await {
            Err(Error::Connect(why)) => assert!(!why.is_empty()),
            other => panic!("expected Error::Connect, got {other:?}"),
        }

        let fake = Fake::start([Plan::ok().after(Duration::from_millis(1500))]).await;
        let client = fake.client().timeout(Duration::from_millis(200)).max_retries(0).build();
        let started = Instant::now();
        match client.openapi().await {
            Err(Error::Timeout) => {}
            other => panic!("expected Error::Timeout, got {other:?}"),
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(180) && took < Duration::from_millis(1000), "took {took:?}");
        assert_eq!(fake.count(), 1);
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_retry_after_beyond_max_retry_wait_ends_the_call_at_once() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::error(429, "RATE_LIMITED", "over the limit").header("retry-after", 30),
            Plan::ok(),
        ])
        .await;
        let client = fake.client().max_retry_wait(Duration::from_secs(2)).build();
        let started = Instant::now();
        let e = api_error(client.openapi().await);
        assert_eq!((e.status, e.code.as_str()), (429, "RATE_LIMITED"));
        assert!(started.elapsed() < Duration::from_millis(500), "waited {:?}", started.elapsed());
        assert_eq!(fake.count(), 1);
        fake.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The circuit breaker
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn the_circuit_breaker_opens_probes_once_and_closes_or_reopens() {
    within(LIMIT, async {
        let fake = Fake::start(std::iter::repeat_n(Plan::error(500, "INTERNAL_ERROR", "boom"), 5)).await;
        let open_for = Duration::from_millis(500);
        let client = fake.client().max_retries(0).circuit_breaker(5, open_for).build();
        for i in 0..5 {
            assert_eq!(client.openapi().await.unwrap_err().status(), Some(500), "call {i}");
        }
        assert!(client.circuit_open());
        fake.push(Plan::ok()); // must not be reached while open
        match client.openapi().await {
            Err(Error::CircuitOpen { retry_in }) => {
                assert!(retry_in > Duration::ZERO && retry_in <= open_for, "{retry_in:?}");
            }
            other => panic!("expected Error::CircuitOpen, got {other:?}"),
        }
        assert_eq!(fake.count(), 5, "the sixth call sent nothing");

        // After open_for, one probe goes; a concurrent call is refused while it is out.
        tokio::time::sleep(open_for + Duration::from_millis(50)).await;
        fake.state.script.lock().unwrap().clear();
        fake.push(Plan::ok().after(Duration::from_millis(300)));
        fake.push(Plan::ok()); // would answer the second call if it were let through
        let probe = client.openapi();
        let second = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let result = client.openapi().await;
            (result, fake.count())
        };
        let (probe, (second, count_during_probe)) = futures_util::future::join(probe, second).await;
        assert!(probe.is_ok(), "{probe:?}");
        assert!(matches!(second, Err(Error::CircuitOpen { .. })), "{second:?}");
        assert_eq!(count_during_probe, 6, "only the probe reached the server");
        assert_eq!(fake.count(), 6);
        assert!(!client.circuit_open(), "the probe's success closed it");

        // Closed: calls flow again.
        client.openapi().await.expect("closed circuit");
        assert_eq!(fake.count(), 7);

        // Open it again; a failed probe re-opens it at once.
        for _ in 0..5 {
            fake.push(Plan::error(500, "INTERNAL_ERROR", "boom"));
        }
        for _ in 0..5 {
            assert_eq!(client.openapi().await.unwrap_err().status(), Some(500));
        }
        assert_eq!(fake.count(), 12);
        assert!(matches!(client.openapi().await, Err(Error::CircuitOpen { .. })));
        tokio::time::sleep(open_for + Duration::from_millis(50)).await;
        fake.push(Plan::error(503, "UNAVAILABLE", "still down"));
        assert_eq!(client.openapi().await.unwrap_err().status(), Some(503), "the probe went through");
        assert_eq!(fake.count(), 13);
        fake.push(Plan::ok());
        assert!(
            matches!(client.openapi().await, Err(Error::CircuitOpen { .. })),
            "one failed probe re-opens"
        );
        assert_eq!(fake.count(), 13);
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_cancelled_probe_does_not_wedge_the_circuit() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::error(500, "INTERNAL_ERROR", "boom"),
            Plan::error(500, "INTERNAL_ERROR", "boom"),
            Plan::ok().after(Duration::from_millis(2000)),
        ])
        .await;
        let open_for = Duration::from_millis(300);
        let client = fake.client().max_retries(0).circuit_breaker(2, open_for).build();
        for _ in 0..2 {
            assert_eq!(client.openapi().await.unwrap_err().status(), Some(500));
        }
        tokio::time::sleep(open_for + Duration::from_millis(50)).await;
        // The probe's caller gives up (its own timeout, a dropped request): the probe future
        // is dropped with no outcome.
        let gave_up = tokio::time::timeout(Duration::from_millis(100), client.openapi()).await;
        assert!(gave_up.is_err(), "the probe was still out: {gave_up:?}");
        assert_eq!(fake.count(), 3, "the probe reached the server");

        // The breaker must not wait for an outcome that will never come.
        tokio::time::sleep(open_for + Duration::from_millis(50)).await;
        fake.state.script.lock().unwrap().clear();
        fake.push(Plan::ok());
        client.openapi().await.expect("a new probe goes through and closes the circuit");
        assert_eq!(fake.count(), 4);
        assert!(!client.circuit_open());
        fake.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// RateLimit-* pacing
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_spent_rate_limit_waits_for_its_reset() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::ok()
                .header("ratelimit-limit", 5)
                .header("ratelimit-remaining", 0)
                .header("ratelimit-reset", 1),
            Plan::ok()
                .header("ratelimit-limit", 5)
                .header("ratelimit-remaining", 4)
                .header("ratelimit-reset", 1),
            Plan::ok(),
        ])
        .await;
        let client = fake.client().build();
        client.openapi().await.unwrap();
        let started = Instant::now();
        client.openapi().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900), "waited only {:?}", started.elapsed());
        // Allowance left: no wait.
        let started = Instant::now();
        client.openapi().await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(300), "waited {:?}", started.elapsed());

        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        assert!(
            gap(&seen[0], &seen[1]) >= Duration::from_millis(900),
            "sent after {:?}",
            gap(&seen[0], &seen[1])
        );
        assert!(
            gap(&seen[1], &seen[2]) < Duration::from_millis(300),
            "sent after {:?}",
            gap(&seen[1], &seen[2])
        );
        fake.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

fn listed(n: u64) -> Value {
    json!({"id": format!("evt_{n}"), "type": "order.created", "created_at": "2026-01-01T00:00:00.000Z",
           "seq": n, "data": {"n": n}})
}

#[actix_rt::test]
async fn lists_follow_next_cursor() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::json(200, json!({"data": [listed(1), listed(2)], "next_cursor": "c1"})),
            Plan::json(200, json!({"data": [listed(3), listed(4)], "next_cursor": "c2"})),
            Plan::json(200, json!({"data": [listed(5)], "next_cursor": null})),
            Plan::json(200, json!({"data": [listed(6)], "next_cursor": null})), // must not be reached
        ])
        .await;
        let client = fake.client().build();
        let mut events = client.events(&Default::default());
        let mut ids = Vec::new();
        while let Some(event) = events.next().await {
            let event = event.expect("every page loads");
            ids.push(event.id);
        }
        assert_eq!(ids, ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5"]);

        let seen = fake.seen();
        assert_eq!(seen.len(), 3, "three pages, then the stream ends");
        assert!(seen.iter().all(|s| s.method == "GET" && s.path == "/v1/events"));
        assert!(seen.iter().all(|s| s.query("limit").is_some_and(|l| l.parse::<u32>().is_ok())));
        let cursors: Vec<Option<&str>> = seen.iter().map(|s| s.query("cursor")).collect();
        assert_eq!(cursors, [None, Some("c1"), Some("c2")]);
        assert!(seen.iter().all(|s| s.query.iter().filter(|(n, _)| n == "cursor").count() <= 1));

        // Filters reach the server beside the cursor.
        fake.state.script.lock().unwrap().clear();
        fake.push(Plan::json(200, json!({"data": [], "next_cursor": null})));
        let query = herald_client::EventQuery { event_type: Some("order.*".into()), ..Default::default() };
        assert!(client.events(&query).all().await.unwrap().is_empty());
        assert_eq!(fake.seen()[3].query("type"), Some("order.*"));
        fake.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A DELETE whose answer was lost
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_delete_whose_answer_was_lost_then_404_is_a_success() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::json(204, json!({})).after(Duration::from_millis(800)),
            Plan::error(404, "NOT_FOUND", "no such endpoint"),
        ])
        .await;
        let client = fake.client().timeout(Duration::from_millis(200)).max_retries(2).build();
        client.delete_endpoint("ep_1").await.expect("the retry's 404 means the first try deleted it");
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.method == "DELETE" && s.path == "/v1/endpoints/ep_1"));

        // Without a lost answer, a 404 is a 404 (and is not retried).
        fake.push(Plan::error(404, "NOT_FOUND", "no such endpoint"));
        fake.push(Plan::json(204, json!({})));
        let e = api_error(client.delete_endpoint("ep_2").await);
        assert_eq!((e.status, e.code.as_str()), (404, "NOT_FOUND"));
        assert_eq!(fake.count(), 3);

        // A 404 to a GET after a timeout is still an error.
        fake.state.script.lock().unwrap().clear();
        fake.push(Plan::ok().after(Duration::from_millis(800)));
        fake.push(Plan::error(404, "NOT_FOUND", "no such endpoint"));
        let e = api_error(client.endpoint("ep_3").await);
        assert_eq!(e.status, 404);
        assert_eq!(fake.count(), 5);
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_delete_refused_before_it_was_sent_then_404_is_a_404() {
    within(LIMIT, async {
        // herald is down at the first try (nothing listens: the request is never sent) and
        // back for the retry, which answers 404: nothing was deleted, so the 404 stands.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = Client::builder(format!("http://127.0.0.1:{port}"))
            .api_key("hk_test")
            .backoff(Duration::from_millis(400), Duration::from_millis(400))
            .max_retries(1)
            .build();
        let herald_comes_back = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Fake::start_on(port, [Plan::error(404, "NOT_FOUND", "no such endpoint")]).await
        };
        let (result, fake) =
            futures_util::future::join(client.delete_endpoint("ep_typo"), herald_comes_back).await;
        let e = api_error(result);
        assert_eq!((e.status, e.code.as_str()), (404, "NOT_FOUND"));
        let seen = fake.seen();
        assert_eq!(seen.len(), 1, "the first try never arrived");
        assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("DELETE", "/v1/endpoints/ep_typo"));
        fake.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The event stream consumer
// ---------------------------------------------------------------------------------------------

fn sse_event(n: u64) -> String {
    format!(
        "event: order.created\nid: {n}\ndata: {{\"id\":\"evt_{n}\",\"type\":\"order.created\",\"version\":1,\"created_at\":\"2026-01-01T00:00:00.000Z\",\"data\":{{}}}}\n\n"
    )
}

#[actix_rt::test]
async fn the_stream_resumes_with_last_event_id_and_hands_each_event_over_once() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::sse(vec!["retry: 50\n\n".into(), sse_event(1), sse_event(2), sse_event(3)]),
            // A resume repeats the last event.
            Plan::sse(vec![sse_event(3), sse_event(4), sse_event(5)]),
            Plan::error(503, "UNAVAILABLE", "restarting"),
            Plan::sse_then_hang(vec![": keep-alive\n\n".into(), sse_event(6)]),
        ])
        .await;
        let client = fake.client().build();
        let mut events = client.subscribe(StreamOptions {
            idle_timeout: Some(Duration::from_secs(3)),
            max_reconnect_delay: Some(Duration::from_millis(500)),
            ..Default::default()
        });
        let mut seqs = Vec::new();
        while seqs.len() < 6 {
            let event = tokio::time::timeout(Duration::from_secs(2), events.next())
                .await
                .unwrap_or_else(|_| panic!("no event after {seqs:?}"))
                .expect("the stream does not end")
                .expect("no error item");
            assert_eq!(event.event_type, "order.created");
            let envelope = event.envelope::<Value>().expect("the envelope parses");
            assert_eq!(envelope.id, format!("evt_{}", event.seq));
            seqs.push(event.seq);
            assert_eq!(events.last_seq(), Some(event.seq));
        }
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        assert_eq!(events.last_seq(), Some(6));
        // Nothing more: no duplicate, no reconnect loop.
        assert!(tokio::time::timeout(Duration::from_millis(300), events.next()).await.is_err());

        let seen = fake.seen();
        assert_eq!(seen.len(), 4, "three reconnections");
        assert!(seen.iter().all(|s| s.method == "GET" && s.path == "/v1/events/stream"));
        assert!(seen.iter().all(|s| s.header("authorization") == Some("Bearer hk_test")));
        let resumed: Vec<Option<&str>> = seen.iter().map(|s| s.header("last-event-id")).collect();
        assert_eq!(resumed, [None, Some("3"), Some("5"), Some("5")]);
        // `retry: 50` sets the first reconnection delay (25 to 50 ms; 125 to 250 ms without it).
        assert!(gap(&seen[0], &seen[1]) < Duration::from_millis(125), "{:?}", gap(&seen[0], &seen[1]));
        fake.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_stream_sends_its_options_and_ends_on_401() {
    within(LIMIT, async {
        let fake = Fake::start([
            Plan::error(401, "UNAUTHORIZED", "bad key"),
            Plan::sse_then_hang(vec![sse_event(42)]), // must not be reached
        ])
        .await;
        let client = fake.client().build();
        let filter = json!({"data.amount": {"$gt": 100}});
        let mut events = client.subscribe(StreamOptions {
            types: vec!["order.*".into(), "payment.completed".into()],
            filter: Some(filter.clone()),
            after_seq: Some(41),
            idle_timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        });
        let last = tokio::time::timeout(Duration::from_secs(2), events.next()).await.expect("an item");
        match last {
            Some(Err(Error::Api(e))) => assert_eq!((e.status, e.code.as_str()), (401, "UNAUTHORIZED")),
            other => panic!("expected the 401, got {other:?}"),
        }
        let end = tokio::time::timeout(Duration::from_secs(1), events.next()).await.expect("ends at once");
        assert!(end.is_none(), "the 401 is the last item");
        assert_eq!(events.last_seq(), Some(41));

        let seen = fake.seen();
        assert_eq!(seen.len(), 1, "a 401 is not retried");
        assert_eq!(seen[0].path, "/v1/events/stream");
        assert_eq!(seen[0].query("types"), Some("order.*,payment.completed"));
        let sent: Value = serde_json::from_str(seen[0].query("filter").expect("a filter parameter")).unwrap();
        assert_eq!(sent, filter);
        assert_eq!(seen[0].header("last-event-id"), Some("41"));
        assert_eq!(seen[0].header("authorization"), Some("Bearer hk_test"));
        fake.stop().await;
    })
    .await;
}
