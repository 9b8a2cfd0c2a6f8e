//! Cluster mode: several herald processes (the real binary) on one PostgreSQL database.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, assert_error, fresh_database, read_reply};
use crate::node::Node;
use crate::receiver::{Behaviour, Receiver, summary};
use crate::sse_client::{auth, from_response};

async fn post_event(address: &str, key: &str, body: serde_json::Value) -> Option<String> {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let mut res =
        client.post(format!("{address}/v1/events")).insert_header(auth(key)).send_json(&body).await.ok()?;
    if res.status() != 202 {
        return None;
    }
    let body: serde_json::Value = res.json().await.ok()?;
    body["id"].as_str().map(str::to_string)
}

#[actix_web::test]
async fn an_event_published_on_one_process_reaches_a_stream_on_another() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    let a = Node::start(&db, "herald-cluster-a");
    let b = Node::start(&db, "herald-cluster-b");
    let key = a.key.clone().expect("the first node printed a key");
    assert!(b.key.is_none(), "only the first start bootstraps");

    let client = awc::Client::builder().timeout(Duration::from_secs(3600)).finish();
    let res =
        client.get(format!("{}/v1/events/stream", b.address)).insert_header(auth(&key)).send().await.unwrap();
    let mut stream = from_response(res);
    let mut seqs = Vec::new();
    for i in 0..10 {
        let client = awc::Client::default();
        let mut r = client
            .post(format!("{}/v1/events", a.address))
            .insert_header(auth(&key))
            .send_json(&json!({"type": "cluster.hello", "data": {"i": i}}))
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        seqs.push(body["seq"].as_i64().unwrap());
    }
    let got: Vec<i64> =
        stream.take_events(seqs.len(), Duration::from_secs(10)).await.iter().map(|e| e.0).collect();
    assert_eq!(got, seqs, "node B's stream has node A's events in order");

    let ready = awc::Client::default()
        .get(format!("{}/readyz", b.address))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(ready["nodes_alive"], 2, "{ready}");
}

#[actix_web::test]
async fn a_node_killed_mid_run_loses_nothing() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(Duration::from_millis(20)));
    let mut a = Node::start(&db, "herald-kill-a");
    let b = Node::start(&db, "herald-kill-b");
    let key = a.key.clone().unwrap();
    let client = awc::Client::default();
    let ep = client
        .post(format!("{}/v1/endpoints", b.address))
        .insert_header(auth(&key))
        .send_json(&json!({"url": receiver.url("/hook"), "events": ["*"], "max_in_flight": 8}))
        .await
        .unwrap();
    assert_eq!(ep.status(), 201);

    const TOTAL: usize = 5000;
    const KILL_AFTER: usize = 2000;
    let accepted = std::rc::Rc::new(std::cell::RefCell::new(BTreeSet::new()));
    let mut killed_at = None;
    let mut i = 0;
    while i < TOTAL {
        let a_alive = killed_at.is_none();
        let mut batch = Vec::new();
        for j in 0..8 {
            let n = i + j;
            let target = if a_alive && n % 2 == 0 { a.address.clone() } else { b.address.clone() };
            let key = key.clone();
            batch.push(actix_web::rt::spawn(async move {
                post_event(&target, &key, json!({"type": "load.kill", "data": {"n": n}})).await
            }));
        }
        for t in batch {
            if let Some(id) = t.await.unwrap() {
                accepted.borrow_mut().insert(id);
            }
        }
        i += 8;
        if killed_at.is_none() && i >= KILL_AFTER {
            a.kill();
            killed_at = Some(Instant::now());
        }
    }
    let accepted = accepted.borrow().clone();
    assert!(accepted.len() >= TOTAL - 8, "publishes to the live node were all accepted ({})", accepted.len());

    receiver.wait_for_ids(&accepted, None, Duration::from_secs(60)).await;
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.received() {
        *per_id.entry(r.webhook_id().unwrap_or_default().to_string()).or_default() += 1;
    }
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    println!(
        "cluster kill: {} accepted, 0 lost, {duplicates} duplicate deliveries, all delivered {:.1}s after the kill",
        accepted.len(),
        killed_at.unwrap().elapsed().as_secs_f64()
    );
}

