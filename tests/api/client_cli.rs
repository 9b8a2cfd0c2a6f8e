//! The client commands of the `herald` binary (`publish`, `tail`, `listen`) and the example
//! receiver (`examples/actix_receiver.rs`), run as real processes against a real herald.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_client::webhook::{SignatureScheme, generate_secret, signature_headers, verify_standard_webhooks};
use herald_client::{Client, NewEndpoint, NewEvent};
use serde_json::{Value, json};

use crate::both_backends;
use crate::client_library::{client_for, eventually, free_port};
use crate::helpers::{Backend, TestApp, fresh_database};
use crate::node::Node;
use crate::receiver::{Behaviour, Receiver};

const WAIT: Duration = Duration::from_secs(15);

fn herald_command(url: &str, key: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(args).env("HERALD_URL", url).env("HERALD_API_KEY", key).env_remove("HERALD_ENV");
    command
}

/// Runs a command to its end off the test's thread (herald's actors may live on it).
async fn run(url: &str, key: &str, args: &[&str]) -> Output {
    let mut command = herald_command(url, key, args);
    actix_web::rt::task::spawn_blocking(move || command.output().expect("run herald")).await.unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A long-running process whose stdout (or stderr) lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(mut command: Command, watch_stderr: bool) -> Running {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (watched, other): (Box<dyn std::io::Read + Send>, Box<dyn std::io::Read + Send>) = if watch_stderr
        {
            (Box::new(stderr), Box::new(stdout))
        } else {
            (Box::new(stdout), Box::new(stderr))
        };
        std::thread::spawn(move || {
            for line in BufReader::new(watched).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The other stream is echoed for failure messages and never left to fill its pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(other).lines().map_while(Result::ok) {
                eprintln!("[child] {line}");
            }
        });
        Running { child, lines }
    }

    /// The next line, waiting up to `WAIT` without blocking the test's runtime.
    async fn next_line(&self) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            match self.lines.try_recv() {
                Ok(line) => return line,
                Err(mpsc::TryRecvError::Disconnected) => panic!("the process closed its output"),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            assert!(std::time::Instant::now() < deadline, "no line within {WAIT:?}");
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn assert_quiet(&self, during: Duration) {
        actix_web::rt::time::sleep(during).await;
        if let Ok(line) = self.lines.try_recv() {
            panic!("unexpected output: {line}");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

both_backends!(publish_prints_the_answer_and_errors_go_to_stderr, |app: TestApp| async move {
    let (url, key) = (app.address.clone(), app.default_key.clone());
    let first =
        stdout_json(&run(&url, &key, &["publish", "order.created", r#"{"n":1}"#, "--id", "order-1"]).await);
    assert_eq!(first["type"], "order.created");
    let again =
        stdout_json(&run(&url, &key, &["publish", "order.created", r#"{"n":1}"#, "--id", "order-1"]).await);
    assert_eq!(again["id"], first["id"], "a repeated id is the same event");
    let keyed = ["publish", "order.created", r#"{"n":2}"#, "--idempotency-key", "k-1"];
    let a = stdout_json(&run(&url, &key, &keyed).await);
    let b = stdout_json(&run(&url, &key, &keyed).await);
    assert_eq!(a["id"], b["id"]);
    assert_ne!(a["id"], first["id"]);

    let receiver = Receiver::start().await;
    client_for(&app).create_endpoint(&NewEndpoint::new(receiver.url("/hook"), ["order.*"])).await.unwrap();
    let waited = stdout_json(&run(&url, &key, &["publish", "order.paid", "{}", "--wait"]).await);
    assert_eq!(waited["deliveries"][0]["status"], "succeeded", "{waited}");

    let bad = run(&url, &key, &["publish", "Not A Type", "[1]"]).await;
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("Invalid payload") && stderr.contains("VALIDATION_ERROR"), "{stderr}");
    assert!(stderr.contains("\n  type:") && stderr.contains("\n  data:"), "one line per issue: {stderr}");
    assert!(bad.stdout.is_empty());
    let unauthorised = run(&url, "hk_wrong", &["publish", "order.created", "{}"]).await;
    assert_eq!(unauthorised.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unauthorised.stderr).contains("401"));
    let not_json = run(&url, &key, &["publish", "order.created", "{nope"]).await;
    assert!(String::from_utf8_lossy(&not_json.stderr).contains("not valid JSON"));
});

both_backends!(tail_prints_each_event_as_a_json_line, |app: TestApp| async move {
    let herald = client_for(&app);
    let before = herald.publish(&NewEvent::new("order.created", json!({"n": 0}))).await.unwrap();
    let tail = Running::start(
        herald_command(&app.address, &app.default_key, &["tail", "--types", "order.*", "--since", "0"]),
        false,
    );
    let line: Value = serde_json::from_str(&tail.next_line().await).unwrap();
    assert_eq!(line["id"], before.id.as_str());
    assert_eq!(line["data"], json!({"n": 0}));
    herald.publish(&NewEvent::new("invoice.sent", json!({}))).await.unwrap();
    let mut expected = Vec::new();
    for n in 1..=3 {
        expected.push(herald.publish(&NewEvent::new("order.paid", json!({"n": n}))).await.unwrap().id);
    }
    for id in expected {
        let line: Value = serde_json::from_str(&tail.next_line().await).unwrap();
        assert_eq!((line["id"].as_str(), line["type"].as_str()), (Some(id.as_str()), Some("order.paid")));
    }
    tail.assert_quiet(Duration::from_millis(300)).await;
});

fn header<'a>(r: &'a crate::receiver::Received, name: &str) -> Option<&'a str> {
    r.header(name)
}

/// `listen` forwards each event once, in order, signed, retrying a failing app, and picks
/// up where it was when herald comes back from a crash.
async fn listen_across_a_restart(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    let port = free_port();
    let log = format!("client-listen-{backend:?}-{}", std::process::id());
    let env = [("HERALD_SERVER__PORT", port.as_str())];
    let mut node = Node::start_with(&db.url, &log, &env);
    let key = node.key.clone().unwrap();
    let herald = Client::new(&node.address, &key);
    let receiver = Receiver::start().await;
    receiver.push_once(Behaviour::status(503));
    let secret = generate_secret();
    let forward_to = receiver.url("/webhooks");
    let args =
        ["listen", "--forward-to", &forward_to, "--secret", &secret, "--types", "order.*", "--since", "0"];
    let listen = Running::start(herald_command(&node.address, &key, &args), false);
    assert!(listen.next_line().await.contains(&forward_to));

    let mut published = Vec::new();
    for n in 0..3 {
        published.push(herald.publish(&NewEvent::new("order.created", json!({"n": n}))).await.unwrap().id);
    }
    herald.publish(&NewEvent::new("invoice.sent", json!({}))).await.unwrap();
    for id in &published[..3] {
        let line = listen.next_line().await;
        assert!(line.contains(id.as_str()) && line.contains("-> 200"), "expected {id}: {line}");
    }
    node.kill();
    let mut node = Node::start_with(&db.url, &format!("{log}-2"), &env);
    for n in 3..6 {
        published.push(herald.publish(&NewEvent::new("order.created", json!({"n": n}))).await.unwrap().id);
    }
    for id in &published[3..] {
        let line = listen.next_line().await;
        assert!(line.contains(id.as_str()), "expected {id}: {line}");
    }
    listen.assert_quiet(Duration::from_millis(300)).await;

    let got = receiver.received();
    // The first try met a 503 and was repeated; after that each event exactly once, in order.
    let ids: Vec<&str> = got.iter().map(|r| header(r, "webhook-id").unwrap()).collect();
    let mut expected: Vec<&str> = published.iter().map(String::as_str).collect();
    expected.insert(0, published[0].as_str());
    assert_eq!(ids, expected);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for r in &got {
        let checked = verify_standard_webhooks(
            &[&secret],
            header(r, "webhook-id"),
            header(r, "webhook-timestamp"),
            header(r, "webhook-signature"),
            &r.body,
            now,
            300,
        );
        assert_eq!(checked, Ok(()), "{}", r.text());
        assert_eq!(r.json()["id"].as_str(), header(r, "webhook-id"));
    }
    node.kill();
}

#[actix_web::test]
async fn listen_forwards_in_order_across_a_restart_sqlite() {
    listen_across_a_restart(Backend::Sqlite).await;
}

#[actix_web::test]
async fn listen_forwards_in_order_across_a_restart_postgres() {
    listen_across_a_restart(Backend::Postgres).await;
}

fn example_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_herald"));
    let path = bin.parent().unwrap().join("examples").join("actix_receiver");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build --examples`)",
        path.display()
    );
    path
}

both_backends!(the_example_receiver_prints_new_events_and_refuses_forgeries, |app: TestApp| async move {
    let secret = generate_secret();
    let port = free_port();
    let mut command = Command::new(example_binary());
    command.env("PORT", &port).env("HERALD_WEBHOOK_SECRET", &secret);
    let example = Running::start(command, false);
    let hook = format!("http://127.0.0.1:{port}/webhooks");
    let http = awc::Client::default();
    eventually("the example listening", || async { http.get(&hook).send().await.ok().map(drop) }).await;

    let herald = client_for(&app);
    let mut endpoint = NewEndpoint::new(&hook, ["order.*"]);
    endpoint.secret = Some(secret.clone());
    herald.create_endpoint(&endpoint).await.unwrap();
    let event = herald.publish_and_wait(&NewEvent::new("order.created", json!({"n": 1}))).await.unwrap();
    assert_eq!(event.deliveries[0].status_code, Some(204));
    let printed: Value = serde_json::from_str(&example.next_line().await).unwrap();
    assert_eq!(printed, json!({"id": event.id, "type": "order.created"}));

    // A redelivery of the same event: 204, and nothing printed.
    let delivery = event.deliveries[0].id.clone();
    eventually("the first attempt recorded", || async {
        (herald.delivery(&delivery).await.unwrap().status == "succeeded").then_some(())
    })
    .await;
    herald.retry_delivery(&delivery).await.unwrap();
    let again = eventually("the redelivery answered", || async {
        let d = herald.delivery(&delivery).await.unwrap();
        (d.attempt_count == 2 && d.status == "succeeded").then_some(d)
    })
    .await;
    assert_eq!(again.attempts[1].status_code, Some(204));
    example.assert_quiet(Duration::from_millis(300)).await;

    // Forged and stale requests are refused.
    let body = br#"{"id":"evt_forged","type":"order.created","version":1,"created_at":"2026-12-01T00:00:00.000Z","data":{}}"#;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let post = |headers: Vec<(&'static str, String)>, body: &'static [u8]| {
        let mut request = http.post(&hook).content_type("application/json");
        for h in headers {
            request = request.insert_header(h);
        }
        request.send_body(body)
    };
    let wrong =
        signature_headers(SignatureScheme::StandardWebhooks, "evt_forged", now, body, &[&generate_secret()]);
    assert_eq!(post(wrong, body).await.unwrap().status(), 401);
    let stale =
        signature_headers(SignatureScheme::StandardWebhooks, "evt_forged", now - 301, body, &[&secret]);
    assert_eq!(post(stale, body).await.unwrap().status(), 401);
    let tampered = signature_headers(SignatureScheme::StandardWebhooks, "evt_forged", now, b"{}", &[&secret]);
    assert_eq!(post(tampered, body).await.unwrap().status(), 401);
    let good = signature_headers(SignatureScheme::StandardWebhooks, "evt_forged", now, body, &[&secret]);
    assert_eq!(post(good, body).await.unwrap().status(), 204);
    let printed: Value = serde_json::from_str(&example.next_line().await).unwrap();
    assert_eq!(printed["id"], "evt_forged");
    example.assert_quiet(Duration::from_millis(200)).await;
});
