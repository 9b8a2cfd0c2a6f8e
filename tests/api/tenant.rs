//! Tenancy: an organisation's own API keys (list, create, revoke, last use), the admin's view
//! of them, quotas (endpoints, open streams), inbound sources under attack (rejections
//! counted but not all kept, a rate limit per source), retention of finished events and of
//! receipts, and a token in front of `/metrics`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::delivery::{get_ok, ms, only_delivery, publish_type, sleep, text, wait_delivery};
use crate::helpers::{ADMIN_TOKEN, Reply, TestApp, assert_error, read_reply};
use crate::inbound::{deliver, hmac_sha256, now_s};
use crate::receiver::{Behaviour, Receiver};
use crate::{both_backends, both_backends_with};

/// Upper bound for anything that should happen within milliseconds.
const WAIT: Duration = Duration::from_secs(10);
/// How soon a revoked key (and its sessions) must stop working, and a closed stream's slot
/// must be free again.
const PROMPT: Duration = Duration::from_secs(1);
/// How often the "within a second" checks poll.
const POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

async fn delete(app: &TestApp, key: &str, path: &str) -> Reply {
    app.request("DELETE", path, Some(key), None).await
}

/// A request with the admin token.
async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Reply {
    app.request(method, path, Some(ADMIN_TOKEN), body.as_ref()).await
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.contains('T') && herald::timefmt::parse_time(s).is_some())
}

/// `POST /v1/api-keys` without a body: the new key's answer.
async fn create_key(app: &TestApp, key: &str) -> Value {
    let r = app.request("POST", "/v1/api-keys", Some(key), None).await;
    assert_eq!(r.status, 201, "POST /v1/api-keys: {}", r.text);
    let b = &r.body;
    assert!(text(&b["id"]).starts_with("key_"), "{}", r.text);
    let (new_key, prefix) = (text(&b["key"]), text(&b["prefix"]));
    assert!(prefix.starts_with("hk_") && new_key.starts_with(&prefix), "{}", r.text);
    assert!(new_key.len() > prefix.len(), "the prefix is not the whole key: {}", r.text);
    assert!(is_rfc3339(&b["created_at"]), "{}", r.text);
    r.body
}

/// One entry of a key list: its shape, and never the key itself.
fn check_key_entry(entry: &Value) {
    assert!(text(&entry["id"]).starts_with("key_"), "{entry}");
    assert!(text(&entry["prefix"]).starts_with("hk_"), "{entry}");
    assert!(is_rfc3339(&entry["created_at"]), "{entry}");
    let used = &entry["last_used_at"];
    assert!(entry.get("last_used_at").is_some(), "last_used_at is always present: {entry}");
    assert!(used.is_null() || is_rfc3339(used), "{entry}");
    for secret in ["key", "key_hash", "hash"] {
        assert!(entry.get(secret).is_none(), "a key list shows no `{secret}`: {entry}");
    }
}

