//! The `herald-client` library against the real herald: every family of calls, typed
//! answers and typed errors, lists that follow their cursors, and the event stream across
//! a herald restart.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use herald_client::{
    Client, DeadLetterQuery, DeadLetterReplay, DeliveryQuery, EndpointQuery, EndpointUpdate, Error,
    EventQuery, NewEndpoint, NewEvent, NewEventType, NewOrg, NewSource, OrgUpdate, Replay, StreamOptions,
    StreamTokenRequest,
};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, fresh_database};
use crate::node::Node;
use crate::receiver::{Behaviour, Receiver};

const WAIT: Duration = Duration::from_secs(15);

pub(crate) fn client_for(app: &TestApp) -> Client {
    Client::builder(&app.address).api_key(&app.default_key).admin_token(ADMIN_TOKEN).build()
}

/// Polls `check` every 20 ms until it answers `Some`, or panics after `WAIT` naming `what`.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn api_error(result: Result<impl std::fmt::Debug, Error>) -> herald_client::ApiError {
    match result {
        Err(Error::Api(e)) => e,
        other => panic!("expected herald's error JSON, got {other:?}"),
    }
}

both_backends!(organisations_keys_and_event_types, |app: TestApp| async move {
    let herald = client_for(&app);
    assert_eq!(herald.health().await.unwrap().status, "ok");
    assert!(herald.ready().await.is_ok());

    let org = herald.create_org(&NewOrg::new("acme")).await.unwrap();
    assert_eq!(org.name, "acme");
    let update = OrgUpdate { max_endpoints: Some(3), ..Default::default() };
    assert_eq!(herald.update_org(&org.id, &update).await.unwrap().max_endpoints, 3);
    let key = herald.create_org_api_key(&org.id).await.unwrap();
    assert!(key.key.starts_with("hk_"));
    let listed = herald.org_api_keys(&org.id, &Default::default()).all().await.unwrap();
    assert!(listed.iter().any(|k| k.id == key.id && k.prefix == key.prefix));

    // The new organisation's key sees its own keys, and not the default organisation's.
    let acme = Client::new(&app.address, &key.key);
    let second = acme.create_api_key().await.unwrap();
    let own: Vec<String> = acme.api_keys(&Default::default()).map(|k| k.unwrap().id).collect().await;
    assert!(own.contains(&key.id) && own.contains(&second.id), "{own:?}");
    acme.revoke_api_key(&second.id).await.unwrap();
    let revoked = Client::new(&app.address, &second.key);
    let e = eventually("the revoked key refused", || async {
        revoked.event_types(&Default::default()).all().await.err()
    })
    .await;
    assert_eq!((e.status(), e.code()), (Some(401), Some("UNAUTHORIZED")));
    herald.revoke_org_api_key(&org.id, &key.id).await.unwrap();

    let mut order = NewEventType::new("order.created");
    order.schema = Some(json!({"type": "object", "required": ["amount"]}));
    let created = herald.create_event_type(&order).await.unwrap();
    assert_eq!((created.name.as_str(), created.latest_version), ("order.created", 1));
    let types = herald.event_types(&Default::default()).all().await.unwrap();
    assert!(types.iter().any(|t| t.name == "order.created"));

    // A schema failure is a typed validation error with its issues.
    let e = api_error(herald.publish(&NewEvent::new("order.created", json!({"amount_missing": 1}))).await);
    assert_eq!((e.status, e.code.as_str()), (400, "VALIDATION_ERROR"));
    assert!(!e.issues.is_empty(), "{e}");
    // Admin routes refuse an API key.
    let plain = Client::new(&app.address, &app.default_key);
    assert_eq!(api_error(plain.create_org(&NewOrg::new("x")).await).status, 401);
});

