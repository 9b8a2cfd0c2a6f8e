//! Secrets at rest: what a dump of the database shows (no endpoint secret, source secret or
//! header value), what the API shows (a secret only on create, rotate and `GET …/secret`;
//! header names with masked values), key rotation with `herald secrets reencrypt`, a node
//! refusing keys that cannot open the database, and plaintext from before encryption sealed
//! at the first start.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::delivery::{get_ok, verifies_standard_webhooks};
use crate::helpers::{Backend, FreshDatabase, TestApp, fresh_database, read_reply};
use crate::node::Node;
use crate::receiver::Receiver;
use crate::sse_client::auth;

const SECRET: &str = "whsec_c2VjcmV0LWF0LXJlc3QtdGVzdC1rZXktMTIzNDU2Nzg=";
const HEADER_VALUE: &str = "hdr-credential-4711";
const SOURCE_SECRET: &str = "source-secret-0815-abcdef";

/// Every byte the database keeps, as a dump would show it: the SQLite files, or
/// `pg_dump --data-only`.
fn dump(db_url: &str) -> String {
    if db_url.starts_with("postgres") {
        let out = Command::new("pg_dump").args(["--data-only", db_url]).output().expect("run pg_dump");
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{db_url}{suffix}")) {
            all.extend(bytes);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

fn assert_no_plaintext(db_url: &str, when: &str) {
    let text = dump(db_url);
    assert!(!text.is_empty(), "the dump is empty");
    for secret in [SECRET, HEADER_VALUE, SOURCE_SECRET] {
        assert!(!text.contains(secret), "{when}: the database holds {secret:?} in plaintext");
    }
}

async fn call(address: &str, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let req = client
        .request(awc::http::Method::from_bytes(method.as_bytes()).unwrap(), format!("{address}{path}"))
        .insert_header(auth(key));
    let res = match body {
        Some(b) => req.insert_header(("Idempotency-Key", format!("k-{path}"))).send_json(&b).await,
        None => req.send().await,
    };
    let reply = read_reply(res.expect("request")).await;
    (reply.status.as_u16(), reply.body)
}

/// An endpoint with a known secret and a credential header, and a source with a known
/// secret; the endpoint's id.
async fn make_secrets(address: &str, key: &str, receiver: &Receiver) -> String {
    let (status, ep) = call(
        address,
        key,
        "POST",
        "/v1/endpoints",
        Some(json!({"url": receiver.url("/hook"), "events": ["*"], "secret": SECRET, "headers": {"X-Api-Key": HEADER_VALUE}})),
    )
    .await;
    assert_eq!(status, 201, "{ep}");
    assert_eq!(ep["secret"], SECRET, "create shows the secret");
    assert_eq!(ep["headers"]["X-Api-Key"], "********", "{ep}");
    let (status, src) = call(
        address,
        key,
        "POST",
        "/v1/sources",
        Some(json!({"name": "s", "kind": "hmac-sha256", "secret": SOURCE_SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{src}");
    assert!(!src.to_string().contains(SOURCE_SECRET), "{src}");
    ep["id"].as_str().unwrap().to_string()
}

/// A webhook sent now verifies with the original secret.
async fn assert_signed_with_original_secret(address: &str, key: &str, receiver: &Receiver, n: usize) {
    let (status, body) = call(
        address,
        key,
        "POST",
        &format!("/v1/events?n={n}"),
        Some(json!({"type": "at.rest", "data": {"n": n}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let got = receiver.wait_for(n, Duration::from_secs(10)).await;
    assert!(
        verifies_standard_webhooks(&got[n - 1], SECRET),
        "webhook {n} does not verify with the original secret"
    );
}

crate::both_backends!(secrets_are_encrypted_at_rest_and_shown_only_where_asked, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let ep_id = make_secrets(&app.address, &key, &receiver).await;
    let ep = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}")).await;
    assert!(ep.get("secret").is_none(), "GET shows no secret: {ep}");
    assert_eq!(ep["headers"]["X-Api-Key"], "********", "{ep}");
    let list = get_ok(&app, &key, "/v1/endpoints").await;
    assert!(!list.to_string().contains(SECRET) && !list.to_string().contains(HEADER_VALUE), "{list}");
    let (status, patched) = call(
        &app.address,
        &key,
        "PATCH",
        &format!("/v1/endpoints/{ep_id}"),
        Some(json!({"description": "d"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(patched.get("secret").is_none() && !patched.to_string().contains(HEADER_VALUE), "{patched}");
    let shown = get_ok(&app, &key, &format!("/v1/endpoints/{ep_id}/secret")).await;
    assert_eq!(shown["secret"], SECRET, "{shown}");
    // The stored idempotent answer of the create holds the secret: replayed, it is the same.
    let (_, replay) = call(
        &app.address,
        &key,
        "POST",
        "/v1/endpoints",
        Some(json!({"url": receiver.url("/hook"), "events": ["*"], "secret": SECRET, "headers": {"X-Api-Key": HEADER_VALUE}})),
    )
    .await;
    assert_eq!(replay["id"], ep_id.as_str(), "a replay, not a second endpoint: {replay}");
    assert_eq!(replay["secret"], SECRET);
    assert_signed_with_original_secret(&app.address, &key, &receiver, 1).await;
    assert_no_plaintext(&app.database_url(), "while serving");
});

/// A real process per step: a start with key A, a rotation to key B with
/// `herald secrets reencrypt`, a start with B alone, a start with A alone (refused), and
/// plaintext put into the database by hand, sealed at the next start.
async fn keys_rotate_and_wrong_keys_are_refused(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    let herald = |args: &[&str], keys: &str| {
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .env("HERALD_ENV", "test")
            .env("HERALD_DATABASE__URL", &db.url)
            .env("HERALD_SECURITY__ENCRYPTION_KEYS", keys)
            .env("HERALD_SERVER__PORT", "0")
            .output()
            .expect("run herald")
    };
    let new_key = || String::from_utf8(herald(&["keygen"], "").stdout).unwrap().trim().to_string();
    let (key_a, key_b) = (new_key(), new_key());
    assert_ne!(key_a, key_b);
    let receiver = Receiver::start().await;

    let mut node =
        Node::start_with(&db.url, "herald-at-rest-a", &[("HERALD_SECURITY__ENCRYPTION_KEYS", &key_a)]);
    let api_key = node.key.clone().unwrap();
    let ep_id = make_secrets(&node.address, &api_key, &receiver).await;
    assert_signed_with_original_secret(&node.address, &api_key, &receiver, 1).await;
    node.kill();
    assert_no_plaintext(&db.url, "under key A");

    // Rotate: B first, A still opens; then everything is under B.
    let out = herald(&["secrets", "reencrypt"], &format!("{key_b},{key_a}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!("{backend:?}: secrets reencrypt: {}", String::from_utf8_lossy(&out.stdout).trim());
    let mut node =
        Node::start_with(&db.url, "herald-at-rest-b", &[("HERALD_SECURITY__ENCRYPTION_KEYS", &key_b)]);
    assert_signed_with_original_secret(&node.address, &api_key, &receiver, 2).await;
    node.kill();
    assert_no_plaintext(&db.url, "after reencrypt");

    // Key A alone cannot open what is now under B: the node refuses to start, naming the setting.
    let refused = herald(&[], &key_a);
    assert!(!refused.status.success(), "a node with the wrong key started");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("HERALD_SECURITY__ENCRYPTION_KEYS"), "{stderr}");

    // Plaintext from before encryption (as an older herald left it) is sealed at start.
    let mut conn = herald::store::Db::connect(&db.url, 1).unwrap();
    let mut c = conn.get().unwrap();
    use diesel::RunQueryDsl;
    diesel::sql_query(format!("UPDATE endpoints SET secret = '{SECRET}', headers = '{{\"X-Api-Key\":\"{HEADER_VALUE}\"}}' WHERE id = '{ep_id}'"))
        .execute(&mut *c)
        .unwrap();
    drop(c);
    drop(conn);
    conn = herald::store::Db::connect(&db.url, 1).unwrap();
    drop(conn);
    let node = Node::start_with(&db.url, "herald-at-rest-c", &[("HERALD_SECURITY__ENCRYPTION_KEYS", &key_b)]);
    assert_signed_with_original_secret(&node.address, &api_key, &receiver, 3).await;
    let (_, shown) =
        call(&node.address, &api_key, "GET", &format!("/v1/endpoints/{ep_id}/secret"), None).await;
    assert_eq!(shown["secret"], SECRET);
    drop(node);
    assert_no_plaintext(&db.url, "after an upgrade from plaintext");
    let _keep: &FreshDatabase = &db;
}

#[actix_web::test]
async fn keys_rotate_and_wrong_keys_are_refused_sqlite() {
    keys_rotate_and_wrong_keys_are_refused(Backend::Sqlite).await;
}

#[actix_web::test]
async fn keys_rotate_and_wrong_keys_are_refused_postgres() {
    keys_rotate_and_wrong_keys_are_refused(Backend::Postgres).await;
}