/// Every entry of a key list (`GET path` with `token`), following `next_cursor`.
async fn list_keys(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let page_path = match &cursor {
            Some(c) => format!("{path}?cursor={c}"),
            None => path.to_string(),
        };
        let r = app.get(&page_path, token).await;
        assert_eq!(r.status, 200, "GET {page_path}: {}", r.text);
        assert!(r.body.get("next_cursor").is_some(), "a list answer has next_cursor: {}", r.text);
        let data = r.body["data"].as_array().unwrap_or_else(|| panic!("not a list: {}", r.text));
        for entry in data {
            check_key_entry(entry);
        }
        out.extend(data.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("GET {path}: more than 20 pages");
}

fn ids_of(entries: &[Value]) -> BTreeSet<String> {
    entries.iter().map(|e| text(&e["id"])).collect()
}

/// Signs in with a key; the `herald_session=…` pair of the cookie.
async fn sign_in(app: &TestApp, key: &str) -> String {
    let r = app.request("POST", "/v1/sessions", None, Some(&json!({"key": key}))).await;
    assert_eq!(r.status, 201, "POST /v1/sessions: {}", r.text);
    let set = r.header("set-cookie").expect("a session cookie").to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    assert!(pair.starts_with("herald_session="), "{set}");
    pair
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> Reply {
    let res = app.client.get(app.url(path)).insert_header(("Cookie", cookie.to_string())).send().await;
    read_reply(res.expect("request reaches herald")).await
}

/// What a revocation check calls: an API route with a key, or the session route with a cookie.
#[derive(Clone, Copy)]
enum Probe<'a> {
    Key(&'a str),
    Cookie(&'a str),
}

/// Polls every 50 ms while `probe` answers 200 until it answers 401; how long after `since`
/// the 401 came. Panics when it still answered 200 after `PROMPT`.
async fn until_unauthorized(app: &TestApp, what: &str, since: Instant, probe: Probe<'_>) -> Duration {
    loop {
        let r = match probe {
            Probe::Key(key) => app.get("/v1/endpoints", key).await,
            Probe::Cookie(cookie) => get_with_cookie(app, "/v1/sessions", cookie).await,
        };
        if r.status == 401 {
            assert_error(&r, 401, "UNAUTHORIZED");
            return since.elapsed();
        }
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert!(since.elapsed() <= PROMPT, "{what} still worked {:?} after the revocation", since.elapsed());
        sleep(POLL).await;
    }
}

/// An endpoint create for the quota tests; the raw answer.
async fn try_create_endpoint(app: &TestApp, key: &str, n: usize) -> Reply {
    app.post("/v1/endpoints", key, json!({"url": format!("http://127.0.0.1:9/hook/{n}"), "events": ["*"]}))
        .await
}

async fn endpoint_count(app: &TestApp, key: &str) -> usize {
    get_ok(app, key, "/v1/endpoints?limit=250").await["data"].as_array().unwrap().len()
}

fn assert_quota_refusal(r: &Reply, name: &str) {
    assert_error(r, 403, "FORBIDDEN");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains(name), "the refusal names {name}: {message}");
}

/// A stream held open (its connection closes when this is dropped), or the answer that
/// refused it.
enum Opened {
    Stream(Box<dyn std::any::Any>),
    Refused(Reply),
}

impl Opened {
    fn stream(self, what: &str) -> Box<dyn std::any::Any> {
        match self {
            Opened::Stream(s) => s,
            Opened::Refused(r) => panic!("{what}: the stream was refused with {}: {}", r.status, r.text),
        }
    }

    fn refused(self, what: &str) -> Reply {
        match self {
            Opened::Refused(r) => r,
            Opened::Stream(_) => panic!("{what}: the stream opened (200) but should have been refused"),
        }
    }
}

/// `GET /v1/events/stream` with a key; a 200 is kept open unread (never read to its end).
async fn open_stream(app: &TestApp, key: &str) -> Opened {
    let res = app
        .client
        .get(app.url("/v1/events/stream"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .expect("stream request reaches herald");
    if res.status() == 200 { Opened::Stream(Box::new(res)) } else { Opened::Refused(read_reply(res).await) }
}

fn assert_too_many_streams(r: &Reply) {
    assert_error(r, 429, "RATE_LIMITED");
    let after = r.header("retry-after").unwrap_or_else(|| panic!("429 without Retry-After: {}", r.text));
    assert!(after.trim().parse::<u64>().is_ok(), "Retry-After is a number of seconds: {after:?}");
}

const HMAC_SECRET: &str = "plain-secret-1";

/// The hmac-sha256 scheme's headers: `sha256=<hex HMAC of "{t}.{body}">` keyed by `secret`.
fn hmac_headers(secret: &str, id: &str, body: &str) -> Vec<(&'static str, String)> {
    let t = now_s();
    let sig =
        format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes())));
    vec![
        ("X-Webhook-Id", id.to_string()),
        ("X-Webhook-Timestamp", t.to_string()),
        ("X-Webhook-Signature", sig),
    ]
}

/// An hmac-sha256 source signed with `HMAC_SECRET`.
async fn create_source(app: &TestApp) -> String {
    crate::inbound::create_source(app, "hmac-sha256", HMAC_SECRET).await
}

/// A correctly signed hmac-sha256 request with provider id `id`.
async fn send_signed(app: &TestApp, source: &str, id: &str) -> Reply {
    let body = json!({"type": "attack.test", "n": id}).to_string();
    deliver(app, source, &hmac_headers(HMAC_SECRET, id, &body), &body).await
}

/// Every receipt of a source, following `next_cursor`.
async fn all_receipts(app: &TestApp, source: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/v1/sources/{source}/receipts?limit=250&cursor={c}"),
            None => format!("/v1/sources/{source}/receipts?limit=250"),
        };
        let page = get_ok(app, &app.default_key, &path).await;
        out.extend(page["data"].as_array().unwrap_or_else(|| panic!("not a list: {page}")).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("receipts of {source}: more than 100 pages");
}

pub(crate) async fn metrics_text(app: &TestApp) -> String {
    let m = app.request("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200, "GET /metrics: {}", m.text);
    m.text
}

/// The sum of a metric's samples over its label sets (only those whose labels contain
/// `label`, when given); None when the metric has no sample at all.
pub(crate) fn metric_sum(metrics: &str, name: &str, label: Option<&str>) -> Option<f64> {
    let mut sum = None;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            match r.split_once('}') {
                Some(parts) => parts,
                None => continue,
            }
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue; // another metric whose name starts the same way
        };
        if label.is_some_and(|l| !labels.contains(l)) {
            continue;
        }
        let v: f64 = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unreadable metric line: {line}"));
        *sum.get_or_insert(0.0) += v;
    }
    sum
}

