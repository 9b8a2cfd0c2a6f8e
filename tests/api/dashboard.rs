//! The dashboard in a real headless Chromium: `tests/browser/dashboard.mjs` (Playwright)
//! drives the page against this real server, with real receivers behind its endpoints.
//! Needs Debian's `chromium` and `npm ci --prefix tests/browser`; `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, assert_error};
use crate::receiver::{Behaviour, Receiver};
use crate::{both_backends, both_backends_with};

const WAIT: Duration = Duration::from_secs(10);

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string())
}

/// Whether the browser and the test's node packages are installed; in CI they must be.
fn browser_ready() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing: Vec<String> = [
        (Path::new(&chromium()).exists(), format!("{} (apt-get install chromium)", chromium())),
        (
            root.join("tests/browser/node_modules/playwright-core").exists(),
            "tests/browser/node_modules (npm ci --prefix tests/browser)".to_string(),
        ),
    ]
    .into_iter()
    .filter(|(present, _)| !present)
    .map(|(_, what)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "browser tests cannot run in CI without {}", missing.join(", "));
    eprintln!("SKIPPED (browser): missing {}", missing.join(", "));
    false
}

/// Runs the browser script on a thread of its own (the server's actors share this one).
async fn run_browser_script(envs: Vec<(&'static str, String)>) -> (bool, String) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out =
            Command::new("node").arg("tests/browser/dashboard.mjs").current_dir(root).envs(envs).output();
        let _ = tx.send(match out {
            Ok(o) => (
                o.status.success(),
                format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
            ),
            Err(e) => (false, format!("could not run node: {e}")),
        });
    });
    rx.await.expect("the browser thread answers")
}

