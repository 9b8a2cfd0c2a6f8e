//! Section 6: Server-Sent Events, parsed by a real SSE client.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_error, spawn_app_with};
use crate::sse_client::{Frame, auth, connect};

const WAIT: Duration = Duration::from_secs(10);

async fn publish(app: &TestApp, key: &str, event_type: &str, n: usize) -> i64 {
    let r = app.post("/v1/events", key, json!({"type": event_type, "data": {"n": n}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body["seq"].as_i64().unwrap()
}

both_backends!(stream_filters_by_exact_and_prefix_types, |app: TestApp| async move {
    let key = app.default_key.clone();
    let mut s = connect(&app, "/v1/events/stream?types=order.*,user.created", &[auth(&key)]).await;
    assert_eq!(s.status, 200);
    assert!(s.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(s.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(s.headers.get("x-accel-buffering").unwrap(), "no");
    assert!(matches!(s.next_frame(WAIT).await, Some(Frame::Retry(_))), "a retry hint comes first");

    let a = publish(&app, &key, "order.created", 1).await;
    publish(&app, &key, "user.deleted", 2).await;
    let b = publish(&app, &key, "user.created", 3).await;
    let c = publish(&app, &key, "order.line.added", 4).await;
    let got = s.take_events(3, WAIT).await;
    let seqs: Vec<i64> = got.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(seqs, vec![a, b, c]);
    let types: Vec<&str> = got.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(types, vec!["order.created", "user.created", "order.line.added"]);
    let (_, _, envelope) = &got[0];
    assert_eq!(envelope["type"], "order.created");
    assert_eq!(envelope["data"]["n"], 1);
    assert!(envelope["id"].as_str().unwrap().starts_with("evt_"));
    assert!(s.next_event(Duration::from_millis(300)).await.is_none(), "user.deleted is filtered out");
});

both_backends!(stream_requires_credentials_and_isolates_tenants, |app: TestApp| async move {
    let anonymous = connect(&app, "/v1/events/stream", &[]).await;
    assert_eq!(anonymous.status, 401);
    let bad = app.request("GET", "/v1/events/stream?token=st_nope", None, None).await;
    assert_error(&bad, 401, "UNAUTHORIZED");
    let bad_filter = app.get("/v1/events/stream?types=has%20space", &app.default_key).await;
    assert_error(&bad_filter, 400, "VALIDATION_ERROR");

    let (_, other_key) = app.new_org("other", 100_000).await;
    let mut theirs = connect(&app, "/v1/events/stream", &[auth(&other_key)]).await;
    let mut ours = connect(&app, "/v1/events/stream", &[auth(&app.default_key)]).await;
    let seq = publish(&app, &app.default_key, "secret.thing", 1).await;
    assert_eq!(ours.next_event(WAIT).await.unwrap().0, seq);
    assert!(theirs.next_event(Duration::from_millis(500)).await.is_none(), "another org's event leaked");
});

both_backends!(stream_tokens_authenticate_and_bind_the_filter, |app: TestApp| async move {
    let key = app.default_key.clone();
    let token = app.post("/v1/stream-tokens", &key, json!({"types": ["pay.*"]})).await;
    assert_eq!(token.status, 201, "{}", token.text);
    let t = token.body["token"].as_str().unwrap().to_string();
    assert!(token.body["expires_at"].is_string());
    let mut s = connect(&app, &format!("/v1/events/stream?token={t}"), &[]).await;
    assert_eq!(s.status, 200);
    publish(&app, &key, "order.created", 1).await;
    let seq = publish(&app, &key, "pay.done", 2).await;
    assert_eq!(s.next_event(WAIT).await.unwrap().0, seq, "the token's filter applies");
    let widened = connect(&app, &format!("/v1/events/stream?token={t}&types=order.*"), &[]).await;
    assert_eq!(widened.status, 403);
});

both_backends!(stream_sends_keep_alives_when_idle, |app: TestApp| async move {
    let mut s = connect(&app, "/v1/events/stream", &[auth(&app.default_key)]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut saw = false;
    while tokio::time::Instant::now() < deadline {
        if let Some(Frame::Comment(c)) = s.next_frame(Duration::from_secs(5)).await
            && c == "keep-alive"
        {
            saw = true;
            break;
        }
    }
    assert!(saw, "a keep-alive comment within 5 s (sse.keep_alive is 1 s in tests)");
});

both_backends!(stream_resumes_after_a_disconnect_without_gaps, |app: TestApp| async move {
    let key = app.default_key.clone();
    let mut published = Vec::new();
    for i in 0..5 {
        published.push(publish(&app, &key, "order.created", i).await);
    }
    let mut first =
        connect(&app, "/v1/events/stream", &[auth(&key), ("Last-Event-ID", published[1].to_string())]).await;
    let early = first.take_events(3, WAIT).await;
    assert_eq!(
        early.iter().map(|e| e.0).collect::<Vec<_>>(),
        published[2..5].to_vec(),
        "replay after the given id"
    );

    // Publishing goes on in the background while the client disconnects and resumes.
    let bg_app_url = app.url("/v1/events");
    let bg_key = key.clone();
    let publisher = actix_web::rt::spawn(async move {
        let client = awc::Client::default();
        let mut seqs = Vec::new();
        for i in 0..40 {
            let mut r = client
                .post(&bg_app_url)
                .insert_header(("Authorization", format!("Bearer {bg_key}")))
                .send_json(&json!({"type": "order.created", "data": {"n": 100 + i}}))
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            seqs.push(body["seq"].as_i64().unwrap());
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        seqs
    });
    let mut received: Vec<i64> = early.iter().map(|e| e.0).collect();
    received.extend(first.take_events(10, WAIT).await.iter().map(|e| e.0));
    drop(first);
    let last = *received.last().unwrap();
    let mut second =
        connect(&app, "/v1/events/stream", &[auth(&key), ("Last-Event-ID", last.to_string())]).await;
    let later = publisher.await.unwrap();
    let all_expected: BTreeSet<i64> = published[2..].iter().chain(later.iter()).copied().collect();
    let max = *all_expected.iter().max().unwrap();
    let mut resumed = Vec::new();
    while resumed.last().is_none_or(|s| *s < max) {
        match second.next_event(WAIT).await {
            Some(e) => resumed.push(e.0),
            None => break,
        }
    }
    assert!(resumed.windows(2).all(|w| w[0] < w[1]), "in order after resuming: {resumed:?}");
    assert!(resumed.first().is_some_and(|s| *s > last), "nothing before the resume point");
    received.extend(resumed);
    let got: BTreeSet<i64> = received.iter().copied().collect();
    assert_eq!(got, all_expected, "no event missing across the reconnect");
});

both_backends!(concurrent_publishers_reach_a_stream_in_sequence_order, |app: TestApp| async move {
    let key = app.default_key.clone();
    let mut s = connect(&app, "/v1/events/stream", &[auth(&key)]).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (url, key) = (app.url("/v1/events"), key.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let client = awc::Client::default();
            let mut seqs = Vec::new();
            for i in 0..25 {
                let mut r = client
                    .post(&url)
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .send_json(&json!({"type": "load.test", "data": {"t": t, "i": i}}))
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                let body: serde_json::Value = r.json().await.unwrap();
                seqs.push(body["seq"].as_i64().unwrap());
            }
            seqs
        }));
    }
    let mut expected = BTreeSet::new();
    for t in tasks {
        expected.extend(t.await.unwrap());
    }
    let got = s.take_events(expected.len(), Duration::from_secs(20)).await;
    let seqs: Vec<i64> = got.iter().map(|e| e.0).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "strictly increasing, no duplicates");
    assert_eq!(seqs.into_iter().collect::<BTreeSet<_>>(), expected, "every event, none skipped");
});

async fn slow_client_is_cut_off_and_resumes(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.sse.mailbox = 4).await else { return };
    let key = app.default_key.clone();
    let mut slow = connect(&app, "/v1/events/stream", &[auth(&key)]).await;
    assert_eq!(slow.status, 200);
    // The client stops reading; big events fill the socket buffers, then the mailbox.
    let filler = "x".repeat(16 * 1024);
    let mut seqs = Vec::new();
    for i in 0..400 {
        let r =
            app.post("/v1/events", &key, json!({"type": "big.one", "data": {"i": i, "pad": filler}})).await;
        assert_eq!(r.status, 202);
        seqs.push(r.body["seq"].as_i64().unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut dropped = false;
    while tokio::time::Instant::now() < deadline && !dropped {
        let m = app.request("GET", "/metrics", None, None).await;
        dropped =
            m.text.lines().any(|l| l.starts_with("herald_streams_dropped_slow_total ") && !l.ends_with(" 0"));
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "the slow stream was cut off");
    // What the slow client did get, then a resume from its last id: nothing lost.
    let mut got = Vec::new();
    while let Some(e) = slow.next_event(Duration::from_secs(2)).await {
        got.push(e.0);
    }
    let last = got.last().copied().unwrap_or(0);
    let mut resumed =
        connect(&app, "/v1/events/stream", &[auth(&key), ("Last-Event-ID", last.to_string())]).await;
    let rest = resumed.take_events(seqs.iter().filter(|s| **s > last).count(), Duration::from_secs(20)).await;
    got.extend(rest.iter().map(|e| e.0));
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), seqs.into_iter().collect::<BTreeSet<_>>());
}

#[actix_web::test]
async fn slow_client_is_cut_off_and_resumes_sqlite() {
    slow_client_is_cut_off_and_resumes(Backend::Sqlite).await;
}

#[actix_web::test]
async fn slow_client_is_cut_off_and_resumes_postgres() {
    slow_client_is_cut_off_and_resumes(Backend::Postgres).await;
}

both_backends!(closed_streams_leave_the_hub, |app: TestApp| async move {
    let key = app.default_key.clone();
    let open_streams = |text: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix("herald_streams_open "))
            .and_then(|v| v.trim().parse().ok())
            .expect("herald_streams_open in /metrics")
    };
    for _ in 0..300 {
        let mut s = connect(&app, "/v1/events/stream", &[auth(&key)]).await;
        assert_eq!(s.status, 200);
        assert!(matches!(s.next_frame(WAIT).await, Some(Frame::Retry(_))));
        drop(s);
    }
    // Each closed connection ends its response body, which takes the stream off the hub.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut open = i64::MAX;
    while tokio::time::Instant::now() < deadline {
        open = open_streams(&app.request("GET", "/metrics", None, None).await.text);
        if open == 0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(open, 0, "every session actor stopped");
});

/// Starts a second herald on the same database as a first one (a second node).
async fn second_node(url: &str) -> (String, actix_web::dev::ServerHandle) {
    let mut settings = crate::helpers::test_settings();
    settings.database.url = url.to_string();
    let app = herald::Application::build(settings).await.expect("second node starts");
    assert!(app.bootstrap_key.is_none(), "the database is already set up");
    let (address, handle) = (format!("http://127.0.0.1:{}", app.port()), app.handle());
    actix_web::rt::spawn(app.run_until_stopped());
    (address, handle)
}

async fn a_stream_on_one_node_sees_events_published_on_another(backend: Backend) {
    let Some(db) = crate::helpers::fresh_database(backend) else { return };
    let mut settings = crate::helpers::test_settings();
    settings.database.url = db.url.clone();
    let node_a = herald::Application::build(settings).await.unwrap();
    let key = node_a.bootstrap_key.clone().unwrap();
    let a = format!("http://127.0.0.1:{}", node_a.port());
    let a_handle = node_a.handle();
    actix_web::rt::spawn(node_a.run_until_stopped());
    let (b, b_handle) = second_node(&db.url).await;

    let client = awc::Client::builder().timeout(Duration::from_secs(3600)).finish();
    let res = client.get(format!("{b}/v1/events/stream")).insert_header(auth(&key)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = crate::sse_client::from_response(res);
    let mut published = Vec::new();
    for i in 0..20 {
        let mut r = awc::Client::default()
            .post(format!("{a}/v1/events"))
            .insert_header(auth(&key))
            .send_json(&json!({"type": "node.a", "data": {"i": i}}))
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        published.push(body["seq"].as_i64().unwrap());
    }
    let got: Vec<i64> = stream.take_events(published.len(), WAIT).await.iter().map(|e| e.0).collect();
    assert_eq!(got, published, "node B streams node A's events, in sequence order");
    a_handle.stop(false).await;
    b_handle.stop(false).await;
    drop(db);
}

#[actix_web::test]
async fn streams_span_nodes_sqlite() {
    a_stream_on_one_node_sees_events_published_on_another(Backend::Sqlite).await;
}

#[actix_web::test]
async fn streams_span_nodes_postgres() {
    a_stream_on_one_node_sees_events_published_on_another(Backend::Postgres).await;
}

both_backends!(unnamed_frames_reach_an_event_source_onmessage, |app: TestApp| async move {
    let key = app.default_key.clone();
    let mut s = connect(&app, "/v1/events/stream?unnamed=true", &[auth(&key)]).await;
    assert_eq!(s.status, 200);
    let seq = publish(&app, &key, "order.created", 1).await;
    let frame = loop {
        if let Frame::Event { id, event, data } = s.next_frame(WAIT).await.expect("a frame") {
            break (id, event, data);
        }
    };
    assert_eq!(frame.0, Some(seq.to_string()));
    assert_eq!(frame.1, None, "no event: line, so EventSource dispatches it as a message");
    let envelope: serde_json::Value = serde_json::from_str(&frame.2).unwrap();
    assert_eq!(envelope["type"], "order.created", "the type is still in the data");
    let bad = app.get("/v1/events/stream?unnamed=maybe", &key).await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
});