// ---------------------------------------------------------------------------------------
// A. API keys
// ---------------------------------------------------------------------------------------

both_backends!(an_organisation_lists_and_creates_its_keys, |app: TestApp| async move {
    let key = app.default_key.clone();
    let first = list_keys(&app, &key, "/v1/api-keys").await;
    assert_eq!(first.len(), 1, "the bootstrap key alone: {first:?}");
    assert!(key.starts_with(&text(&first[0]["prefix"])), "the prefix is the key's beginning: {first:?}");

    // No body, and an empty object, both make a key that works at once.
    let a = create_key(&app, &key).await;
    let b = app.post("/v1/api-keys", &key, json!({})).await;
    assert_eq!(b.status, 201, "POST /v1/api-keys {{}}: {}", b.text);
    let b = b.body;
    assert_ne!(a["key"], b["key"]);
    for new in [&a, &b] {
        let r = app.get("/v1/endpoints", &text(&new["key"])).await;
        assert_eq!(r.status, 200, "a new key works at once: {}", r.text);
    }

    let listed = list_keys(&app, &key, "/v1/api-keys").await;
    let ids = ids_of(&listed);
    let expected: BTreeSet<String> = [&first[0], &a, &b].iter().map(|e| text(&e["id"])).collect();
    assert_eq!(ids, expected, "{listed:?}");
    let raw = app.get("/v1/api-keys", &key).await.text;
    for secret in [&key, &text(&a["key"]), &text(&b["key"])] {
        assert!(!raw.contains(secret.as_str()), "the list shows a key: {raw}");
    }
    let a_entry = listed.iter().find(|e| e["id"] == a["id"]).unwrap();
    assert_eq!(a_entry["prefix"], a["prefix"]);

    // Another organisation sees only its own key, and none of these.
    let (_, other) = app.new_org("other", 100_000).await;
    let theirs = list_keys(&app, &other, "/v1/api-keys").await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert!(ids_of(&theirs).is_disjoint(&ids), "another organisation's keys leaked: {theirs:?}");
    assert_error(&app.request("GET", "/v1/api-keys", None, None).await, 401, "UNAUTHORIZED");
    println!("{}: keys listed {}, other org {}", app.backend_name(), listed.len(), theirs.len());
});

both_backends!(a_revoked_key_and_its_sessions_stop_within_a_second, |app: TestApp| async move {
    let key = app.default_key.clone();
    let created = create_key(&app, &key).await;
    let (doomed, doomed_id) = (text(&created["key"]), text(&created["id"]));
    // Used once (so any cache holds it) and signed in with.
    assert_eq!(app.get("/v1/endpoints", &doomed).await.status, 200);
    let cookie = sign_in(&app, &doomed).await;
    assert_eq!(get_with_cookie(&app, "/v1/sessions", &cookie).await.status, 200);
    let token = app.post("/v1/stream-tokens", &doomed, json!({})).await;
    assert_eq!(token.status, 201, "{}", token.text);
    let token = text(&token.body["token"]);

    // Another organisation's key id, or an unknown one, is not found and changes nothing.
    let (_, other) = app.new_org("other", 100_000).await;
    let other_id = text(&list_keys(&app, &other, "/v1/api-keys").await[0]["id"]);
    assert_error(&delete(&app, &key, &format!("/v1/api-keys/{other_id}")).await, 404, "NOT_FOUND");
    assert_error(&delete(&app, &key, "/v1/api-keys/key_nope").await, 404, "NOT_FOUND");
    assert_eq!(app.get("/v1/endpoints", &other).await.status, 200, "the other org's key still works");

    let r = delete(&app, &key, &format!("/v1/api-keys/{doomed_id}")).await;
    assert_eq!(r.status, 204, "DELETE /v1/api-keys/{doomed_id}: {}", r.text);
    let since = Instant::now();
    let key_gone = until_unauthorized(&app, "the revoked key", since, Probe::Key(&doomed)).await;
    let session_gone =
        until_unauthorized(&app, "the revoked key's session", since, Probe::Cookie(&cookie)).await;
    println!(
        "{}: revoked key refused after {} ms, its session after {} ms",
        app.backend_name(),
        key_gone.as_millis(),
        session_gone.as_millis()
    );
    assert!(key_gone <= PROMPT && session_gone <= PROMPT);

    // Its stream token opens no stream any more.
    let stream = app.request("GET", &format!("/v1/events/stream?token={token}"), None, None).await;
    assert_error(&stream, 401, "UNAUTHORIZED");

    // It signs in no more, is no longer listed, and the caller's own key still works.
    let again = app.request("POST", "/v1/sessions", None, Some(&json!({"key": doomed}))).await;
    assert_error(&again, 401, "UNAUTHORIZED");
    let listed = list_keys(&app, &key, "/v1/api-keys").await;
    assert!(!ids_of(&listed).contains(&doomed_id), "a revoked key is not listed: {listed:?}");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(app.get("/v1/endpoints", &key).await.status, 200);
});

