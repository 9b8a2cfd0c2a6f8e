//! Memory any tenant could fill is bounded in bytes, measured on a real herald process (its
//! resident memory from /proc): an endpoint that stops answering while 300 MB of payloads
//! are published for it, and a stream whose client never reads while the same goes by.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{Backend, fresh_database};
use crate::node::Node;
use crate::receiver::Receiver;
use crate::sse_client::auth;

const EVENTS: usize = 3000;
/// Each event's `data` is about this big: 3,000 of them are 300 MB.
const PAYLOAD: usize = 100 * 1024;
/// Publishes in flight at once.
const CONCURRENCY: usize = 16;

/// Publishes `EVENTS` events of `PAYLOAD` bytes on `node`; their ids.
async fn publish_300_mb(node: &Node, key: &str) -> BTreeSet<String> {
    let filler = "x".repeat(PAYLOAD);
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
    let mut ids = BTreeSet::new();
    for start in (0..EVENTS).step_by(CONCURRENCY) {
        let batch = (start..(start + CONCURRENCY).min(EVENTS)).map(|i| {
            let body =
                json!({"type": "bulk.item", "id": format!("bulk-{i}"), "data": {"n": i, "filler": filler}});
            let req = client.post(format!("{}/v1/events", node.address)).insert_header(auth(key));
            async move {
                let res = req.send_json(&body).await.expect("publish");
                assert_eq!(res.status(), 202, "publish {i}");
                format!("bulk-{i}")
            }
        });
        ids.extend(futures_util::future::join_all(batch).await);
    }
    ids
}

async fn an_endpoint_that_stops_answering_holds_little_memory(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    // The stuck receiver accepts connections and never answers; herald gives up after the
    // timeout and tries again later.
    let stuck = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stuck_url = format!("http://{}/hook", stuck.local_addr().unwrap());
    let held = actix_web::rt::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = stuck.accept().await {
            sockets.push(socket);
        }
    });
    let node = Node::start_with(
        &db.url,
        &format!("herald-memory-endpoint-{backend:?}"),
        &[
            ("HERALD_DELIVERY__TIMEOUT", "20s"),
            ("HERALD_DELIVERY__RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"),
        ],
    );
    let key = node.key.clone().unwrap();
    let client = awc::Client::default();
    let mut res = client
        .post(format!("{}/v1/endpoints", node.address))
        .insert_header(auth(&key))
        .send_json(&json!({"url": stuck_url, "events": ["bulk.*"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let endpoint: serde_json::Value = res.json().await.unwrap();
    let (before, _) = node.memory_mb();

    let ids = publish_300_mb(&node, &key).await;
    let (after, peak) = node.memory_mb();
    println!(
        "{backend:?}: {EVENTS} events of {} KB for a stuck endpoint: resident {before:.1} MB before, \
         {after:.1} MB after, peak {peak:.1} MB (growth {:.1} MB)",
        PAYLOAD / 1024,
        peak - before
    );
    assert!(peak - before < 150.0, "resident memory grew by {:.1} MB", peak - before);

    // It recovers (here: a new URL, as its owner would fix it): every event arrives.
    let receiver = Receiver::start().await;
    let patched = client
        .patch(format!("{}/v1/endpoints/{}", node.address, endpoint["id"].as_str().unwrap()))
        .insert_header(auth(&key))
        .send_json(&json!({"url": receiver.url("/hook")}))
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    receiver.wait_for_ids(&ids, None, Duration::from_secs(120)).await;
    held.abort();
}

#[actix_web::test]
async fn an_endpoint_that_stops_answering_holds_little_memory_sqlite() {
    an_endpoint_that_stops_answering_holds_little_memory(Backend::Sqlite).await;
}

#[actix_web::test]
async fn an_endpoint_that_stops_answering_holds_little_memory_postgres() {
    an_endpoint_that_stops_answering_holds_little_memory(Backend::Postgres).await;
}

async fn a_stream_that_never_reads_holds_little_memory(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    let node = Node::start_on(&db.url, &format!("herald-memory-stream-{backend:?}"));
    let key = node.key.clone().unwrap();
    // A client that asks for the stream and then never reads a byte.
    let addr = node.address.trim_start_matches("http://").to_string();
    let mut lazy = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /v1/events/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    );
    lazy.write_all(request.as_bytes()).await.unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let (before, _) = node.memory_mb();

    publish_300_mb(&node, &key).await;
    let (after, peak) = node.memory_mb();
    println!(
        "{backend:?}: a stream that never reads while {} MB were published: resident {before:.1} MB before, \
         {after:.1} MB after, peak {peak:.1} MB (growth {:.1} MB)",
        EVENTS * PAYLOAD / (1024 * 1024),
        peak - before
    );
    assert!(peak - before < 100.0, "resident memory grew by {:.1} MB", peak - before);
    drop(lazy);
}

#[actix_web::test]
async fn a_stream_that_never_reads_holds_little_memory_sqlite() {
    a_stream_that_never_reads_holds_little_memory(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_stream_that_never_reads_holds_little_memory_postgres() {
    a_stream_that_never_reads_holds_little_memory(Backend::Postgres).await;
}