/// An endpoint for exactly one event type, so each scene's receiver sees only its own events.
async fn endpoint(app: &TestApp, receiver: &Receiver, event_type: &str) -> String {
    let r = app
        .post(
            "/v1/endpoints",
            &app.default_key,
            json!({"url": receiver.url("/hook"), "events": [event_type]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

/// Waits until the endpoint's circuit reads `open`.
async fn wait_for_open_circuit(app: &TestApp, id: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = app.get(&format!("/v1/endpoints/{id}"), &app.default_key).await;
        if r.body["circuit"]["state"] == "open" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the circuit never opened: {}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the endpoint's one dead letter and returns its delivery id.
async fn wait_for_dead_letter(app: &TestApp, endpoint_id: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = app.get(&format!("/v1/dead-letters?endpoint_id={endpoint_id}"), &app.default_key).await;
        if let Some(first) = r.body["data"].as_array().and_then(|d| d.first()) {
            return first["id"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter appeared: {}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends_with!(
    the_dashboard_works_in_a_real_browser,
    // The circuit stays open for the whole script, so the page can be caught showing it.
    |s: &mut herald::Settings| s.delivery.circuit_open_for = Duration::from_secs(120),
    |app: TestApp| async move {
        if !browser_ready() {
            return;
        }
        let key = app.default_key.clone();

        // Scene 1: an endpoint whose receiver always fails, until its circuit opens.
        let broken = Receiver::start().await;
        broken.set_default(Behaviour::status(500).body("receiver is down"));
        let circuit_endpoint = endpoint(&app, &broken, "scene.circuit").await;
        // It carries a payload filter every scene event meets: the page shows it.
        let filter = json!({"filter": {"data.i": {"$gte": 0}}, "versions": {"scene.circuit": 1}});
        let path = format!("/v1/endpoints/{circuit_endpoint}");
        let r = app.request("PATCH", &path, Some(&key), Some(&filter)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for i in 0..6 {
            let r = app.post("/v1/events", &key, json!({"type": "scene.circuit", "data": {"i": i}})).await;
            assert_eq!(r.status, 202, "{}", r.text);
        }
        wait_for_open_circuit(&app, &circuit_endpoint).await;

        // Scene 2: a delivery that exhausts its retries, then the receiver recovers.
        let flaky = Receiver::start().await;
        flaky.set_default(Behaviour::status(503));
        let dead_endpoint = endpoint(&app, &flaky, "scene.dead").await;
        let event = app.post("/v1/events", &key, json!({"type": "scene.dead", "data": {"order": 7}})).await;
        assert_eq!(event.status, 202, "{}", event.text);
        let dead_delivery = wait_for_dead_letter(&app, &dead_endpoint).await;
        let attempts_before = flaky.count();
        flaky.set_default(Behaviour::ok());

        // Scene 3: a FIFO endpoint (no traffic): the page marks its ordering.
        let quiet = Receiver::start().await;
        let r = app
            .post(
                "/v1/endpoints",
                &key,
                json!({"url": quiet.url("/hook"), "events": ["scene.fifo"], "ordering": "fifo"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let fifo_endpoint = r.body["id"].as_str().unwrap().to_string();

        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/dashboard-screenshots")
            .join(app.backend_name());
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        let (ok, output) = run_browser_script(vec![
            ("HERALD_URL", app.address.clone()),
            ("HERALD_KEY", key.clone()),
            ("CIRCUIT_ENDPOINT_ID", circuit_endpoint),
            ("DEAD_ENDPOINT_ID", dead_endpoint),
            ("FIFO_ENDPOINT_ID", fifo_endpoint),
            ("DEAD_DELIVERY_ID", dead_delivery),
            ("SHOT_DIR", shots.to_string_lossy().to_string()),
            ("CHROMIUM", chromium()),
        ])
        .await;
        println!("{output}");
        assert!(ok, "the browser script failed:\n{output}");

        // The dead letter replayed from the page reached the real receiver, once more.
        let got = flaky.wait_for(attempts_before + 1, WAIT).await;
        let last = got.last().unwrap();
        assert_eq!(last.json()["data"]["order"], 7, "{}", last.text());
        assert_eq!(last.json()["id"], event.body["id"]);
    }
);

/// The relative modules a script imports (`from './name.js'`).
fn imports(script: &str) -> Vec<String> {
    script
        .split("from './")
        .skip(1)
        .filter_map(|rest| rest.split_once('\'').map(|(name, _)| name.to_string()))
        .collect()
}

both_backends!(the_page_and_every_module_it_imports_are_served_alike, |app: TestApp| async move {
    let page = app.request("GET", "/", None, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains(r#"<script type="module" src="/dashboard/app.js"></script>"#),
        "{}",
        page.text
    );
    let csp = page.header("content-security-policy").expect("the page has a CSP").to_string();

    // From the entry, every module it reaches, each once.
    let mut seen: Vec<String> = Vec::new();
    let mut queue = vec!["app.js".to_string()];
    while let Some(name) = queue.pop() {
        if seen.contains(&name) {
            continue;
        }
        let r = app.request("GET", &format!("/dashboard/{name}"), None, None).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"), "{name}");
        assert_eq!(r.header("content-security-policy"), Some(csp.as_str()), "{name}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{name}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{name}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{name}");
        queue.extend(imports(&r.text));
        seen.push(name);
    }
    assert!(seen.len() > 5, "the entry imports the views: {seen:?}");
    // Every module file in the source is reachable from the entry (none left over).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dashboard");
    for file in std::fs::read_dir(&dir).expect("src/dashboard") {
        let file = file.unwrap().file_name().to_string_lossy().to_string();
        if Path::new(&file).extension().is_some_and(|e| e.eq_ignore_ascii_case("js")) {
            assert!(seen.contains(&file), "{file} is not imported by the entry (reached: {seen:?})");
        }
    }

    for missing in ["/dashboard/nope.js", "/dashboard/app.json", "/dashboard/.js"] {
        let r = app.request("GET", missing, None, None).await;
        assert_error(&r, 404, "NOT_FOUND");
    }
});