both_backends!(the_admin_lists_and_revokes_any_organisations_keys, |app: TestApp| async move {
    let (org_id, key) = app.new_org("tenant", 100_000).await;
    let second = app.admin_post(&format!("/v1/orgs/{org_id}/api-keys"), Value::Null).await;
    assert_eq!(second.status, 201, "{}", second.text);
    let (second_key, second_id) = (text(&second.body["key"]), text(&second.body["id"]));
    let path = format!("/v1/orgs/{org_id}/api-keys");

    let listed = list_keys(&app, ADMIN_TOKEN, &path).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(ids_of(&listed).contains(&second_id));
    let default_ids = ids_of(&list_keys(&app, &app.default_key, "/v1/api-keys").await);
    assert!(ids_of(&listed).is_disjoint(&default_ids), "only this organisation's keys: {listed:?}");

    // Not without the admin token: neither an organisation's key nor nothing.
    let one = format!("{path}/{second_id}");
    for token in [Some(key.as_str()), Some("not-the-admin-token"), None] {
        assert_error(&app.request("GET", &path, token, None).await, 401, "UNAUTHORIZED");
        assert_error(&app.request("DELETE", &one, token, None).await, 401, "UNAUTHORIZED");
    }
    assert_eq!(app.get("/v1/endpoints", &second_key).await.status, 200, "nothing was revoked");

    // Unknown organisation, unknown key, or a key of another organisation: 404.
    assert_error(&admin(&app, "GET", "/v1/orgs/org_nope/api-keys", None).await, 404, "NOT_FOUND");
    assert_error(&admin(&app, "DELETE", &format!("{path}/key_nope"), None).await, 404, "NOT_FOUND");
    let foreign = default_ids.iter().next().unwrap();
    assert_error(&admin(&app, "DELETE", &format!("{path}/{foreign}"), None).await, 404, "NOT_FOUND");
    assert_eq!(app.get("/v1/endpoints", &app.default_key).await.status, 200);

    let r = admin(&app, "DELETE", &one, None).await;
    assert_eq!(r.status, 204, "DELETE {one}: {}", r.text);
    let gone =
        until_unauthorized(&app, "the key the admin revoked", Instant::now(), Probe::Key(&second_key)).await;
    println!("{}: admin-revoked key refused after {} ms", app.backend_name(), gone.as_millis());
    let after = list_keys(&app, ADMIN_TOKEN, &path).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!ids_of(&after).contains(&second_id));
    assert_eq!(app.get("/v1/endpoints", &key).await.status, 200, "the other key still works");
});

both_backends!(last_used_at_shows_that_a_key_was_used, |app: TestApp| async move {
    let created = create_key(&app, &app.default_key).await;
    let (new_key, id) = (text(&created["key"]), text(&created["id"]));
    let entry_of = |listed: Vec<Value>| listed.into_iter().find(|e| text(&e["id"]) == id).expect("listed");
    let fresh = entry_of(list_keys(&app, &app.default_key, "/v1/api-keys").await);
    assert!(fresh["last_used_at"].is_null(), "a key never used: {fresh}");

    let before = herald::ids::now_ms();
    assert_eq!(app.get("/v1/endpoints", &new_key).await.status, 200);
    let used_at = Instant::now();
    loop {
        let entry = entry_of(list_keys(&app, &app.default_key, "/v1/api-keys").await);
        if let Some(at) = entry["last_used_at"].as_str() {
            let at_ms = herald::timefmt::parse_time(at).unwrap();
            assert!(
                at_ms >= before - 1_000 && at_ms <= herald::ids::now_ms() + 1_000,
                "last_used_at {at} is not the time of use: {entry}"
            );
            println!(
                "{}: last_used_at appeared after {} ms",
                app.backend_name(),
                used_at.elapsed().as_millis()
            );
            break;
        }
        assert!(used_at.elapsed() < WAIT, "last_used_at still null {WAIT:?} after the key was used: {entry}");
        sleep(ms(100)).await;
    }
});

