//! Cluster mode: several herald processes (the real binary) on one PostgreSQL database.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, FreshDatabase, fresh_database};
use crate::receiver::{Behaviour, Receiver};
use crate::sse_client::{auth, from_response};

pub struct Node {
    child: Child,
    pub address: String,
    /// The key a first start printed.
    pub key: Option<String>,
}

impl Node {
    /// Starts `herald` on port 0 and reads its address (and first key) from stdout.
    fn start(db: &FreshDatabase, log_name: &str) -> Node {
        Self::start_on(&db.url, log_name)
    }

    pub fn start_on(database_url: &str, log_name: &str) -> Node {
        let log = std::fs::File::create(std::env::temp_dir().join(format!("{log_name}.log"))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .env("HERALD_ENV", "test")
            .env("HERALD_SERVER__PORT", "0")
            .env("HERALD_DATABASE__URL", database_url)
            .env("HERALD_DELIVERY__LEASE", "2s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start herald");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut key, mut address) = (None, None);
        for line in lines.by_ref() {
            let line = line.expect("herald's stdout");
            let line = line.trim();
            if line.starts_with("hk_") {
                key = Some(line.to_string());
            }
            if let Some(rest) = line.strip_prefix("herald listening on ") {
                address = Some(rest.split_whitespace().next().unwrap().to_string());
                break;
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node { child, address: address.expect("herald printed its address"), key }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (without blocking the test's runtime) for the exit.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < deadline, "a node did not exit within 15 s of SIGTERM");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

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
