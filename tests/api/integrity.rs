//! Integrity under concurrency on one node: changes racing each other (and the delivery
//! engine) never bring back a deleted endpoint or source, never undo a disable, never write
//! back an older circuit count, and a retry never doubles an attempt. Also the lifecycle of
//! an idempotency key whose client hung up, and of idle endpoint actors.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::{join, join_all};
use serde_json::{Value, json};

use crate::delivery::{
    data_ids, get_ok, ms, only_delivery, publish, publish_type, sleep, text, wait_delivery,
};
use crate::helpers::{Reply, TestApp, assert_error, read_reply};
use crate::receiver::{Behaviour, Receiver};
use crate::{both_backends, both_backends_with};

/// Rounds of each race: a lost update that needs a rare interleaving shows in some of them.
const ROUNDS: usize = 200;
/// Changes sent at the same moment as the deciding one (DELETE, disable) in each round.
const RACERS: usize = 40;
/// Upper bound for anything that should happen within milliseconds.
const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched.
const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Polls `cond` every 10 ms; panics naming `what` when it does not hold within `timeout`.
async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "not {what} within {timeout:?}");
        sleep(ms(10)).await;
    }
}

async fn patch(app: &TestApp, key: &str, path: &str, body: &Value) -> Reply {
    app.request("PATCH", path, Some(key), Some(body)).await
}

async fn delete(app: &TestApp, key: &str, path: &str) -> Reply {
    app.request("DELETE", path, Some(key), None).await
}

/// Creates an endpoint; its id.
async fn create_endpoint(app: &TestApp, key: &str, body: Value) -> String {
    let r = app.post("/v1/endpoints", key, body.clone()).await;
    assert_eq!(r.status, 201, "POST /v1/endpoints {body}: {}", r.text);
    text(&r.body["id"])
}

async fn post_with_key(app: &TestApp, key: &str, path: &str, idem: &str, body: &Value) -> Reply {
    let res = app
        .client
        .post(app.url(path))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Idempotency-Key", idem))
        .send_json(body)
        .await
        .expect("request reaches herald");
    read_reply(res).await
}

