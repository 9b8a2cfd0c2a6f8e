//! Dashboard sessions (`/v1/sessions`) and the chart data (`/v1/stats`), over plain HTTP.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Reply, TestApp, assert_error, read_reply};
use crate::receiver::{Behaviour, Receiver};
use crate::sse_client::connect;

const WAIT: Duration = Duration::from_secs(10);

/// Sends a request carrying a cookie (and maybe an Origin), as a browser would.
async fn with_cookie(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(method, app.url(path)).insert_header(("Cookie", cookie.to_string()));
    if let Some(o) = origin {
        req = req.insert_header(("Origin", o.to_string()));
    }
    let res = match body {
        Some(b) => req.insert_header(("Content-Type", "application/json")).send_body(b.to_string()).await,
        None => req.send().await,
    };
    read_reply(res.expect("request reaches herald")).await
}

/// Signs in and returns the `name=value` pair of the session cookie.
async fn sign_in(app: &TestApp, key: &str) -> String {
    let r = app.request("POST", "/v1/sessions", None, Some(&json!({"key": key}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let set = r.header("set-cookie").expect("a session cookie").to_string();
    set.split(';').next().unwrap().trim().to_string()
}

both_backends!(a_key_becomes_an_http_only_session_cookie, |app: TestApp| async move {
    let r = app.request("POST", "/v1/sessions", None, Some(&json!({"key": app.default_key}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body["org_id"].as_str().unwrap().starts_with("org_"), "{}", r.text);
    assert!(r.body["expires_at"].is_string());
    assert!(!r.text.contains(&app.default_key), "the answer does not echo the key");
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(set.starts_with("herald_session=hs_"), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(!set.contains(&app.default_key), "the cookie is not the key");
    let cookie = set.split(';').next().unwrap().to_string();

    // The cookie authenticates API calls, reads and writes alike, for its organisation only.
    let me = with_cookie(&app, "GET", "/v1/sessions", &cookie, None, None).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["org_id"], r.body["org_id"]);
    let created = with_cookie(
        &app,
        "POST",
        "/v1/endpoints",
        &cookie,
        Some(&app.address),
        Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let listed = with_cookie(&app, "GET", "/v1/endpoints", &cookie, None, None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let (_, other_key) = app.new_org("other", 100_000).await;
    let theirs = app.get("/v1/endpoints", &other_key).await;
    assert_eq!(theirs.body["data"].as_array().unwrap().len(), 0, "another org sees nothing");
    let id = created.body["id"].as_str().unwrap();
    let other_cookie = sign_in(&app, &other_key).await;
    let peek = with_cookie(&app, "GET", &format!("/v1/endpoints/{id}"), &other_cookie, None, None).await;
    assert_error(&peek, 404, "NOT_FOUND");
});

both_backends!(bad_keys_and_forged_cookies_are_refused, |app: TestApp| async move {
    let bad = app.request("POST", "/v1/sessions", None, Some(&json!({"key": "hk_not_a_key"}))).await;
    assert_error(&bad, 401, "UNAUTHORIZED");
    assert!(bad.header("set-cookie").is_none());
    let wrong_type = app.request("POST", "/v1/sessions", None, Some(&json!({"key": 42}))).await;
    assert_error(&wrong_type, 400, "VALIDATION_ERROR");
    let missing = app.request("POST", "/v1/sessions", None, Some(&json!({}))).await;
    assert_error(&missing, 400, "VALIDATION_ERROR");

    let forged = with_cookie(&app, "GET", "/v1/endpoints", "herald_session=hs_forged", None, None).await;
    assert_error(&forged, 401, "UNAUTHORIZED");
    let nobody = app.request("GET", "/v1/sessions", None, None).await;
    assert_error(&nobody, 401, "UNAUTHORIZED");
});

both_backends!(a_cross_site_write_with_the_cookie_is_refused, |app: TestApp| async move {
    let cookie = sign_in(&app, &app.default_key).await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]});
    let evil =
        with_cookie(&app, "POST", "/v1/endpoints", &cookie, Some("https://evil.example"), Some(body.clone()))
            .await;
    assert_error(&evil, 403, "FORBIDDEN");
    let listed = app.get("/v1/endpoints", &app.default_key).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0, "nothing was created");
    // Reads carry no risk of their own; the same-origin write goes through.
    let read = with_cookie(&app, "GET", "/v1/endpoints", &cookie, Some("https://evil.example"), None).await;
    assert_eq!(read.status, 200);
    let own = with_cookie(&app, "POST", "/v1/endpoints", &cookie, Some(&app.address), Some(body)).await;
    assert_eq!(own.status, 201, "{}", own.text);
});

both_backends!(signing_out_ends_the_session_everywhere, |app: TestApp| async move {
    let cookie = sign_in(&app, &app.default_key).await;
    let second = sign_in(&app, &app.default_key).await;
    let out = with_cookie(&app, "DELETE", "/v1/sessions", &cookie, Some(&app.address), None).await;
    assert_eq!(out.status, 204, "{}", out.text);
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("herald_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(out.header("clear-site-data"), Some("\"cookies\""));
    // A copy of the old cookie no longer works; another session is untouched.
    let after = with_cookie(&app, "GET", "/v1/endpoints", &cookie, None, None).await;
    assert_error(&after, 401, "UNAUTHORIZED");
    let other = with_cookie(&app, "GET", "/v1/endpoints", &second, None, None).await;
    assert_eq!(other.status, 200);
    // Signing out twice, or without a cookie, is harmless.
    let again = with_cookie(&app, "DELETE", "/v1/sessions", &cookie, None, None).await;
    assert_eq!(again.status, 204);
});

both_backends!(the_stream_accepts_the_session_cookie, |app: TestApp| async move {
    let cookie = sign_in(&app, &app.default_key).await;
    let mut s = connect(&app, "/v1/events/stream?types=dash.*", &[("Cookie", cookie)]).await;
    assert_eq!(s.status, 200);
    let r = app.post("/v1/events", &app.default_key, json!({"type": "dash.seen", "data": {"n": 1}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let (seq, kind, _) = s.next_event(WAIT).await.expect("the event arrives on the cookie's stream");
    assert_eq!((seq, kind.as_str()), (r.body["seq"].as_i64().unwrap(), "dash.seen"));
});

both_backends!(stats_count_attempts_by_outcome_and_latency, |app: TestApp| async move {
    let key = app.default_key.clone();
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.set_default(Behaviour::status(400));
    for (r, kind) in [(&good, "stats.good"), (&bad, "stats.bad")] {
        let ep = app.post("/v1/endpoints", &key, json!({"url": r.url("/hook"), "events": [kind]})).await;
        assert_eq!(ep.status, 201, "{}", ep.text);
    }
    for i in 0..3 {
        app.post("/v1/events", &key, json!({"type": "stats.good", "data": {"i": i}})).await;
    }
    app.post("/v1/events", &key, json!({"type": "stats.bad", "data": {}})).await;
    good.wait_for(3, WAIT).await;
    bad.wait_for(1, WAIT).await;

    // Results are written in batches: wait until the counts are in.
    let deadline = std::time::Instant::now() + WAIT;
    let stats = loop {
        let s = app.get("/v1/stats", &key).await;
        assert_eq!(s.status, 200, "{}", s.text);
        let sum = |f: &str| {
            s.body["minutes"].as_array().unwrap().iter().map(|m| m[f].as_i64().unwrap()).sum::<i64>()
        };
        if sum("succeeded") == 3 && sum("http_error") == 1 {
            assert_eq!(sum("transport_error"), 0);
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "stats never showed 3 + 1 attempts: {}", s.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let histogram = stats.body["latency_histogram"].as_array().unwrap();
    assert_eq!(histogram.last().unwrap()["le_ms"], Value::Null, "the last bucket is unbounded");
    assert_eq!(histogram.iter().map(|b| b["count"].as_i64().unwrap()).sum::<i64>(), 4);
    let minute = &stats.body["minutes"][0];
    assert!(minute["minute"].as_str().unwrap().ends_with(":00Z"), "{minute}");
    assert!(minute["latency_max_ms"].as_i64().unwrap() >= 0);

    // Another organisation sees none of it; a bad window is a validation error.
    let (_, other_key) = app.new_org("other", 100_000).await;
    let theirs = app.get("/v1/stats", &other_key).await;
    assert_eq!(theirs.body["minutes"], json!([]), "{}", theirs.text);
    assert_error(&app.get("/v1/stats?minutes=0", &key).await, 400, "VALIDATION_ERROR");
    assert_error(&app.get("/v1/stats?minutes=lots", &key).await, 400, "VALIDATION_ERROR");
});