both_backends!(endpoints_events_and_deliveries, |app: TestApp| async move {
    let herald = client_for(&app);
    let receiver = Receiver::start().await;
    let mut new = NewEndpoint::new(receiver.url("/hook"), ["order.*"]);
    new.description = Some("orders".into());
    let endpoint = herald.create_endpoint(&new).await.unwrap();
    assert!(endpoint.secret.as_deref().is_some_and(|s| s.starts_with("whsec_")));
    assert_eq!(endpoint.status, "active");

    let published = herald.publish(&NewEvent::new("order.created", json!({"n": 1}))).await.unwrap();
    assert_eq!(published.delivery_count, 1);
    // One idempotency key, one event, however often it is sent.
    let event = NewEvent::new("order.created", json!({"n": 2}));
    let first = herald.publish_with_key(&event, "key-1").await.unwrap();
    let again = herald.publish_with_key(&event, "key-1").await.unwrap();
    assert_eq!(first.id, again.id);
    let waited = herald.publish_and_wait(&NewEvent::new("order.paid", json!({"n": 3}))).await.unwrap();
    assert_eq!(waited.deliveries.len(), 1);
    assert_eq!(waited.deliveries[0].status, "succeeded", "{waited:?}");
    receiver.wait_for(3, WAIT).await;

    let detail = herald.event(&published.id).await.unwrap();
    assert_eq!(detail.deliveries[0].endpoint_id, endpoint.id);
    let seen = herald.endpoint(&endpoint.id).await.unwrap();
    assert_eq!(seen.description.as_deref(), Some("orders"));
    assert_eq!(seen.circuit.as_ref().map(|c| c.state.as_str()), Some("closed"));
    assert!(seen.secret.is_none(), "a secret is shown only on create and rotate");
    let listed = herald.endpoints(&EndpointQuery::default()).all().await.unwrap();
    assert_eq!(listed.len(), 1);

    let secret = herald.endpoint_secret(&endpoint.id).await.unwrap();
    assert_eq!(Some(secret.secret.clone()), endpoint.secret);
    let rotated = herald.rotate_secret(&endpoint.id).await.unwrap();
    assert_ne!(rotated.secret, secret.secret);
    assert!(rotated.previous_secret_expires_at.is_some());

    let update = EndpointUpdate { filter: Some(json!({"data.n": {"$gt": 1}})), ..Default::default() };
    herald.update_endpoint(&endpoint.id, &update).await.unwrap();
    let tested =
        herald.test_filter(&endpoint.id, &json!({"type": "order.created", "data": {"n": 0}})).await.unwrap();
    assert!(!tested.matches);
    let test = herald.send_test(&endpoint.id).await.unwrap();
    assert!(test.delivery_id.is_some());

    let deliveries = herald.endpoint_deliveries(&endpoint.id, &DeliveryQuery::default()).all().await.unwrap();
    assert!(deliveries.len() >= 3, "{deliveries:?}");
    let one = eventually("the first delivery recorded", || async {
        let d = herald.delivery(&detail.deliveries[0].id).await.unwrap();
        (d.status == "succeeded").then_some(d)
    })
    .await;
    assert_eq!(one.attempts[0].status_code, Some(200));
    herald.retry_delivery(&one.id).await.unwrap();
    // Cancelling a delivery that is already final is a conflict, as a typed error.
    let succeeded = eventually("the retried delivery final", || async {
        let d = herald.delivery(&one.id).await.unwrap();
        (d.status == "succeeded" && d.attempt_count == 2).then_some(d)
    })
    .await;
    assert_eq!(api_error(herald.cancel_delivery(&succeeded.id).await).status, 409);
    let since = herald::timefmt::rfc3339(herald::ids::now_ms() - 60_000);
    let everything = Replay { status: Some("all".into()), ..Replay::new(since) };
    assert!(herald.replay(&endpoint.id, &everything).await.unwrap().replayed >= 3);

    // Unknown ids and another organisation's ids are 404s.
    assert_eq!(api_error(herald.endpoint("ep_nope").await).code, "NOT_FOUND");
    let (_, other_key) = app.new_org("other", 1000).await;
    let other = Client::new(&app.address, other_key);
    assert_eq!(api_error(other.endpoint(&endpoint.id).await).status, 404);
    assert_eq!(api_error(other.delete_endpoint(&endpoint.id).await).status, 404);
    // An id is one path segment, whatever it holds.
    assert_eq!(api_error(herald.endpoint("../events").await).status, 404);

    herald.delete_endpoint(&endpoint.id).await.unwrap();
    assert_eq!(api_error(herald.endpoint(&endpoint.id).await).status, 404);
});

both_backends!(lists_follow_their_cursors, |app: TestApp| async move {
    let herald = client_for(&app);
    let mut ids = Vec::new();
    for n in 0..230 {
        let kind = if n % 2 == 0 { "list.even" } else { "list.odd" };
        ids.push(herald.publish(&NewEvent::new(kind, json!({"n": n}))).await.unwrap().id);
    }
    // Newest first, over three pages of 100.
    let listed: Vec<String> =
        herald.events(&EventQuery::default()).map_ok(|e| e.id).try_collect().await.unwrap();
    ids.reverse();
    assert_eq!(listed, ids);
    let even = EventQuery { event_type: Some("list.even".into()), ..Default::default() };
    let evens = herald.events(&even).all().await.unwrap();
    assert_eq!(evens.len(), 115);
    assert!(evens.iter().all(|e| e.event_type == "list.even"));
});