// ---------------------------------------------------------------------------------------
// B. Quotas
// ---------------------------------------------------------------------------------------

both_backends!(the_admin_sets_an_organisations_quotas, |app: TestApp| async move {
    let (org_id, key) = app.new_org("tenant", 100_000).await;
    let path = format!("/v1/orgs/{org_id}");
    let all = json!({"max_endpoints": 7, "max_streams": 4, "rate_limit_per_minute": 600, "retention_events": "30d"});
    let r = admin(&app, "PATCH", &path, Some(all.clone())).await;
    assert_eq!(r.status, 200, "PATCH {path}: {}", r.text);
    assert_eq!(r.body["id"], org_id.as_str(), "{}", r.text);
    assert_eq!(r.body["max_endpoints"], 7, "{}", r.text);
    assert_eq!(r.body["max_streams"], 4, "{}", r.text);
    assert_eq!(r.body["rate_limit_per_minute"], 600, "{}", r.text);
    assert_eq!(r.body["retention_events"], "30d", "{}", r.text);
    // An empty change changes nothing and is no error; a century and more is refused.
    let r = admin(&app, "PATCH", &path, Some(json!({}))).await;
    assert_eq!((r.status.as_u16(), r.body["max_endpoints"].clone()), (200, json!(7)), "{}", r.text);
    let r = admin(&app, "PATCH", &path, Some(json!({"retention_events": "36501d"}))).await;
    assert_error(&r, 400, "VALIDATION_ERROR");

    // A PATCH changes what it names only.
    let r = admin(&app, "PATCH", &path, Some(json!({"max_streams": 9}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["max_endpoints"].clone(), r.body["max_streams"].clone()), (json!(7), json!(9)));

    let bad = [
        json!({"max_endpoints": 0}),
        json!({"max_endpoints": -1}),
        json!({"max_endpoints": "5"}),
        json!({"max_endpoints": 2.5}),
        json!({"max_streams": 0}),
        json!({"max_streams": -3}),
        json!({"max_streams": true}),
        json!({"rate_limit_per_minute": 0}),
        json!({"rate_limit_per_minute": -5}),
        json!({"rate_limit_per_minute": "fast"}),
        json!({"retention_events": "soon"}),
        json!({"retention_events": true}),
        json!({"max_endpoint": 5}),
    ];
    for body in &bad {
        let r = admin(&app, "PATCH", &path, Some(body.clone())).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
    }
    for token in [Some(key.as_str()), None] {
        assert_error(&app.request("PATCH", &path, token, Some(&all)).await, 401, "UNAUTHORIZED");
    }
    let unknown = admin(&app, "PATCH", "/v1/orgs/org_nope", Some(json!({"max_endpoints": 5}))).await;
    assert_error(&unknown, 404, "NOT_FOUND");

    // None of the refused PATCHes changed anything.
    let r = admin(&app, "PATCH", &path, Some(json!({"rate_limit_per_minute": 601}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["max_endpoints"], 7, "{}", r.text);
    assert_eq!(r.body["max_streams"], 9, "{}", r.text);
    assert_eq!(r.body["rate_limit_per_minute"], 601, "{}", r.text);
});

both_backends_with!(
    max_endpoints_caps_an_organisations_endpoints,
    |s: &mut herald::Settings| {
        s.limits.max_endpoints = 3;
    },
    |app: TestApp| async move {
        let (org_id, key) = app.new_org("tenant", 100_000).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            let r = try_create_endpoint(&app, &key, n).await;
            assert_eq!(r.status, 201, "endpoint {} of 3: {}", n + 1, r.text);
            ids.push(text(&r.body["id"]));
        }
        assert_quota_refusal(&try_create_endpoint(&app, &key, 3).await, "max_endpoints");
        assert_eq!(endpoint_count(&app, &key).await, 3, "the refused create made nothing");

        // Deleting one frees its slot.
        let gone = delete(&app, &key, &format!("/v1/endpoints/{}", ids[0])).await;
        assert_eq!(gone.status, 204, "{}", gone.text);
        let r = try_create_endpoint(&app, &key, 4).await;
        assert_eq!(r.status, 201, "a freed slot: {}", r.text);
        assert_quota_refusal(&try_create_endpoint(&app, &key, 5).await, "max_endpoints");

        // The admin raises this organisation's limit to 5: two more, then no more.
        let r = admin(&app, "PATCH", &format!("/v1/orgs/{org_id}"), Some(json!({"max_endpoints": 5}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["max_endpoints"], 5, "{}", r.text);
        for n in 6..8 {
            let r = try_create_endpoint(&app, &key, n).await;
            assert_eq!(r.status, 201, "under the raised limit: {}", r.text);
        }
        assert_quota_refusal(&try_create_endpoint(&app, &key, 8).await, "max_endpoints");
        assert_eq!(endpoint_count(&app, &key).await, 5);

        // Another organisation still has the setting's 3.
        let (_, other) = app.new_org("other", 100_000).await;
        for n in 0..3 {
            assert_eq!(try_create_endpoint(&app, &other, n).await.status, 201);
        }
        assert_quota_refusal(&try_create_endpoint(&app, &other, 3).await, "max_endpoints");
    }
);

both_backends_with!(
    concurrent_creates_never_exceed_max_endpoints,
    |s: &mut herald::Settings| {
        s.limits.max_endpoints = 3;
    },
    |app: TestApp| async move {
        const ROUNDS: usize = 5;
        let (_, key) = app.new_org("tenant", 100_000).await;
        assert_eq!(try_create_endpoint(&app, &key, 0).await.status, 201);
        for round in 0..ROUNDS {
            // Two slots left; ten creates on the wire together.
            let answers =
                join_all((0..10).map(|i| try_create_endpoint(&app, &key, 100 * (round + 1) + i))).await;
            let mut created = Vec::new();
            for r in &answers {
                match r.status.as_u16() {
                    201 => created.push(text(&r.body["id"])),
                    403 => assert_quota_refusal(r, "max_endpoints"),
                    other => panic!("round {round}: a create answered {other}: {}", r.text),
                }
            }
            let refused = answers.len() - created.len();
            println!("{}: round {round}: 201 x {}, 403 x {refused}", app.backend_name(), created.len());
            assert_eq!(
                (created.len(), refused),
                (2, 8),
                "round {round}: exactly the two free slots are taken"
            );
            assert_eq!(endpoint_count(&app, &key).await, 3, "round {round}");
            for id in created {
                let r = delete(&app, &key, &format!("/v1/endpoints/{id}")).await;
                assert_eq!(r.status, 204, "{}", r.text);
            }
        }
    }
);

both_backends_with!(
    max_streams_caps_an_organisations_open_streams,
    |s: &mut herald::Settings| {
        s.limits.max_streams = 2;
    },
    |app: TestApp| async move {
        let (_, key) = app.new_org("watcher", 100_000).await;
        let first = open_stream(&app, &key).await.stream("stream 1 of 2");
        let second = open_stream(&app, &key).await.stream("stream 2 of 2");
        assert_too_many_streams(&open_stream(&app, &key).await.refused("a third stream"));

        // Another organisation opens its own streams meanwhile.
        let (_, other) = app.new_org("neighbour", 100_000).await;
        let theirs = [
            open_stream(&app, &other).await.stream("other org, 1"),
            open_stream(&app, &other).await.stream("other org, 2"),
        ];

        // Closing one frees its slot within a second.
        drop(first);
        let since = Instant::now();
        let mut refusals = 0;
        let replacement = loop {
            match open_stream(&app, &key).await {
                Opened::Stream(s) => break s,
                Opened::Refused(r) => {
                    assert_too_many_streams(&r);
                    refusals += 1;
                    assert!(
                        since.elapsed() <= PROMPT,
                        "a closed stream's slot was still taken {:?} after it closed",
                        since.elapsed()
                    );
                    sleep(POLL).await;
                }
            }
        };
        let freed = since.elapsed();
        println!(
            "{}: a closed stream's slot was free again after {} ms ({refusals} refusals meanwhile)",
            app.backend_name(),
            freed.as_millis()
        );
        assert!(freed <= PROMPT, "slot freed after {freed:?}");
        assert_too_many_streams(&open_stream(&app, &key).await.refused("a third stream again"));
        drop((second, replacement, theirs));
    }
);

// ---------------------------------------------------------------------------------------
// C. Inbound under attack
// ---------------------------------------------------------------------------------------

both_backends!(bad_signatures_are_counted_but_not_all_kept, |app: TestApp| async move {
    const BAD: usize = 400;
    let src = create_source(&app).await;
    let started = Instant::now();
    for chunk in (0..BAD).collect::<Vec<_>>().chunks(20) {
        let answers = join_all(chunk.iter().map(|i| {
            let (app, src) = (&app, &src);
            async move {
                let body = json!({"type": "attack.forged", "n": i}).to_string();
                deliver(app, src, &hmac_headers("not-the-secret", &format!("bad-{i}"), &body), &body).await
            }
        }))
        .await;
        for r in &answers {
            assert_error(r, 401, "UNAUTHORIZED");
        }
    }
    let sent_in = started.elapsed();

    let kept = all_receipts(&app, &src).await;
    let rejected = metric_sum(&metrics_text(&app).await, "herald_inbound_rejected_total", None);
    println!(
        "{}: {BAD} forged requests in {} ms; receipts kept {}, herald_inbound_rejected_total {rejected:?}",
        app.backend_name(),
        sent_in.as_millis(),
        kept.len()
    );
    assert!(!kept.is_empty(), "some rejected receipts are kept, to show what happened");
    assert!(kept.len() <= 100, "{} receipts kept of {BAD} rejected requests", kept.len());
    assert!(kept.iter().all(|r| r["verified"] == false && r["error"].is_string()), "{kept:?}");
    let rejected = rejected.expect("/metrics has herald_inbound_rejected_total");
    assert!(rejected >= BAD as f64, "herald_inbound_rejected_total is {rejected}, expected at least {BAD}");

    // The provider's real requests still go through, and are kept.
    let ok = send_signed(&app, &src, "real-1").await;
    assert_eq!(ok.status, 200, "a correctly signed request after the attack: {}", ok.text);
    let event_id = text(&ok.body["event_id"]);
    let after = all_receipts(&app, &src).await;
    assert!(
        after.iter().any(|r| r["verified"] == true && r["event_id"] == event_id.as_str()),
        "the verified request's receipt is kept: {after:?}"
    );
});

both_backends_with!(
    inbound_rate_limit_is_per_source,
    |s: &mut herald::Settings| {
        s.inbound.rate_limit_per_minute = 20;
    },
    |app: TestApp| async move {
        let busy = create_source(&app).await;
        let quiet = create_source(&app).await;
        let mut statuses = Vec::new();
        for i in 0..30 {
            let r = send_signed(&app, &busy, &format!("busy-{i}")).await;
            match r.status.as_u16() {
                200 => {}
                429 => {
                    assert_error(&r, 429, "RATE_LIMITED");
                    let after = r.header("retry-after").unwrap_or_else(|| panic!("429 without Retry-After"));
                    let secs: u64 = after.trim().parse().unwrap_or_else(|_| panic!("Retry-After {after:?}"));
                    assert!(secs >= 1, "Retry-After {secs}: a refill of 20 a minute takes seconds");
                }
                other => panic!("request {i} answered {other}: {}", r.text),
            }
            statuses.push(r.status.as_u16());
        }
        let limited = statuses.iter().filter(|s| **s == 429).count();
        println!("{}: 30 requests to one source: {limited} answered 429 ({statuses:?})", app.backend_name());
        assert!(statuses[..20].iter().all(|s| *s == 200), "the first 20 fit the limit: {statuses:?}");
        assert!(limited >= 10, "at least 10 of 30 are refused: {statuses:?}");

        // The other source of the same organisation has its own allowance.
        for i in 0..5 {
            let r = send_signed(&app, &quiet, &format!("quiet-{i}")).await;
            assert_eq!(r.status, 200, "another source is not limited by the busy one: {}", r.text);
        }
    }
);

// ---------------------------------------------------------------------------------------
// D. Retention
// ---------------------------------------------------------------------------------------

both_backends_with!(
    retention_purges_finished_events_and_keeps_pending_ones,
    |s: &mut herald::Settings| {
        s.retention.events = Duration::from_secs(1);
        s.retention.interval = Duration::from_millis(200);
        s.delivery.retry_schedule = vec![Duration::from_secs(60)];
    },
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let good = Receiver::start().await;
        let bad = Receiver::start().await;
        bad.set_default(Behaviour::status(500));
        for (r, kind) in [(&good, "kept.done"), (&bad, "kept.pending")] {
            let ep = app.post("/v1/endpoints", &key, json!({"url": r.url("/hook"), "events": [kind]})).await;
            assert_eq!(ep.status, 201, "{}", ep.text);
        }
        let done = publish_type(&app, &key, "kept.done", json!({"n": 1})).await;
        let pending = publish_type(&app, &key, "kept.pending", json!({"n": 2})).await;
        let published = Instant::now();
        let done_delivery = only_delivery(&app, &key, &done).await;
        let pending_delivery = only_delivery(&app, &key, &pending).await;
        wait_delivery(&app, &key, &done_delivery, "succeeded", WAIT).await;
        let delivered = Instant::now();
        bad.wait_for(1, WAIT).await;

        // The finished event and its delivery go.
        loop {
            let e = app.get(&format!("/v1/events/{done}"), &key).await;
            let d = app.get(&format!("/v1/deliveries/{done_delivery}"), &key).await;
            if e.status == 404 && d.status == 404 {
                assert_error(&e, 404, "NOT_FOUND");
                assert_error(&d, 404, "NOT_FOUND");
                break;
            }
            assert!(
                delivered.elapsed() < Duration::from_secs(3),
                "the delivered event was kept past its 1 s retention: event {} / delivery {}",
                e.status,
                d.status
            );
            sleep(ms(100)).await;
        }
        println!(
            "{}: delivered event purged {} ms after publishing",
            app.backend_name(),
            published.elapsed().as_millis()
        );

        // The pending one, as old, stays through several more purge runs.
        while published.elapsed() < Duration::from_millis(2_200) {
            sleep(ms(100)).await;
        }
        let e = get_ok(&app, &key, &format!("/v1/events/{pending}")).await;
        assert_eq!(e["deliveries"][0]["status"], "pending", "{e}");
        let d = get_ok(&app, &key, &format!("/v1/deliveries/{pending_delivery}")).await;
        assert_eq!(d["status"], "pending", "{d}");

        let m = metrics_text(&app).await;
        let purged = metric_sum(&m, "herald_retention_purged_total", Some("table=\"events\""));
        println!("{}: herald_retention_purged_total{{table=\"events\"}} = {purged:?}", app.backend_name());
        assert!(purged.is_some_and(|n| n >= 1.0), "herald_retention_purged_total for events: {purged:?}");
    }
);

both_backends_with!(
    retention_purges_old_receipts,
    |s: &mut herald::Settings| {
        s.retention.receipts = Duration::from_secs(1);
        s.retention.interval = Duration::from_millis(200);
    },
    |app: TestApp| async move {
        let src = create_source(&app).await;
        let sent = Instant::now();
        assert_eq!(send_signed(&app, &src, "kept-briefly").await.status, 200);
        let body = json!({"type": "attack.forged"}).to_string();
        let forged = deliver(&app, &src, &hmac_headers("wrong", "forged-1", &body), &body).await;
        assert_error(&forged, 401, "UNAUTHORIZED");
        assert_eq!(all_receipts(&app, &src).await.len(), 2, "both receipts are there at first");
        loop {
            let left = all_receipts(&app, &src).await;
            if left.is_empty() {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(3),
                "receipts kept past their 1 s retention: {left:?}"
            );
            sleep(ms(100)).await;
        }
        println!("{}: receipts purged {} ms after they came", app.backend_name(), sent.elapsed().as_millis());
    }
);

// ---------------------------------------------------------------------------------------
// E. /metrics behind a token
// ---------------------------------------------------------------------------------------

both_backends_with!(
    metrics_need_the_token_when_one_is_set,
    |s: &mut herald::Settings| {
        s.metrics.token = Some(herald::config::Secret::new("t0ken"));
    },
    |app: TestApp| async move {
        for token in [None, Some("wrong"), Some(app.default_key.as_str()), Some(ADMIN_TOKEN)] {
            let r = app.request("GET", "/metrics", token, None).await;
            assert_error(&r, 401, "UNAUTHORIZED");
            assert!(!r.text.contains("herald_"), "no metric leaks in the refusal: {}", r.text);
        }
        let r = app.request("GET", "/metrics", Some("t0ken"), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "{:?}", r.headers);
        assert!(r.text.lines().any(|l| l.starts_with("herald_")), "{}", r.text);
        // Health checks stay public.
        assert_eq!(app.request("GET", "/healthz", None, None).await.status, 200);
    }
);

both_backends!(metrics_are_public_without_a_token, |app: TestApp| async move {
    let text = metrics_text(&app).await;
    assert!(text.lines().any(|l| l.starts_with("herald_")), "{text}");
});
