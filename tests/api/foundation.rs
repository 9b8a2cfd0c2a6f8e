//! Section 3 (auth, lists, idempotency, rate limits) and section 4 (errors).

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestApp, assert_error};

both_backends!(health_ready_and_request_ids, |app: TestApp| async move {
    let live = app.request("GET", "/healthz", None, None).await;
    assert_eq!(live.status, 200);
    assert!(live.header("x-request-id").unwrap().starts_with("req_"));
    let ready = app.request("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["checks"]["database"], "ok");
    let page = app.request("GET", "/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let metrics = app.request("GET", "/metrics", None, None).await;
    assert!(metrics.text.contains("herald_http_responses_total"));
});

both_backends!(unknown_routes_and_methods_answer_error_json, |app: TestApp| async move {
    assert_error(&app.request("GET", "/v1/nothing-here", None, None).await, 404, "NOT_FOUND");
    assert_error(&app.request("DELETE", "/healthz", None, None).await, 405, "METHOD_NOT_ALLOWED");
    assert_error(
        &app.request("PUT", "/v1/event-types", Some(&app.default_key), None).await,
        405,
        "METHOD_NOT_ALLOWED",
    );
});

both_backends!(bad_bodies_get_validation_errors_with_paths, |app: TestApp| async move {
    let key = app.default_key.clone();
    let wrong_type = app.post("/v1/event-types", &key, json!({"name": 5})).await;
    assert_error(&wrong_type, 400, "VALIDATION_ERROR");
    assert_eq!(wrong_type.body["issues"][0]["path"], json!(["name"]));

    let unknown_field = app.post("/v1/event-types", &key, json!({"name": "a.b", "colour": "red"})).await;
    assert_error(&unknown_field, 400, "VALIDATION_ERROR");

    let bad_name = app.post("/v1/event-types", &key, json!({"name": "has space"})).await;
    assert_error(&bad_name, 400, "VALIDATION_ERROR");
    assert_eq!(bad_name.body["issues"][0]["path"], json!(["name"]));

    let malformed = app
        .client
        .post(app.url("/v1/event-types"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "application/json"))
        .send_body("{not json")
        .await
        .unwrap();
    assert_error(&crate::helpers::read_reply(malformed).await, 400, "VALIDATION_ERROR");

    let no_type = app
        .client
        .post(app.url("/v1/event-types"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "text/plain"))
        .send_body(r#"{"name":"a.b"}"#)
        .await
        .unwrap();
    assert_error(&crate::helpers::read_reply(no_type).await, 415, "UNSUPPORTED_MEDIA_TYPE");
});

both_backends!(huge_body_is_refused_and_nothing_is_harmed, |app: TestApp| async move {
    let key = app.default_key.clone();
    assert_eq!(app.post("/v1/event-types", &key, json!({"name": "kept.before"})).await.status, 201);

    let big = format!(r#"{{"name":"x","description":"{}"}}"#, "a".repeat(10 * 1024 * 1024));
    let res = app
        .client
        .post(app.url("/v1/event-types"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "application/json"))
        .send_body(big)
        .await;
    match res {
        Ok(r) => assert_error(&crate::helpers::read_reply(r).await, 413, "PAYLOAD_TOO_LARGE"),
        // The server may close the connection while the client is still sending: also a refusal.
        Err(e) => eprintln!("connection closed while sending 10 MB: {e}"),
    }

    let list = app.get("/v1/event-types", &key).await;
    assert_eq!(list.status, 200);
    let names: Vec<&str> =
        list.body["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["kept.before"]);
});

both_backends!(keys_are_required_and_checked, |app: TestApp| async move {
    assert_error(&app.request("GET", "/v1/event-types", None, None).await, 401, "UNAUTHORIZED");
    assert_error(&app.get("/v1/event-types", "hk_not-a-real-key").await, 401, "UNAUTHORIZED");
    // The admin token is not an organisation key, and a key is not the admin token.
    assert_error(&app.get("/v1/event-types", crate::helpers::ADMIN_TOKEN).await, 401, "UNAUTHORIZED");
    let as_key = app.post("/v1/orgs", &app.default_key, json!({"name": "sneaky"})).await;
    assert_error(&as_key, 401, "UNAUTHORIZED");
});

both_backends!(admin_creates_orgs_and_keys, |app: TestApp| async move {
    let org = app.admin_post("/v1/orgs", json!({"name": "acme"})).await;
    assert_eq!(org.status, 201, "{}", org.text);
    assert!(org.body["id"].as_str().unwrap().starts_with("org_"));
    assert_eq!(org.body["rate_limit_per_minute"], 100000, "the configured default");
    let dup = app.admin_post("/v1/orgs", json!({"name": "acme"})).await;
    assert_error(&dup, 409, "CONFLICT");

    let org_id = org.body["id"].as_str().unwrap();
    let key = app.admin_post(&format!("/v1/orgs/{org_id}/api-keys"), Value::Null).await;
    assert_eq!(key.status, 201, "{}", key.text);
    let secret = key.body["key"].as_str().unwrap();
    assert!(secret.starts_with(key.body["prefix"].as_str().unwrap()));
    assert!(key.body["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(app.get("/v1/event-types", secret).await.status, 200);

    assert_error(&app.admin_post("/v1/orgs/org_nope/api-keys", Value::Null).await, 404, "NOT_FOUND");
});

both_backends!(organisations_see_only_their_own_data, |app: TestApp| async move {
    let (_, key_a) = app.new_org("alpha", 1000).await;
    let (_, key_b) = app.new_org("beta", 1000).await;
    assert_eq!(app.post("/v1/event-types", &key_a, json!({"name": "alpha.only"})).await.status, 201);
    // The same name in another organisation is no conflict.
    assert_eq!(app.post("/v1/event-types", &key_b, json!({"name": "alpha.only"})).await.status, 201);
    let b_list = app.get("/v1/event-types", &key_b).await;
    assert_eq!(b_list.body["data"].as_array().unwrap().len(), 1);
    let a_id = app.get("/v1/event-types", &key_a).await.body["data"][0]["id"].clone();
    assert_ne!(b_list.body["data"][0]["id"], a_id);
});

both_backends!(rate_limit_allows_a_minute_then_refuses, |app: TestApp| async move {
    let (_, key) = app.new_org("limited", 100).await;
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..300 {
        let r = app.get("/v1/event-types", &key).await;
        assert!(r.header("ratelimit-limit").is_some_and(|v| v == "100"), "RateLimit-Limit on every answer");
        assert!(r.header("ratelimit-remaining").is_some());
        assert!(r.header("ratelimit-reset").is_some());
        match r.status.as_u16() {
            200 => ok += 1,
            429 => {
                assert_error(&r, 429, "RATE_LIMITED");
                assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
                limited += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    // 100 at once, plus what refilled (100/min) while the loop ran.
    assert!((100..=110).contains(&ok), "ok={ok}");
    assert_eq!(ok + limited, 300);
    // Another organisation is not affected, and the server keeps serving.
    assert_eq!(app.get("/v1/event-types", &app.default_key).await.status, 200);
});

both_backends!(idempotency_keys_replay_the_first_answer, |app: TestApp| async move {
    let key = app.default_key.clone();
    let send = |body: Value, idem: &'static str| {
        let req = app
            .client
            .post(app.url("/v1/event-types"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Idempotency-Key", idem));
        async move { crate::helpers::read_reply(req.send_json(&body).await.unwrap()).await }
    };
    let first = send(json!({"name": "order.created"}), "k-1").await;
    assert_eq!(first.status, 201);
    let again = send(json!({"name": "order.created"}), "k-1").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let other_body = send(json!({"name": "order.deleted"}), "k-1").await;
    assert_error(&other_body, 409, "CONFLICT");

    let list = app.get("/v1/event-types", &key).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1, "nothing created twice");

    // A key is per organisation: another organisation may use the same key freely.
    let (_, other) = app.new_org("other", 1000).await;
    let r = app
        .client
        .post(app.url("/v1/event-types"))
        .insert_header(("Authorization", format!("Bearer {other}")))
        .insert_header(("Idempotency-Key", "k-1"))
        .send_json(&json!({"name": "order.created"}))
        .await
        .unwrap();
    let r = crate::helpers::read_reply(r).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("idempotent-replayed"), Some("false"));
});

both_backends!(lists_paginate_with_cursors, |app: TestApp| async move {
    let key = app.default_key.clone();
    for i in 0..7 {
        assert_eq!(app.post("/v1/event-types", &key, json!({"name": format!("t.n{i}")})).await.status, 201);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/event-types?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = app.get(&path, &key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for t in page.body["data"].as_array().unwrap() {
            seen.push(t["name"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/event-types?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).rev().map(|i| format!("t.n{i}")).collect();
    assert_eq!(seen, expected, "newest first, each once");
    assert_error(&app.get("/v1/event-types?limit=0", &key).await, 400, "VALIDATION_ERROR");
    assert_error(&app.get("/v1/event-types?limit=999", &key).await, 400, "VALIDATION_ERROR");
    assert_error(&app.get("/v1/event-types?cursor=%%%", &key).await, 400, "VALIDATION_ERROR");
});

both_backends!(a_panicking_handler_is_a_500_and_the_server_lives_on, |app: TestApp| async move {
    let r = app.request("GET", "/test/panic", None, None).await;
    assert_error(&r, 500, "INTERNAL_ERROR");
    assert!(!r.text.contains("deliberate"), "no detail leaks");
    for _ in 0..3 {
        assert_eq!(app.request("GET", "/healthz", None, None).await.status, 200);
    }
});

both_backends!(openapi_describes_every_route, |app: TestApp| async move {
    let doc = app.request("GET", "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for (method, path) in [
        ("post", "/v1/orgs"),
        ("post", "/v1/orgs/{org_id}/api-keys"),
        ("get", "/v1/event-types"),
        ("get", "/readyz"),
    ] {
        assert!(doc.body["paths"][path][method].is_object(), "{method} {path}");
    }
});

/// PostgreSQL only: an embedded SQLite file has no "unreachable" state (open files stay
/// usable even when unlinked).
#[actix_web::test]
async fn a_lost_database_answers_503_and_readyz_says_so_postgres() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else { return };
    assert_eq!(app.request("GET", "/readyz", None, None).await.status, 200);
    assert_eq!(
        app.post("/v1/event-types", &app.default_key, json!({"name": "before.loss"})).await.status,
        201
    );
    app.drop_database();
    let ready = app.request("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["code"], "UNAVAILABLE");
    assert_eq!(ready.body["checks"]["database"], "unreachable");
    // The key is cached, so this reaches the store, which is gone: 503, not 500, no hang.
    let started = std::time::Instant::now();
    let publish = app.post("/v1/events", &app.default_key, json!({"type": "a.b", "data": {}})).await;
    assert_error(&publish, 503, "UNAVAILABLE");
    assert!(publish.header("retry-after").is_some());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "answered promptly");
    assert_eq!(app.request("GET", "/healthz", None, None).await.status, 200, "the process lives on");
}

// A standard generator makes TypeScript types from the description, and they compile
// (`openapi-typescript`, then `tsc --noEmit --strict` over them and code that uses them).
both_backends!(openapi_generates_types_that_compile, |app: TestApp| async move {
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/.bin");
    if !tools.join("openapi-typescript").exists() {
        eprintln!("SKIPPED (browser): run `npm ci --prefix tests/browser` for openapi-typescript and tsc");
        return;
    }
    let doc = app.request("GET", "/openapi.json", None, None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openapi.json"), &doc.text).unwrap();
    std::fs::write(
        dir.path().join("use.ts"),
        r#"import type { components, paths } from "./herald";
type NewEvent = components["schemas"]["NewEvent"];
type Published = paths["/v1/events"]["post"]["responses"]["202"]["content"]["application/json"];
type Endpoints = paths["/v1/endpoints"]["get"]["responses"]["200"]["content"]["application/json"];
const event: NewEvent = { type: "order.created", data: { order: 42 } };
export const seen: [NewEvent, Published["seq"] | null, Endpoints["next_cursor"]] = [event, null, null];
"#,
    )
    .unwrap();
    let run = |tool: &str, args: &[&str]| {
        let out =
            std::process::Command::new(tools.join(tool)).args(args).current_dir(dir.path()).output().unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{tool} failed:\n{text}");
    };
    run("openapi-typescript", &["openapi.json", "-o", "herald.d.ts"]);
    run("tsc", &["--noEmit", "--strict", "herald.d.ts", "use.ts"]);
});

// What the OpenAPI description promises, the server does: a 405 names the allowed methods,
// a whole number may be written `10.0`, and any base64url cursor is a position in a list.
both_backends!(the_server_keeps_the_descriptions_promises, |app: TestApp| async move {
    let key = app.default_key.clone();
    let wrong = app.request("PUT", "/v1/events", Some(&key), Some(&json!({}))).await;
    assert_error(&wrong, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(wrong.header("allow"), Some("POST, GET"));

    let body = json!({"url": "http://127.0.0.1:9/x", "events": ["*"], "max_in_flight": 10.0, "versions": {"a.b": 2.0}});
    let created = app.post("/v1/endpoints", &key, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        (created.body["max_in_flight"].clone(), created.body["versions"]["a.b"].clone()),
        (json!(10), json!(2))
    );
    let half = app
        .post(
            "/v1/endpoints",
            &key,
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"], "max_in_flight": 10.5}),
        )
        .await;
    assert_error(&half, 400, "VALIDATION_ERROR");
    assert_eq!(half.body["issues"][0]["path"], json!(["max_in_flight"]));

    for path in ["/v1/events?cursor=AB", "/v1/endpoints?cursor=zzzz", "/v1/event-types?cursor=x_-y"] {
        let page = app.get(path, &key).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page.body["data"].is_array());
    }
});
