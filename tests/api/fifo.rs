//! Ordered delivery: a FIFO endpoint gets its deliveries one at a time, in event order,
//! the next only once the previous one is final; an operator can cancel the one blocking it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::delivery::{ms, only_delivery, publish_type, sleep, text, wait_delivery};
use crate::helpers::{TestApp, assert_error};
use crate::receiver::{Behaviour, Receiver};
use crate::{both_backends, both_backends_with};

const WAIT: Duration = Duration::from_secs(15);

async fn fifo_endpoint(app: &TestApp, receiver: &Receiver) -> String {
    let body =
        json!({"url": receiver.url("/hook"), "events": ["step.*"], "ordering": "fifo", "max_in_flight": 8});
    let r = app.post("/v1/endpoints", &app.default_key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["ordering"], "fifo");
    text(&r.body["id"])
}

fn arrivals(receiver: &Receiver) -> Vec<String> {
    receiver.received().iter().filter_map(|r| r.webhook_id().map(str::to_string)).collect()
}

/// A FIFO endpoint whose receiver fails its first delivery (retried an hour later, on the
/// test's schedule), and three events published to it: the endpoint, the receiver, the
/// three event ids, once the queue shows it is blocked.
async fn blocked_queue(app: &TestApp) -> (String, Receiver, Vec<String>, Value) {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    receiver.push_once(Behaviour::status(503));
    let endpoint = fifo_endpoint(app, &receiver).await;
    let mut events = Vec::new();
    for i in 1..=3 {
        events.push(publish_type(app, &key, "step.done", json!({"i": i})).await);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let queue = loop {
        let view = app.get(&format!("/v1/endpoints/{endpoint}"), &key).await;
        if view.body["queue"]["blocked"] == true || tokio::time::Instant::now() >= deadline {
            break view.body["queue"].clone();
        }
        sleep(ms(20)).await;
    };
    receiver.assert_count_stays(1, Duration::from_millis(200)).await;
    (endpoint, receiver, events, queue)
}

both_backends!(
    a_fifo_endpoint_gets_its_events_in_order_each_after_the_last_is_final,
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let receiver = Receiver::start().await;
        receiver.set_default(Behaviour::ok().delay(ms(5)));
        // The first event fails twice (retried on the test schedule, 10 and 20 ms) before it
        // succeeds; nothing after it may overtake it.
        receiver.push_once(Behaviour::status(500));
        receiver.push_once(Behaviour::status(500));
        let endpoint = fifo_endpoint(&app, &receiver).await;
        let mut events = Vec::new();
        for i in 0..12 {
            events.push(publish_type(&app, &key, "step.done", json!({"i": i})).await);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        while arrivals(&receiver).len() < events.len() + 2 && tokio::time::Instant::now() < deadline {
            sleep(ms(20)).await;
        }
        let mut expected = vec![events[0].clone(), events[0].clone()];
        expected.extend(events.iter().cloned());
        assert_eq!(arrivals(&receiver), expected, "strictly in order, the first retried in its place");
        assert_eq!(receiver.max_in_flight(), 1, "one at a time, though max_in_flight is 8");
        for id in &events {
            wait_delivery(&app, &key, &only_delivery(&app, &key, id).await, "succeeded", WAIT).await;
        }
        let view = app.get(&format!("/v1/endpoints/{endpoint}"), &key).await;
        assert_eq!(view.body["queue"], json!({"head": null, "blocked": false, "blocked_by": null}));
    }
);

both_backends_with!(
    a_blocked_fifo_endpoint_names_its_blocker_and_cancel_moves_it_on,
    // The head's retry is an hour away: the queue stays blocked until it is cancelled.
    |s: &mut herald::Settings| s.delivery.retry_schedule = vec![Duration::from_secs(3600)],
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let (_, receiver, events, queue) = blocked_queue(&app).await;
        let blocker = only_delivery(&app, &key, &events[0]).await;
        assert_eq!(queue["head"], blocker.as_str(), "{queue}");
        assert_eq!(queue["blocked_by"]["delivery_id"], blocker.as_str());
        assert_eq!(queue["blocked_by"]["last_status_code"], 503);
        assert!(queue["blocked_by"]["next_attempt_at"].is_string(), "{queue}");

        let (_, other_key) = app.new_org("other", 100_000).await;
        let path = format!("/v1/deliveries/{blocker}/cancel");
        assert_error(&app.post(&path, &other_key, Value::Null).await, 404, "NOT_FOUND");
        let cancelled = app.post(&path, &key, Value::Null).await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.text);
        assert_eq!(cancelled.body["status"], "failed");
        assert_eq!(cancelled.body["last_error"], "cancelled");
        assert_error(&app.post(&path, &key, Value::Null).await, 409, "CONFLICT");
        assert_error(&app.post("/v1/deliveries/dlv_nope/cancel", &key, Value::Null).await, 404, "NOT_FOUND");

        // The queue moves on, in order.
        let deadline = tokio::time::Instant::now() + WAIT;
        while arrivals(&receiver).len() < 3 && tokio::time::Instant::now() < deadline {
            sleep(ms(20)).await;
        }
        assert_eq!(arrivals(&receiver), events);
    }
);

both_backends_with!(
    switching_a_blocked_fifo_endpoint_to_none_sends_what_waited_behind_the_head,
    |s: &mut herald::Settings| s.delivery.retry_schedule = vec![Duration::from_secs(3600)],
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let (endpoint, _receiver, events, _) = blocked_queue(&app).await;
        let (blocker, behind) = (only_delivery(&app, &key, &events[0]).await, &events[1..]);
        let patch = json!({"ordering": "none"});
        let r = app.request("PATCH", &format!("/v1/endpoints/{endpoint}"), Some(&key), Some(&patch)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // What waited undated behind the head is due now; the head keeps its retry time.
        for id in behind {
            wait_delivery(&app, &key, &only_delivery(&app, &key, id).await, "succeeded", WAIT).await;
        }
        let head = app.get(&format!("/v1/deliveries/{blocker}"), &key).await;
        assert_eq!(head.body["status"], "pending");
        assert!(head.body["next_attempt_at"].is_string(), "{}", head.text);
    }
);
