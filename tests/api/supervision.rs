//! Supervision and the stream actor's breaker: an actor that dies (made to panic through
//! the test build's fault-injection route) is replaced by its supervisor while the others
//! keep going, and nothing its client or subscriber was owed is lost.

use std::time::Duration;

use serde_json::json;

use crate::delivery::{ms, only_delivery, publish_type, sleep, subscribe, wait_delivery};
use crate::helpers::TestApp;
use crate::receiver::{Behaviour, Receiver};
use crate::sse_client::{Frame, SseStream, auth, connect};
use crate::tenant::{metric_sum, metrics_text};
use crate::{both_backends, both_backends_with};

const WAIT: Duration = Duration::from_secs(10);

async fn publish_seq(app: &TestApp, key: &str, event_type: &str, n: usize) -> i64 {
    let r = app.post("/v1/events", key, json!({"type": event_type, "data": {"n": n}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body["seq"].as_i64().unwrap()
}

/// Polls /metrics until `metric` (its samples with `label`) satisfies `ok`; its last value.
async fn wait_metric(app: &TestApp, metric: &str, label: Option<&str>, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = metric_sum(&metrics_text(app).await, metric, label).unwrap_or(0.0);
        if ok(value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        sleep(ms(50)).await;
    }
}

/// The events of `n` frames on a stream, failing on a second retry hint (a new connection).
async fn events_on_one_connection(s: &mut SseStream, n: usize) -> Vec<i64> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match s.next_frame(left).await {
            Some(Frame::Event { id, .. }) => seqs.push(id.unwrap().parse().unwrap()),
            Some(Frame::Retry(_)) => panic!("the stream restarted: a second retry hint after {seqs:?}"),
            Some(Frame::Comment(_)) => {}
            None => break,
        }
    }
    seqs
}

both_backends!(
    a_stream_actor_that_dies_is_replaced_and_its_client_loses_nothing,
    |app: TestApp| async move {
        let (victim_org, victim_key) = app.new_org("victim", 100_000).await;
        let mut victim = connect(&app, "/v1/events/stream", &[auth(&victim_key)]).await;
        let mut bystander = connect(&app, "/v1/events/stream", &[auth(&app.default_key)]).await;
        for s in [&mut victim, &mut bystander] {
            assert_eq!(s.status, 200);
            assert!(matches!(s.next_frame(WAIT).await, Some(Frame::Retry(_))));
        }
        let first = publish_seq(&app, &victim_key, "victim.event", 0).await;
        assert_eq!(events_on_one_connection(&mut victim, 1).await, vec![first]);

        let r = app.admin_post("/v1/admin/faults/panic", json!({"streams_of_org": victim_org})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Published while the victim's actor dies and is replaced.
        let (mut theirs, mut ours) = (Vec::new(), Vec::new());
        for i in 0..20 {
            theirs.push(publish_seq(&app, &victim_key, "victim.event", i).await);
            ours.push(publish_seq(&app, &app.default_key, "bystander.event", i).await);
        }
        assert_eq!(events_on_one_connection(&mut bystander, 20).await, ours, "the other stream kept going");
        assert_eq!(
            events_on_one_connection(&mut victim, 20).await,
            theirs,
            "the same connection goes on after its actor died: every event once, in order"
        );
        let restarts = wait_metric(&app, "herald_actor_restarts_total", Some("stream"), |v| v >= 1.0).await;
        assert_eq!(restarts, 1.0, "the hub noticed the one actor that died");
        assert_eq!(wait_metric(&app, "herald_stream_actors", None, |v| v == 2.0).await, 2.0);

        // And it keeps serving live events afterwards.
        let later = publish_seq(&app, &victim_key, "victim.event", 99).await;
        assert_eq!(events_on_one_connection(&mut victim, 1).await, vec![later]);
    }
);

both_backends_with!(
    an_endpoint_actor_that_dies_is_replaced_and_its_work_goes_on,
    // A lease far longer than the test: the work must come back because the Registry
    // noticed the death, not because a lease ran out.
    |s: &mut herald::config::Settings| s.delivery.lease = Duration::from_secs(120),
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let (stuck, steady) = (Receiver::start().await, Receiver::start().await);
        stuck.set_default(Behaviour::ok().delay(ms(2000)));
        let stuck_ep = subscribe(&app, &key, &stuck, json!(["stuck.*"])).await;
        subscribe(&app, &key, &steady, json!(["steady.*"])).await;

        let mut owed = Vec::new();
        for i in 0..3 {
            owed.push(publish_type(&app, &key, "stuck.thing", json!({"i": i})).await);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        while stuck.in_flight() == 0 && tokio::time::Instant::now() < deadline {
            sleep(ms(10)).await;
        }
        assert!(stuck.in_flight() > 0, "the stuck endpoint's actor has attempts in flight");

        let r = app.admin_post("/v1/admin/faults/panic", json!({"endpoint_id": stuck_ep})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["endpoint_actor_found"], true);
        stuck.set_default(Behaviour::ok());

        let mut steady_ids = std::collections::BTreeSet::new();
        for i in 0..5 {
            steady_ids.insert(publish_type(&app, &key, "steady.thing", json!({"i": i})).await);
        }
        steady.wait_for_ids(&steady_ids, None, WAIT).await;

        for event_id in &owed {
            let delivery = only_delivery(&app, &key, event_id).await;
            wait_delivery(&app, &key, &delivery, "succeeded", Duration::from_secs(20)).await;
        }
        let restarts = wait_metric(&app, "herald_actor_restarts_total", Some("endpoint"), |v| v >= 1.0).await;
        assert_eq!(restarts, 1.0, "the Registry noticed the one actor that died");
    }
);

both_backends_with!(
    a_client_that_never_reads_is_cut_off_its_actor_stops_and_it_resumes_losing_nothing,
    |s: &mut herald::config::Settings| s.sse.mailbox = 4,
    |app: TestApp| async move {
        let key = app.default_key.clone();
        // Opened and never read: its socket buffers fill, then its mailbox.
        let mut silent = connect(&app, "/v1/events/stream", &[auth(&key)]).await;
        assert_eq!(silent.status, 200);
        assert_eq!(wait_metric(&app, "herald_stream_actors", None, |v| v == 1.0).await, 1.0);
        let filler = "x".repeat(16 * 1024);
        let mut seqs = Vec::new();
        for i in 0..400 {
            let r = app
                .post("/v1/events", &key, json!({"type": "big.one", "data": {"i": i, "pad": filler}}))
                .await;
            assert_eq!(r.status, 202);
            seqs.push(r.body["seq"].as_i64().unwrap());
        }
        assert!(wait_metric(&app, "herald_streams_dropped_slow_total", None, |v| v >= 1.0).await >= 1.0);
        // The breaker tripped: the actor stopped and the server closed the connection,
        // although the client neither read nor hung up.
        assert_eq!(wait_metric(&app, "herald_stream_actors", None, |v| v == 0.0).await, 0.0);
        assert_eq!(wait_metric(&app, "herald_streams_open", None, |v| v == 0.0).await, 0.0);

        // What it did get (whole frames only), then a resume from its last id.
        let mut got = Vec::new();
        while let Some(e) = silent.next_event(Duration::from_secs(2)).await {
            got.push(e.0);
        }
        let last = got.last().copied().unwrap_or(0);
        let mut resumed =
            connect(&app, "/v1/events/stream", &[auth(&key), ("Last-Event-ID", last.to_string())]).await;
        let missing = seqs.iter().filter(|s| **s > last).count();
        got.extend(resumed.take_events(missing, Duration::from_secs(20)).await.iter().map(|e| e.0));
        assert_eq!(got, seqs, "every event once, in order, across the cut");
    }
);

both_backends!(a_stream_actor_that_keeps_dying_ends_its_stream, |app: TestApp| async move {
    let (victim_org, victim_key) = app.new_org("victim", 100_000).await;
    let mut victim = connect(&app, "/v1/events/stream", &[auth(&victim_key)]).await;
    assert!(matches!(victim.next_frame(WAIT).await, Some(Frame::Retry(_))));
    // Three deaths are replaced; the fourth ends the stream instead of looping.
    for restarts in 1..=4 {
        let r = app.admin_post("/v1/admin/faults/panic", json!({"streams_of_org": victim_org})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let want = f64::from(restarts.min(3));
        let got = wait_metric(&app, "herald_actor_restarts_total", Some("stream"), |v| v >= want).await;
        assert_eq!(got, want);
        if restarts < 4 {
            // A live event shows the replacement serves the same connection.
            let seq = publish_seq(&app, &victim_key, "victim.event", restarts as usize).await;
            assert_eq!(events_on_one_connection(&mut victim, 1).await, vec![seq]);
        }
    }
    let mut last_comment = None;
    while let Some(frame) = victim.next_frame(WAIT).await {
        if let Frame::Comment(c) = frame {
            last_comment = Some(c);
        }
    }
    assert_eq!(last_comment.as_deref(), Some("stream failed; reconnect"), "the stream ended, saying why");
    assert_eq!(wait_metric(&app, "herald_stream_actors", None, |v| v == 0.0).await, 0.0);
});