#[actix_web::test]
async fn sigterm_drains_and_exits_cleanly() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    let mut a = Node::start(&db, "herald-term-a");
    let key = a.key.clone().unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(3600)).finish();
    let res =
        client.get(format!("{}/v1/events/stream", a.address)).insert_header(auth(&key)).send().await.unwrap();
    let mut stream = from_response(res);
    assert!(post_event(&a.address, &key, json!({"type": "x.y", "data": {}})).await.is_some());
    assert!(stream.next_event(Duration::from_secs(5)).await.is_some());
    let started = Instant::now();
    let exit = a.terminate().await;
    let took = started.elapsed();
    assert!(exit.success(), "exit status {exit}");
    // Streams are closed first, so the open one does not hold the drain to its 5 s bound.
    assert!(took < Duration::from_secs(4), "exited in {took:?}");
    let mut told = false;
    while let Some(frame) = stream.next_frame(Duration::from_secs(2)).await {
        told |= frame == crate::sse_client::Frame::Comment("server shutting down; reconnect".into());
    }
    assert!(told, "the stream was told before it closed");
    println!("SIGTERM: exited in {:.2}s with an open stream", took.as_secs_f64());
}

// ---------------------------------------------------------------------------------------
// One owner per endpoint: changes reach it, retries and limits hold across nodes
// ---------------------------------------------------------------------------------------

/// Upper bound for anything that should happen within milliseconds.
const WAIT: Duration = Duration::from_secs(10);
/// How soon a change answered by any node must be in force on the node sending the work.
const PROPAGATION: Duration = Duration::from_secs(1);

async fn sleep(d: Duration) {
    actix_web::rt::time::sleep(d).await;
}

async fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        sleep(at - now).await;
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}")).to_string()
}

/// Milliseconds from `from` to `at`, negative when `at` came first.
fn signed_ms(at: Instant, from: Instant) -> i64 {
    if at >= from { (at - from).as_millis() as i64 } else { -((from - at).as_millis() as i64) }
}

/// Talks to any node with one API key, over one connection pool.
struct Api {
    client: awc::Client,
    key: String,
}

impl Api {
    fn new(key: &str) -> Self {
        Self {
            client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
            key: key.to_string(),
        }
    }