both_backends!(dead_letters_and_sources, |app: TestApp| async move {
    let herald = client_for(&app);
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(500));
    let endpoint = herald.create_endpoint(&NewEndpoint::new(receiver.url("/hook"), ["job.*"])).await.unwrap();
    herald.publish(&NewEvent::new("job.failed", json!({}))).await.unwrap();
    let query = DeadLetterQuery { endpoint_id: Some(endpoint.id.clone()), ..Default::default() };
    let dead = eventually("a dead letter", || async {
        let list = herald.dead_letters(&query).all().await.unwrap();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(dead[0].status, "dead");
    assert!(dead[0].event.is_some());
    receiver.set_default(Behaviour::ok());
    let replayed =
        herald.replay_dead_letters(&DeadLetterReplay::ids(vec![dead[0].id.clone()])).await.unwrap();
    assert_eq!(replayed.replayed, 1);
    eventually("the replayed dead letter delivered", || async {
        (herald.delivery(&dead[0].id).await.unwrap().status == "succeeded").then_some(())
    })
    .await;

    let source =
        herald.create_source(&NewSource::new("github", "github", "s3cret-long-enough")).await.unwrap();
    assert_eq!(source.ingest_path, format!("/v1/inbound/{}", source.id));
    assert!(herald.receipts(&source.id, &Default::default()).all().await.unwrap().is_empty());
    let token =
        herald.stream_token(&StreamTokenRequest { types: Some(vec!["job.*".to_string()]) }).await.unwrap();
    assert!(!token.token.is_empty());
    assert!(herald.stats(60).await.is_ok());
    assert!(herald.openapi().await.unwrap()["paths"]["/v1/events"].is_object());
});

/// A port nothing listens on now, for a node that must come back at the same address.
pub(crate) fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string()
}

/// The stream consumer across a herald crash: events published before, and right after
/// the restart (before the consumer has reconnected), each arrive once, in order.
async fn stream_survives_a_restart(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    let port = free_port();
    let log = format!("client-stream-{backend:?}-{}", std::process::id());
    let env = [("HERALD_SERVER__PORT", port.as_str())];
    let mut node = Node::start_with(&db.url, &log, &env);
    let key = node.key.clone().expect("a first start prints a key");
    let herald = Client::new(&node.address, &key);

    let got: Rc<RefCell<Vec<(u64, String)>>> = Rc::default();
    let options = StreamOptions { types: vec!["order.*".into()], after_seq: Some(0), ..Default::default() };
    let mut events = herald.subscribe(options);
    let sink = got.clone();
    actix_web::rt::spawn(async move {
        while let Some(event) = events.next().await {
            let event = event.expect("the stream ends only on a fatal error");
            let id = event.envelope::<serde_json::Value>().unwrap().id;
            sink.borrow_mut().push((event.seq, id));
        }
    });
    let mut published = Vec::new();
    for n in 0..5 {
        published.push(herald.publish(&NewEvent::new("order.created", json!({"n": n}))).await.unwrap().id);
    }
    eventually("five events streamed", || async { (got.borrow().len() >= 5).then_some(()) }).await;

    node.kill();
    let mut node = Node::start_with(&db.url, &format!("{log}-2"), &env);
    for n in 5..10 {
        published.push(herald.publish(&NewEvent::new("order.created", json!({"n": n}))).await.unwrap().id);
    }
    herald.publish(&NewEvent::new("other.thing", json!({}))).await.unwrap();
    eventually("ten events streamed", || async { (got.borrow().len() >= 10).then_some(()) }).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;

    let got = got.borrow().clone();
    let ids: Vec<String> = got.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids, published, "every event once, in order");
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "sequence numbers increase: {got:?}");
    node.kill();
}

#[actix_web::test]
async fn the_stream_consumer_resumes_across_a_restart_sqlite() {
    stream_survives_a_restart(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_stream_consumer_resumes_across_a_restart_postgres() {
    stream_survives_a_restart(Backend::Postgres).await;
}