/// `herald_endpoint_actors` from `/metrics`: the endpoint actors alive on this node.
async fn endpoint_actors(app: &TestApp) -> Option<u64> {
    let m = app.request("GET", "/metrics", None, None).await;
    m.text
        .lines()
        .find_map(|line| line.strip_prefix("herald_endpoint_actors "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Polls `/metrics` until the endpoint-actor gauge reads `n`; how long that took.
async fn wait_for_actors(app: &TestApp, n: u64, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let now = endpoint_actors(app).await;
        if now == Some(n) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "herald_endpoint_actors did not read {n} within {timeout:?} (last: {now:?})"
        );
        sleep(ms(20)).await;
    }
}

/// The i-th racing change of a round: a mix of fields, none of them the status. Every
/// `events` keeps `race.*`, so an endpoint that came back would still match the check.
fn racing_change(i: usize, receiver: &Receiver) -> Value {
    match i % 5 {
        0 => json!({"description": format!("racer {i}")}),
        1 => json!({"url": receiver.url(&format!("/r{i}"))}),
        2 => json!({"events": ["race.*", format!("other.e{i}")]}),
        3 => json!({"rate_limit_per_second": 10 + i as u32}),
        _ => json!({"max_in_flight": 1 + (i % 8) as u32, "description": format!("racer {i}")}),
    }
}

// ---------------------------------------------------------------------------------------
// a) DELETE racing PATCHes: a deleted endpoint stays deleted
// ---------------------------------------------------------------------------------------

both_backends!(a_delete_racing_patches_stays_deleted, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let mut resurrections: Vec<String> = Vec::new();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();

    for round in 0..ROUNDS {
        let id =
            create_endpoint(&app, &key, json!({"url": receiver.url("/hook"), "events": ["race.*"]})).await;
        let path = format!("/v1/endpoints/{id}");
        // The DELETE leaves at a different place among the PATCHes each round; all 41 are
        // on the wire together.
        let delete_at = round % (RACERS + 1);
        let requests = (0..=RACERS).map(|i| {
            let (app, key, path) = (&app, &key, &path);
            let change = racing_change(i, &receiver);
            async move {
                if i == delete_at {
                    ("DELETE", delete(app, key, path).await)
                } else {
                    ("PATCH", patch(app, key, path, &change).await)
                }
            }
        });
        for (method, r) in join_all(requests).await {
            let ok = match method {
                "DELETE" => r.status == 204,
                // A PATCH that lands after the DELETE finds nothing.
                _ => r.status == 200 || r.status == 404,
            };
            assert!(ok, "round {round}: {method} {path} answered {}: {}", r.status, r.text);
            *answers.entry(format!("{method} {}", r.status.as_u16())).or_default() += 1;
        }

        let got = app.get(&path, &key).await;
        let listed = data_ids(&get_ok(&app, &key, "/v1/endpoints?limit=250").await).contains(&id);
        let check = publish(&app, &key, json!({"type": "race.check", "data": {"round": round}})).await;
        let deliveries = check["delivery_count"].as_i64().unwrap_or(-1);
        if got.status != 404 || listed || deliveries != 0 {
            resurrections.push(format!(
                "round {round} (DELETE sent as request {delete_at}): GET {}, listed {listed}, \
                 delivery_count {deliveries}: {}",
                got.status, got.text
            ));
            // Bury it again so later rounds check only their own endpoint.
            delete(&app, &key, &path).await;
        }
    }

    println!(
        "{}: rounds raced: {ROUNDS}, resurrections: {} ({:.1}s; answers {answers:?})",
        app.backend_name(),
        resurrections.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(resurrections.is_empty(), "deleted endpoints came back:\n{}", resurrections.join("\n"));
    // Nothing was ever sent to any of them.
    receiver.assert_count_stays(0, QUIET).await;
});

// ---------------------------------------------------------------------------------------
// b) A disable racing PATCHes of other fields: it stays disabled
// ---------------------------------------------------------------------------------------

both_backends!(a_disable_racing_patches_stays_disabled, |app: TestApp| async move {
    let key = app.default_key.clone();
    let receiver = Receiver::start().await;
    let mut reactivations: Vec<String> = Vec::new();
    let started = Instant::now();

    for round in 0..ROUNDS {
        let id =
            create_endpoint(&app, &key, json!({"url": receiver.url("/hook"), "events": ["race.*"]})).await;
        let path = format!("/v1/endpoints/{id}");
        let disable_at = round % (RACERS + 1);
        let requests = (0..=RACERS).map(|i| {
            let change = if i == disable_at {
                json!({"status": "disabled"})
            } else {
                match i % 3 {
                    0 => json!({"description": format!("racer {i}")}),
                    1 => json!({"url": receiver.url(&format!("/r{i}"))}),
                    _ => json!({"max_in_flight": 1 + (i % 8) as u32}),
                }
            };
            let (app, key, path) = (&app, &key, &path);
            async move {
                let r = patch(app, key, path, &change).await;
                (change, r)
            }
        });
        for (change, r) in join_all(requests).await {
            assert_eq!(r.status, 200, "round {round}: PATCH {change}: {}", r.text);
        }

        // The endpoint is the only one of the organisation: the publish counts it alone.
        let ep = get_ok(&app, &key, &path).await;
        let check = publish(&app, &key, json!({"type": "race.check", "data": {"round": round}})).await;
        let deliveries = check["delivery_count"].as_i64().unwrap_or(-1);
        if ep["status"] != "disabled" || deliveries != 0 {
            reactivations.push(format!(
                "round {round} (disable sent as request {disable_at}): status {}, delivery_count {deliveries}",
                ep["status"]
            ));
        }
        let gone = delete(&app, &key, &path).await;
        assert_eq!(gone.status, 204, "{}", gone.text);
    }

    println!(
        "{}: rounds raced: {ROUNDS}, disables undone: {} ({:.1}s)",
        app.backend_name(),
        reactivations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(reactivations.is_empty(), "a racing PATCH undid the disable:\n{}", reactivations.join("\n"));
    receiver.assert_count_stays(0, QUIET).await;
});

// ---------------------------------------------------------------------------------------
// c) A source's rotate-secret racing its DELETE: it stays deleted
// ---------------------------------------------------------------------------------------

both_backends!(a_source_deleted_while_its_secret_rotates_stays_deleted, |app: TestApp| async move {
    const ROTATES: usize = 20;
    let key = app.default_key.clone();
    let mut resurrections: Vec<String> = Vec::new();
    let started = Instant::now();

    for round in 0..ROUNDS {
        let created = app
            .post(
                "/v1/sources",
                &key,
                json!({"name": format!("race {round}"), "kind": "hmac-sha256", "secret": "first-secret-0"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = text(&created.body["id"]);
        let path = format!("/v1/sources/{id}");
        let rotate_path = format!("{path}/rotate-secret");
        let delete_at = round % (ROTATES + 1);
        let requests = (0..=ROTATES).map(|i| {
            let (app, key, path, rotate_path) = (&app, &key, &path, &rotate_path);
            async move {
                if i == delete_at {
                    ("DELETE", delete(app, key, path).await)
                } else {
                    let secret = json!({"secret": format!("rotated-secret-{round}-{i}")});
                    ("rotate", app.post(rotate_path, key, secret).await)
                }
            }
        });
        for (what, r) in join_all(requests).await {
            let ok = match what {
                "DELETE" => r.status == 204,
                _ => r.status == 200 || r.status == 404,
            };
            assert!(ok, "round {round}: {what} of {id} answered {}: {}", r.status, r.text);
        }

        let got = app.get(&path, &key).await;
        let listed = data_ids(&get_ok(&app, &key, "/v1/sources?limit=250").await).contains(&id);
        // Unsigned: a source that came back would answer 401, not 404.
        let inbound = app
            .request(
                "POST",
                &format!("/v1/inbound/{id}"),
                None,
                Some(&json!({"type": "race.inbound", "data": {}})),
            )
            .await;
        if got.status != 404 || listed || inbound.status != 404 {
            resurrections.push(format!(
                "round {round} (DELETE sent as request {delete_at}): GET {}, listed {listed}, inbound {}: {}",
                got.status, inbound.status, inbound.text
            ));
        }
    }

    println!(
        "{}: rounds raced: {ROUNDS}, resurrected sources: {} ({:.1}s)",
        app.backend_name(),
        resurrections.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(resurrections.is_empty(), "deleted sources came back:\n{}", resurrections.join("\n"));
});

// ---------------------------------------------------------------------------------------
// d) The result writer racing PATCHes: the circuit count is never written back stale
// ---------------------------------------------------------------------------------------

both_backends_with!(
    patches_racing_failing_deliveries_never_write_back_an_old_failure_count,
    |s: &mut herald::Settings| {
        // With the test threshold (5) the circuit would open after the fifth failure, and
        // from then on each further attempt is a lone probe after a doubling wait (200 ms,
        // 400 ms, ... up to 10 min): 160 attempts would take hours. The circuit never opens
        // here, so every attempt is made and every one of them counts as a failure.
        s.delivery.circuit_failure_threshold = 100_000;
        // 1 + 15 attempts per delivery, 50 ms apart: about a second of results to race.
        s.delivery.retry_schedule = vec![Duration::from_millis(50); 15];
    },
    |app: TestApp| async move {
        const EVENTS: usize = 10;
        const ATTEMPTS_EACH: usize = 16;
        const PATCHES: usize = 200;
        const PATCHERS: usize = 4;
        let key = app.default_key.clone();
        let receiver = Receiver::start().await;
        receiver.set_default(Behaviour::status(500));
        let ep_id =
            create_endpoint(&app, &key, json!({"url": receiver.url("/fail"), "events": ["doomed.*"]})).await;
        let ep_path = format!("/v1/endpoints/{ep_id}");
        let dead_path = format!("/v1/endpoints/{ep_id}/deliveries?status=dead&limit=250");

        // The publisher-and-watcher and the patchers run together. Patchers keep going until
        // every delivery is dead (and each has sent its share of the 200), so PATCHes race
        // the very last results too: a PATCH that read the row before a result and wrote it
        // back after would leave an older count behind for good.
        let all_dead = Cell::new(false);
        let started = Instant::now();
        let watcher = async {
            for i in 0..EVENTS {
                publish_type(&app, &key, "doomed.event", json!({"n": i})).await;
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let dead = get_ok(&app, &key, &dead_path).await;
                if data_ids(&dead).len() == EVENTS {
                    all_dead.set(true);
                    return;
                }
                assert!(Instant::now() < deadline, "not every delivery died within 60 s: {dead:#}");
                sleep(ms(25)).await;
            }
        };
        let patchers = join_all((0..PATCHERS).map(|w| {
            let (app, key, ep_path, all_dead) = (&app, &key, &ep_path, &all_dead);
            async move {
                let mut sent = 0;
                while !all_dead.get() || sent < PATCHES / PATCHERS {
                    let body = json!({"description": format!("patcher {w}, change {sent}")});
                    let r = patch(app, key, ep_path, &body).await;
                    assert_eq!(r.status, 200, "PATCH {body}: {}", r.text);
                    sent += 1;
                    // A breath between changes, so the result writer is not starved of turns.
                    sleep(ms(2)).await;
                }
                sent
            }
        }));
        let ((), sent) = join(watcher, patchers).await;
        let patches: usize = sent.iter().sum();
        let dead_after = started.elapsed();

        // Wait until the circuit stops moving: three equal reads in a row, 100 ms apart.
        let deadline = Instant::now() + WAIT;
        let (mut last, mut same) = (Value::Null, 0);
        let ep = loop {
            let ep = get_ok(&app, &key, &ep_path).await;
            if ep["circuit"] == last {
                same += 1;
            } else {
                (last, same) = (ep["circuit"].clone(), 0);
            }
            if same >= 2 {
                break ep;
            }
            assert!(Instant::now() < deadline, "the circuit kept changing: {ep:#}");
            sleep(ms(100)).await;
        };

        let dead = get_ok(&app, &key, &dead_path).await;
        let attempts: u64 = dead["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["attempt_count"].as_u64().expect("attempt_count"))
            .sum();
        let failures = ep["circuit"]["consecutive_failures"].as_u64().expect("consecutive_failures");
        println!(
            "{}: {EVENTS} deliveries dead after {attempts} attempts in {:.2}s; {patches} PATCHes raced them; \
             consecutive_failures {failures}",
            app.backend_name(),
            dead_after.as_secs_f64()
        );
        assert_eq!(
            attempts as usize,
            EVENTS * ATTEMPTS_EACH,
            "every delivery used its whole schedule: {dead:#}"
        );
        assert_eq!(receiver.count(), attempts as usize, "every attempt reached the receiver, and only those");
        assert!(patches >= PATCHES, "{patches} PATCHes");
        assert_eq!(ep["circuit"]["state"], "closed", "{ep:#}");
        // Every attempt failed and none succeeded: the count of consecutive failures is the
        // number of attempts. A stale write would show an older, smaller count.
        assert_eq!(failures, attempts, "{ep:#}");
    }
);

// ---------------------------------------------------------------------------------------
// e) An Idempotency-Key whose client hung up: the work it asked for finishes once, and a
//    repeat gets its answer (no 409, no second event)
// ---------------------------------------------------------------------------------------

/// How long the receiver holds each attempt, so the first request (`?wait=true`) is still
/// waiting when its client hangs up.
const HOLD: Duration = Duration::from_secs(2);

both_backends_with!(
    a_repeat_after_a_hang_up_gets_the_first_answer_and_nothing_runs_twice,
    |s: &mut herald::Settings| {
        // Longer than HOLD: the attempt ends because the receiver answers, not by timeout.
        s.delivery.timeout = Duration::from_secs(10);
    },
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let receiver = Receiver::start().await;
        receiver.set_default(Behaviour::ok().delay(HOLD));
        create_endpoint(&app, &key, json!({"url": receiver.url("/slow"), "events": ["order.*"]})).await;
        // No body id: only the key stands between a repeat and a second event.
        let body = json!({"type": "order.created", "data": {"n": 1}});

        // A client that gives up after 300 ms, in the middle of the wait for the attempt.
        let impatient = awc::Client::builder().timeout(ms(300)).finish();
        let first = impatient
            .post(app.url("/v1/events?wait=true"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Idempotency-Key", "hangup-1"))
            .send_json(&body)
            .await;
        let hung_up = Instant::now();
        if let Ok(res) = first {
            panic!(
                "the first request should have timed out waiting for the attempt; it got {}",
                res.status()
            );
        }
        drop(impatient);

        // The same request again at once, as a client's retry would send it: it waits for
        // the first one's answer instead of being refused, or of running a second time.
        let repeat = post_with_key(&app, &key, "/v1/events?wait=true", "hangup-1", &body).await;
        println!(
            "{}: repeat after a hang-up answered {} after {} ms (replayed: {:?})",
            app.backend_name(),
            repeat.status,
            hung_up.elapsed().as_millis(),
            repeat.header("idempotent-replayed")
        );
        assert_eq!(repeat.status, 200, "{}", repeat.text);
        assert_eq!(repeat.header("idempotent-replayed"), Some("true"), "{}", repeat.text);
        assert_eq!(repeat.body["deliveries"][0]["status"], "succeeded", "{}", repeat.text);
        // One event, one delivery, one request at the receiver.
        let list = get_ok(&app, &key, "/v1/events?type=order.created").await;
        let ids = data_ids(&list);
        assert_eq!(ids.len(), 1, "{list:#}");
        assert_eq!(repeat.body["id"], ids[0].as_str(), "{}", repeat.text);
        only_delivery(&app, &key, &ids[0]).await;
        receiver.assert_count_stays(1, ms(300)).await;
    }
);

// ---------------------------------------------------------------------------------------
// f) Retry honesty: never a second attempt beside one in progress; deleted stays settled
// ---------------------------------------------------------------------------------------

both_backends!(a_retry_of_work_in_progress_or_of_a_deleted_endpoint_is_refused, |app: TestApp| async move {
    let key = app.default_key.clone();
    let slow = Receiver::start().await;
    slow.set_default(Behaviour::ok().delay(ms(1500)));
    // One at a time: the first event's delivery is on the wire, the second's queued.
    let slow_ep = create_endpoint(
        &app,
        &key,
        json!({"url": slow.url("/slow"), "events": ["honest.*"], "max_in_flight": 1}),
    )
    .await;
    let first = publish_type(&app, &key, "honest.first", json!({})).await;
    let second = publish_type(&app, &key, "honest.second", json!({})).await;
    wait_until("one request in flight", WAIT, || slow.in_flight() == 1).await;
    let on_wire_event = slow.received()[0].webhook_id().expect("a webhook id").to_string();
    let queued_event = if on_wire_event == first { second.clone() } else { first.clone() };
    let on_wire = only_delivery(&app, &key, &on_wire_event).await;
    let queued = only_delivery(&app, &key, &queued_event).await;

    for (what, id) in [("in flight", &on_wire), ("queued", &queued)] {
        let r = app.post(&format!("/v1/deliveries/{id}/retry"), &key, json!({})).await;
        assert_error(&r, 409, "CONFLICT");
        println!("{}: retry of a delivery {what}: 409 {}", app.backend_name(), r.body["message"]);
    }
    let done = wait_delivery(&app, &key, &on_wire, "succeeded", WAIT).await;
    assert_eq!(done["attempt_count"], 1, "{done:#}");
    let done = wait_delivery(&app, &key, &queued, "succeeded", WAIT).await;
    assert_eq!(done["attempt_count"], 1, "{done:#}");
    slow.assert_count_stays(2, ms(500)).await;
    let ids: Vec<String> =
        slow.received().iter().map(|r| r.webhook_id().unwrap_or("-").to_string()).collect();
    assert_eq!(ids.iter().filter(|id| **id == first).count(), 1, "{ids:?}");
    assert_eq!(ids.iter().filter(|id| **id == second).count(), 1, "{ids:?}");

    // A dead delivery, then both endpoints deleted.
    let failing = Receiver::start().await;
    failing.set_default(Behaviour::status(500));
    let failing_ep =
        create_endpoint(&app, &key, json!({"url": failing.url("/fail"), "events": ["doomed.*"]})).await;
    let doomed = publish_type(&app, &key, "doomed.one", json!({})).await;
    let dead_id = only_delivery(&app, &key, &doomed).await;
    let dead = wait_delivery(&app, &key, &dead_id, "dead", WAIT).await;
    for ep in [&slow_ep, &failing_ep] {
        let r = delete(&app, &key, &format!("/v1/endpoints/{ep}")).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }

    // Retries of their deliveries are refused and change nothing.
    for (id, status, attempts) in
        [(&on_wire, "succeeded", 1), (&dead_id, "dead", dead["attempt_count"].as_i64().unwrap())]
    {
        let r = app.post(&format!("/v1/deliveries/{id}/retry"), &key, json!({})).await;
        assert_error(&r, 409, "CONFLICT");
        let d = get_ok(&app, &key, &format!("/v1/deliveries/{id}")).await;
        assert_eq!(d["status"], status, "{d:#}");
        assert_eq!(d["attempt_count"], attempts, "{d:#}");
    }
    // Replaying a deleted endpoint: it is not there.
    let since = herald::timefmt::rfc3339(herald::ids::now_ms() - 3_600_000);
    for ep in [&slow_ep, &failing_ep] {
        let r = app
            .post(&format!("/v1/endpoints/{ep}/replay"), &key, json!({"since": since, "status": "all"}))
            .await;
        assert_error(&r, 404, "NOT_FOUND");
    }
    // Dead letters of a deleted endpoint are not replayed.
    let r = app.post("/v1/dead-letters/replay", &key, json!({"ids": [dead_id]})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["replayed"], 0, "{}", r.text);
    let r = app.post("/v1/dead-letters/replay", &key, json!({"endpoint_id": failing_ep})).await;
    match r.status.as_u16() {
        202 => assert_eq!(r.body["replayed"], 0, "{}", r.text),
        _ => assert_error(&r, 404, "NOT_FOUND"),
    }
    let d = get_ok(&app, &key, &format!("/v1/deliveries/{dead_id}")).await;
    assert_eq!(d["status"], "dead", "{d:#}");
    assert_eq!(d["attempt_count"], dead["attempt_count"], "{d:#}");

    let attempts = dead["attempt_count"].as_u64().unwrap() as usize;
    failing.assert_count_stays(attempts, QUIET).await;
    slow.assert_count_stays(2, ms(1)).await;
    println!(
        "{}: retries of deleted endpoints' deliveries: 409; replay of a deleted endpoint: 404; \
         dead-letter replay: 0; receivers got {} + {attempts} requests",
        app.backend_name(),
        slow.count()
    );
});

// ---------------------------------------------------------------------------------------
// g) Idle endpoint actors stop, and come back when there is work
// ---------------------------------------------------------------------------------------

both_backends_with!(
    idle_endpoint_actors_stop_and_come_back,
    |s: &mut herald::Settings| {
        s.delivery.idle_actor_ttl = Duration::from_millis(300);
    },
    |app: TestApp| async move {
        let key = app.default_key.clone();
        let receiver = Receiver::start().await;
        create_endpoint(&app, &key, json!({"url": receiver.url("/hook"), "events": ["*"]})).await;

        let first = publish_type(&app, &key, "order.created", json!({"n": 1})).await;
        let id = only_delivery(&app, &key, &first).await;
        wait_delivery(&app, &key, &id, "succeeded", WAIT).await;
        let stopped_after = wait_for_actors(&app, 0, Duration::from_secs(5)).await;

        // The next event starts an actor again. The receiver holds it a moment, so the
        // gauge is read while the actor is surely busy.
        receiver.push_once(Behaviour::ok().delay(ms(500)));
        let second = publish_type(&app, &key, "order.created", json!({"n": 2})).await;
        wait_until("the second event in flight", WAIT, || receiver.in_flight() == 1).await;
        let busy = endpoint_actors(&app).await;
        assert_eq!(busy, Some(1), "one endpoint actor while its delivery is in flight");
        let id = only_delivery(&app, &key, &second).await;
        wait_delivery(&app, &key, &id, "succeeded", WAIT).await;
        let stopped_again = wait_for_actors(&app, 0, Duration::from_secs(5)).await;
        assert_eq!(receiver.count(), 2);
        println!(
            "{}: idle actor gone {} ms after its delivery (ttl 300 ms); back for the next event, \
             gone again after {} ms",
            app.backend_name(),
            stopped_after.as_millis(),
            stopped_again.as_millis()
        );
    }
);