    async fn call(&self, address: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let m = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self.client.request(m, format!("{address}{path}")).insert_header(auth(&self.key));
        let res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        };
        read_reply(res.unwrap_or_else(|e| panic!("{method} {address}{path}: {e}"))).await
    }

    async fn get(&self, address: &str, path: &str) -> Reply {
        self.call(address, "GET", path, None).await
    }

    async fn post(&self, address: &str, path: &str, body: Value) -> Reply {
        self.call(address, "POST", path, Some(body)).await
    }

    async fn patch(&self, address: &str, path: &str, body: Value) -> Reply {
        self.call(address, "PATCH", path, Some(body)).await
    }

    async fn delete(&self, address: &str, path: &str) -> Reply {
        self.call(address, "DELETE", path, None).await
    }

    /// Creates an endpoint on that node; its id.
    async fn endpoint(&self, address: &str, body: Value) -> String {
        let r = self.post(address, "/v1/endpoints", body.clone()).await;
        assert_eq!(r.status, 201, "POST /v1/endpoints {body}: {}", r.text);
        text(&r.body["id"])
    }

    /// Publishes on that node; the event id.
    async fn publish(&self, address: &str, event_type: &str, data: Value) -> String {
        let r = self.post(address, "/v1/events", json!({"type": event_type, "data": data})).await;
        assert_eq!(r.status, 202, "publish on {address}: {}", r.text);
        text(&r.body["id"])
    }

    /// `n` events, one after another, on that node; their ids.
    async fn publish_many(&self, address: &str, event_type: &str, n: usize) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for i in 0..n {
            ids.insert(self.publish(address, event_type, json!({"n": i})).await);
        }
        ids
    }

    /// The id of an event's only delivery.
    async fn only_delivery(&self, address: &str, event_id: &str) -> String {
        let r = self.get(address, &format!("/v1/events/{event_id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let list = r.body["deliveries"].as_array().unwrap_or_else(|| panic!("no deliveries: {}", r.text));
        assert_eq!(list.len(), 1, "{}", r.text);
        text(&list[0]["id"])
    }

    /// Polls a delivery until its status is `status`; the delivery.
    async fn wait_delivery(&self, address: &str, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.get(address, &format!("/v1/deliveries/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if r.body["status"] == status {
                return r.body;
            }
            assert!(Instant::now() < deadline, "delivery {id} not {status} within {timeout:?}: {}", r.text);
            sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A node's id, from its `/readyz`.
async fn node_id(node: &Node) -> String {
    let r = read_reply(awc::Client::default().get(format!("{}/readyz", node.address)).send().await.unwrap())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    text(&r.body["node"])
}

/// Polls the endpoint (through `nodes[0]`) until some node owns it; that node's index.
async fn owner_of(api: &Api, nodes: &[&Node], endpoint_id: &str) -> usize {
    let mut ids = Vec::new();
    for node in nodes {
        ids.push(node_id(node).await);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let r = api.get(&nodes[0].address, &format!("/v1/endpoints/{endpoint_id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if let Some(owner) = r.body["owner_node"].as_str() {
            return ids
                .iter()
                .position(|id| id == owner)
                .unwrap_or_else(|| panic!("owner_node {owner} is none of the running nodes {ids:?}"));
        }
        assert!(
            Instant::now() < deadline,
            "endpoint {endpoint_id} had no owner_node within {WAIT:?}: {}",
            r.text
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// When the first request reached `path`.
async fn first_at_path(receiver: &Receiver, path: &str, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = receiver.received().iter().find(|r| r.path == path) {
            return r.at;
        }
        assert!(
            Instant::now() < deadline,
            "no request reached {path} within {timeout:?}:\n{}",
            summary(&receiver.received())
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// When the request with this webhook id first arrived.
async fn arrival_of(receiver: &Receiver, id: &str, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = receiver.received().iter().find(|r| r.webhook_id() == Some(id)) {
            return r.at;
        }
        assert!(Instant::now() < deadline, "event {id} was not delivered within {timeout:?}");
        sleep(Duration::from_millis(1)).await;
    }
}

/// After a change that stops sending (disable, delete) answered at `changed`: after a
/// grace of 1.1 s, nothing more arrives for 1.5 s, and nothing arrived later than `limit`
/// after the change. How long after the change the last request arrived (ms; negative when
/// before it).
async fn assert_stopped(receiver: &Receiver, changed: Instant, limit: Duration, what: &str) -> i64 {
    sleep_until(changed + Duration::from_millis(1100)).await;
    let n = receiver.count();
    receiver.assert_count_stays(n, Duration::from_millis(1500)).await;
    let got = receiver.received();
    let late = got.iter().filter(|r| r.at > changed + limit).count();
    assert!(
        late == 0,
        "{what}: {late} request(s) arrived more than {limit:?} after the change was answered:\n{}",
        summary(&got[got.len().saturating_sub(20)..])
    );
    got.last().map_or(i64::MIN, |r| signed_ms(r.at, changed))
}

/// How many of `ids` the receiver got.
fn arrived_of(receiver: &Receiver, ids: &BTreeSet<String>) -> usize {
    receiver.received().iter().filter(|r| r.webhook_id().is_some_and(|id| ids.contains(id))).count()
}

#[actix_web::test]
async fn endpoint_changes_on_one_node_reach_the_owner_within_a_second() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    // One request at a time, each held IN_FLIGHT: a backlog drains at a known pace (60
    // events take 3 s at least), so there is always work a change must act on.
    const IN_FLIGHT: Duration = Duration::from_millis(50);
    const BACKLOG: usize = 60;
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(IN_FLIGHT));
    let a = Node::start(&db, "herald-propagate-a");
    let b = Node::start(&db, "herald-propagate-b");
    let nodes = [&a, &b];
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let ep_id = api
        .endpoint(&a.address, json!({"url": receiver.url("/hook"), "events": ["prop.*"], "max_in_flight": 1}))
        .await;
    let ep_path = format!("/v1/endpoints/{ep_id}");
    // In force PROPAGATION after the answer, give or take the one request already on its way.
    let limit = PROPAGATION + IN_FLIGHT;

    // A new URL, set on the node that does not send.
    api.publish_many(&a.address, "prop.url", BACKLOG).await;
    receiver.wait_for(1, WAIT).await;
    let owner = owner_of(&api, &nodes, &ep_id).await;
    let other = nodes[1 - owner];
    let r = api.patch(&other.address, &ep_path, json!({"url": receiver.url("/moved")})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let changed = Instant::now();
    let first_moved = first_at_path(&receiver, "/moved", WAIT).await;
    sleep_until(changed + limit + Duration::from_millis(200)).await;
    let got = receiver.received();
    let late_old = got.iter().filter(|r| r.path == "/hook" && r.at > changed + limit).count();
    assert!(
        late_old == 0,
        "{late_old} request(s) still went to the old URL more than {limit:?} after the change:\n{}",
        summary(&got)
    );
    let last_old =
        got.iter().filter(|r| r.path == "/hook").map(|r| r.at).max().expect("the old URL got some");
    let (moved_ms, old_ms) = (signed_ms(first_moved, changed), signed_ms(last_old, changed));

    // Disabled on the node that does not send: nothing more is sent.
    let disable_ids = api.publish_many(&b.address, "prop.disable", BACKLOG).await;
    receiver.wait_for(receiver.count() + 1, WAIT).await;
    let owner = owner_of(&api, &nodes, &ep_id).await;
    let other = nodes[1 - owner];
    let r = api.patch(&other.address, &ep_path, json!({"status": "disabled"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let changed = Instant::now();
    let disabled_ms = assert_stopped(&receiver, changed, limit, "disabled").await;
    let sent_of_backlog = arrived_of(&receiver, &disable_ids);
    assert!(sent_of_backlog < BACKLOG, "the backlog ran out before the change: it stopped nothing");

    // Enabled again, the work flows; then deleted on the node that does not send.
    let r = api.patch(&other.address, &ep_path, json!({"status": "active"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let delete_ids = api.publish_many(&a.address, "prop.delete", BACKLOG).await;
    receiver.wait_for(receiver.count() + 1, WAIT).await;
    let owner = owner_of(&api, &nodes, &ep_id).await;
    let other = nodes[1 - owner];
    let r = api.delete(&other.address, &ep_path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let changed = Instant::now();
    let deleted_ms = assert_stopped(&receiver, changed, limit, "deleted").await;
    assert!(arrived_of(&receiver, &delete_ids) < BACKLOG, "the backlog ran out before the delete");

    println!(
        "changes on the non-owner: new URL first used after {moved_ms} ms, old URL last used at {old_ms} ms; \
         last request after disable at {disabled_ms} ms, after delete at {deleted_ms} ms \
         (limit {} ms; {sent_of_backlog} of {BACKLOG} sent before the disable)",
        limit.as_millis()
    );
}

#[actix_web::test]
async fn a_key_revoked_on_one_node_stops_on_the_other_within_a_second() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    let a = Node::start(&db, "herald-revoke-a");
    let b = Node::start(&db, "herald-revoke-b");
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let made = api.post(&a.address, "/v1/api-keys", json!({})).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let doomed = Api::new(made.body["key"].as_str().unwrap());
    // Node B has the key in its cache before the revoke.
    assert_eq!(doomed.get(&b.address, "/v1/endpoints").await.status, 200);
    let id = text(&made.body["id"]);
    assert_eq!(api.delete(&a.address, &format!("/v1/api-keys/{id}")).await.status, 204);
    let revoked = Instant::now();
    loop {
        let r = doomed.get(&b.address, "/v1/endpoints").await;
        if r.status == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < PROPAGATION,
            "the revoked key still worked on node B after {PROPAGATION:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
    println!("key revoked on node A refused by node B after {} ms", revoked.elapsed().as_millis());
}

#[actix_web::test]
async fn a_retry_on_another_node_never_sends_twice() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    const HOLD: Duration = Duration::from_secs(2);
    // The test timeout (2 s) would end the attempt just as the receiver answers and retry
    // it: a second request that is not the manual retry's doing.
    let env = [("HERALD_DELIVERY__TIMEOUT", "10s")];
    let a = Node::start_with(&db.url, "herald-retry-a", &env);
    let b = Node::start_with(&db.url, "herald-retry-b", &env);
    let nodes = [&a, &b];
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(HOLD));
    let ep_id = api.endpoint(&a.address, json!({"url": receiver.url("/hook"), "events": ["retry.*"]})).await;

    let event_id = api.publish(&a.address, "retry.once", json!({})).await;
    let deadline = Instant::now() + WAIT;
    while receiver.in_flight() == 0 {
        assert!(Instant::now() < deadline, "the delivery never reached the receiver");
        sleep(Duration::from_millis(10)).await;
    }
    let delivery_id = api.only_delivery(&a.address, &event_id).await;
    let owner = owner_of(&api, &nodes, &ep_id).await;
    let other = nodes[1 - owner];
    let r = api.post(&other.address, &format!("/v1/deliveries/{delivery_id}/retry"), json!({})).await;
    assert_error(&r, 409, "CONFLICT");
    let retried = Instant::now();

    let done = api.wait_delivery(&other.address, &delivery_id, "succeeded", WAIT).await;
    assert_eq!(done["attempt_count"], 1, "{done:#}");
    sleep_until(retried + Duration::from_secs(4)).await;
    let copies = receiver.received().iter().filter(|r| r.webhook_id() == Some(event_id.as_str())).count();
    assert_eq!(copies, 1, "{}", summary(&receiver.received()));
    receiver.assert_count_stays(1, Duration::from_millis(500)).await;
    println!("retry on the non-owner while in flight: 409 ({}); the receiver got it once", r.body["message"]);
}

#[actix_web::test]
async fn a_failing_endpoint_is_disabled_once_in_a_cluster() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    let env = [("HERALD_DELIVERY__DISABLE_AFTER", "1s")];
    let a = Node::start_with(&db.url, "herald-disable-a", &env);
    let b = Node::start_with(&db.url, "herald-disable-b", &env);
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::status(500));
    let ep_id = api.endpoint(&a.address, json!({"url": receiver.url("/hook"), "events": ["doomed.*"]})).await;
    let ep_path = format!("/v1/endpoints/{ep_id}");
    for (i, node) in [&a, &b, &a].iter().enumerate() {
        api.publish(&node.address, "doomed.event", json!({"n": i})).await;
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    loop {
        let r = api.get(&b.address, &ep_path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["status"] == "disabled" {
            break;
        }
        assert!(Instant::now() < deadline, "not disabled within 15 s: {}", r.text);
        sleep(Duration::from_millis(50)).await;
    }
    let disabled_after = started.elapsed();
    // Both nodes look for failing endpoints every 250 ms: give a second announcement time.
    sleep(Duration::from_secs(3)).await;

    let mut seen = Vec::new();
    for node in [&a, &b] {
        let r = api.get(&node.address, "/v1/events?type=endpoint.disabled").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let events = r.body["data"].as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "exactly one endpoint.disabled, as seen on {}: {}", node.address, r.text);
        assert_eq!(events[0]["data"]["endpoint_id"], ep_id.as_str(), "{}", r.text);
        seen.push(text(&events[0]["id"]));
    }
    assert_eq!(seen[0], seen[1], "both nodes show the same event");
    println!(
        "two nodes: endpoint disabled {:.1}s after the first publish, announced once ({})",
        disabled_after.as_secs_f64(),
        seen[0]
    );
}

#[actix_web::test]
async fn max_in_flight_holds_across_nodes() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    const EVENTS: usize = 40;
    let a = Node::start(&db, "herald-mif-a");
    let b = Node::start(&db, "herald-mif-b");
    let nodes = [&a, &b];
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(Duration::from_millis(30)));
    api.endpoint(&b.address, json!({"url": receiver.url("/hook"), "events": ["mif.*"], "max_in_flight": 1}))
        .await;

    // Alternating between the nodes, 8 publishes at a time.
    let started = Instant::now();
    let mut ids = BTreeSet::new();
    for batch in 0..EVENTS / 8 {
        let sends = (0..8).map(|j| {
            let n = batch * 8 + j;
            let (api, node) = (&api, nodes[n % 2]);
            async move { api.publish(&node.address, "mif.event", json!({"n": n})).await }
        });
        ids.extend(join_all(sends).await);
    }
    receiver.wait_for_ids(&ids, None, Duration::from_secs(30)).await;
    let took = started.elapsed();
    let max = receiver.max_in_flight();
    println!(
        "max_in_flight 1 across two nodes: {EVENTS} events delivered in {:.2}s ({} requests), at most {max} at a time",
        took.as_secs_f64(),
        receiver.count()
    );
    assert_eq!(max, 1, "{}", summary(&receiver.received()));
}

#[actix_web::test]
async fn killing_the_owner_moves_its_endpoints_within_a_lease() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    const EVENTS: usize = 20;
    let a = Node::start(&db, "herald-handover-a");
    let b = Node::start(&db, "herald-handover-b");
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let receiver = Receiver::start().await;
    let ep_id =
        api.endpoint(&a.address, json!({"url": receiver.url("/hook"), "events": ["handover.*"]})).await;
    // A first delivery gives the endpoint its owner.
    api.publish(&a.address, "handover.warmup", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    let mut nodes = [a, b];
    let owner = owner_of(&api, &[&nodes[0], &nodes[1]], &ep_id).await;

    nodes[owner].kill();
    let killed = Instant::now();
    let survivor = &nodes[1 - owner];
    let ids = api.publish_many(&survivor.address, "handover.after", EVENTS).await;
    receiver.wait_for_ids(&ids, Some(killed), Duration::from_secs(15)).await;
    let all_after = killed.elapsed();
    let first = receiver
        .received()
        .iter()
        .filter(|r| r.webhook_id().is_some_and(|id| ids.contains(id)))
        .map(|r| r.at)
        .min()
        .expect("they arrived");
    let hand_over = first.saturating_duration_since(killed);
    println!(
        "owner killed: first delivery by the survivor {:.2}s later, all {EVENTS} after {:.2}s (lease 2 s)",
        hand_over.as_secs_f64(),
        all_after.as_secs_f64()
    );
    assert!(hand_over < Duration::from_secs(10), "hand-over took {hand_over:?}");
}

#[actix_web::test]
async fn publish_to_receive_latency_on_owner_and_non_owner() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    const EVENTS: usize = 200;
    let a = Node::start(&db, "herald-latency-a");
    let b = Node::start(&db, "herald-latency-b");
    let nodes = [&a, &b];
    let api = Api::new(a.key.as_deref().expect("the first node printed a key"));
    let receiver = Receiver::start().await;
    let ep_id = api.endpoint(&a.address, json!({"url": receiver.url("/hook"), "events": ["lat.*"]})).await;
    api.publish(&a.address, "lat.warmup", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    let owner = owner_of(&api, &nodes, &ep_id).await;

    for (label, node) in [("owner", nodes[owner]), ("non-owner", nodes[1 - owner])] {
        let mut latencies = Vec::with_capacity(EVENTS);
        for i in 0..EVENTS {
            // From sending the publish (answered 202) to the webhook reaching the receiver;
            // each waits for the one before, so none queues behind another.
            let sent = Instant::now();
            let id = api.publish(&node.address, "lat.event", json!({"n": i})).await;
            let at = arrival_of(&receiver, &id, WAIT).await;
            latencies.push(at.saturating_duration_since(sent));
        }
        latencies.sort();
        let pct =
            |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
        println!(
            "publish-to-receive, published on the {label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({EVENTS} events)",
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            latencies[latencies.len() - 1].as_secs_f64() * 1000.0
        );
    }

    // `?wait=true` on the node that does not send: the outcome is read from the store.
    let started = Instant::now();
    let r = api
        .post(&nodes[1 - owner].address, "/v1/events?wait=true", json!({"type": "lat.wait", "data": {}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let outcome = &r.body["deliveries"][0];
    assert_eq!(outcome["status"], "succeeded", "{}", r.text);
    assert_eq!(outcome["status_code"], 200, "{}", r.text);
    println!(
        "?wait=true on the non-owner: answered with the outcome in {} ms",
        started.elapsed().as_millis()
    );
}

/// A FIFO endpoint in a cluster: events published on both nodes reach it one at a time in
/// event order, also when the node sending them is killed (its head is sent again by the
/// other node once the lease lapses: a repeat, never a reordering).
#[actix_web::test]
async fn a_fifo_endpoint_keeps_its_order_across_nodes_and_a_killed_one() {
    let Some(db) = fresh_database(Backend::Postgres) else { return };
    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok().delay(Duration::from_millis(10)));
    receiver.push_once(Behaviour::status(500));
    let mut a = Node::start(&db, "herald-fifo-a");
    let b = Node::start(&db, "herald-fifo-b");
    let key = a.key.clone().unwrap();
    let client = awc::Client::default();
    let mut ep = client
        .post(format!("{}/v1/endpoints", a.address))
        .insert_header(auth(&key))
        .send_json(&json!({"url": receiver.url("/hook"), "events": ["*"], "ordering": "fifo"}))
        .await
        .unwrap();
    assert_eq!(ep.status(), 201, "{:?}", ep.body().await);
    let mut published = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a.address } else { &b.address };
        published.push(post_event(node, &key, json!({"type": "fifo.step", "data": {"i": i}})).await.unwrap());
    }
    // Kill one node while the queue is moving; the other goes on.
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.kill();
    for i in 20..30 {
        published.push(
            post_event(&b.address, &key, json!({"type": "fifo.step", "data": {"i": i}})).await.unwrap(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let arrivals = || -> Vec<String> {
        let mut seen: Vec<String> =
            receiver.received().iter().filter_map(|r| r.webhook_id().map(str::to_string)).collect();
        seen.dedup(); // a retry, or a resend after the kill, repeats the head in its place
        seen
    };
    while arrivals().len() < published.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        arrivals(),
        published,
        "in event order, across both nodes and the kill\n{}",
        summary(&receiver.received())
    );
    assert_eq!(receiver.max_in_flight(), 1);
}
