use std::sync::Once;
use std::time::Duration;

use awc::http::StatusCode;
use awc::http::header::HeaderMap;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use herald::{Application, Settings};
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per backend: `both_backends!(name, |app| async move { ... });`
/// The PostgreSQL variant is skipped, loudly, without `TEST_DATABASE_URL` (and fails in CI).
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.unwrap();
                ($body)(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                    return;
                };
                ($body)(app).await;
            }
        }
    };
}

pub struct TestApp {
    pub address: String,
    /// The key the first start printed for organisation `default`.
    pub default_key: String,
    pub client: awc::Client,
    handle: actix_web::dev::ServerHandle,
    /// Where its database is (a file path for SQLite).
    database_url: String,
    _tempdir: Option<tempfile::TempDir>,
    pg_database: Option<(String, String)>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = env_logger::builder().is_test(true).try_init();
        }
    });
}

/// Settings every test starts from: `config/test.toml` over the defaults.
pub fn test_settings() -> Settings {
    let mut settings = Settings::for_env(Some("test")).expect("test settings");
    settings.server.workers = Some(1);
    settings.database.pool_size = 4;
    settings
}

/// Where PostgreSQL tests make their databases; None (and a loud skip) when unset.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "TEST_DATABASE_URL must be set in CI: the PostgreSQL tests may not be skipped"
            );
            eprintln!("SKIPPED (PostgreSQL): TEST_DATABASE_URL is not set");
            None
        }
    }
}

pub struct FreshDatabase {
    pub url: String,
    tempdir: Option<tempfile::TempDir>,
    /// (admin URL, database name) of a PostgreSQL database to drop afterwards.
    pg_database: Option<(String, String)>,
}

/// A fresh, empty database for one test: SQLite in a temp dir, or a new PostgreSQL database.
pub fn fresh_database(backend: Backend) -> Option<FreshDatabase> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = dir.path().join("herald.db").to_string_lossy().to_string();
            Some(FreshDatabase { url, tempdir: Some(dir), pg_database: None })
        }
        Backend::Postgres => {
            let admin = pg_admin_url()?;
            let name = format!("herald_t_{}", herald::ids::ulid_at(herald::ids::now_ms()).to_lowercase());
            let mut conn = diesel::PgConnection::establish(&admin).expect("connect to TEST_DATABASE_URL");
            conn.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
            let url = replace_database(&admin, &name);
            Some(FreshDatabase { url, tempdir: None, pg_database: Some((admin, name)) })
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let slash = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = match slash {
        Some(i) => &base[..i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    init_logging();
    let FreshDatabase { url, tempdir, pg_database } = fresh_database(backend)?;
    let mut settings = test_settings();
    settings.database.url = url.clone();
    adjust(&mut settings);
    let app = Application::build_with(settings, test_routes).await.expect("application starts");
    let port = app.port();
    let default_key = app.bootstrap_key.clone().expect("a fresh database prints a key");
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    Some(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        default_key,
        client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        handle,
        database_url: url,
        _tempdir: tempdir,
        pg_database,
    })
}

/// Routes only the tests have: a handler that panics.
fn test_routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route(
        "/test/panic",
        actix_web::web::get().to(|| async {
            assert!(!std::hint::black_box(true), "deliberate test panic");
            actix_web::HttpResponse::Ok().finish()
        }),
    );
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent when called; nothing here needs to wait for it.
        drop(self.handle.stop(false));
        if let Some((admin, name)) = self.pg_database.take()
            && let Ok(mut conn) = diesel::PgConnection::establish(&admin)
        {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

impl TestApp {
    /// Drops a PostgreSQL test database under the running server (an outage that lasts).
    pub fn drop_database(&self) {
        let (admin, name) = self.pg_database.as_ref().expect("a PostgreSQL test app");
        let mut conn = diesel::PgConnection::establish(admin).expect("connect to TEST_DATABASE_URL");
        conn.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).expect("drop the test database");
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn backend_name(&self) -> &'static str {
        if self.pg_database.is_some() { "postgres" } else { "sqlite" }
    }

    pub async fn request(&self, method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, self.url(path));
        if let Some(k) = key {
            req = req.insert_header(("Authorization", format!("Bearer {k}")));
        }
        let res = match body {
            Some(b) => req.insert_header(("Content-Type", "application/json")).send_body(b.to_string()).await,
            None => req.send().await,
        };
        read_reply(res.expect("request reaches herald")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.request("GET", path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.request("POST", path, Some(key), Some(&body)).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Reply {
        self.request("POST", path, Some(ADMIN_TOKEN), Some(&body)).await
    }

    /// A new organisation and a key for it.
    pub async fn new_org(&self, name: &str, rate_limit_per_minute: u32) -> (String, String) {
        let org = self
            .admin_post(
                "/v1/orgs",
                serde_json::json!({"name": name, "rate_limit_per_minute": rate_limit_per_minute}),
            )
            .await;
        assert_eq!(org.status, 201, "{}", org.text);
        let org_id = org.body["id"].as_str().unwrap().to_string();
        let key = self.admin_post(&format!("/v1/orgs/{org_id}/api-keys"), Value::Null).await;
        assert_eq!(key.status, 201, "{}", key.text);
        (org_id, key.body["key"].as_str().unwrap().to_string())
    }
}

pub async fn read_reply<S>(mut res: awc::ClientResponse<S>) -> Reply
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.body().limit(64 * 1024 * 1024).await.expect("body");
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

/// Asserts the error JSON of DESIGN section 4.
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.text);
    assert_eq!(reply.body["code"], code, "body: {}", reply.text);
    assert!(reply.body["message"].is_string(), "body: {}", reply.text);
    assert!(reply.header("x-request-id").is_some(), "every answer carries X-Request-Id");
}

/// As `both_backends!`, with settings adjusted before the start:
/// `both_backends_with!(name, |s: &mut herald::Settings| { ... }, |app: TestApp| async move { ... });`
#[macro_export]
macro_rules! both_backends_with {
    ($name:ident, $adjust:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let app =
                    $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $adjust).await.unwrap();
                ($body)(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                let Some(app) =
                    $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $adjust).await
                else {
                    return;
                };
                ($body)(app).await;
            }
        }
    };
}

/// Starts herald on a database an earlier start already set up (a restart): no key is
/// printed again, so the caller passes the first start's key. The app owns `database`
/// from here on and cleans it up when dropped.
pub async fn spawn_app_on(
    database: FreshDatabase,
    default_key: String,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    init_logging();
    let FreshDatabase { url, tempdir, pg_database } = database;
    let mut settings = test_settings();
    settings.database.url = url.clone();
    adjust(&mut settings);
    let app = Application::build_with(settings, test_routes).await.expect("application restarts");
    assert!(app.bootstrap_key.is_none(), "a restart on a set-up database prints no new key");
    let port = app.port();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        default_key,
        client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        handle,
        database_url: url,
        _tempdir: tempdir,
        pg_database,
    }
}

/// Ends a herald started by `spawn_crashable_app` as abruptly as a killed process.
pub struct Crash {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts herald on its own thread and its own actix System, on `settings.database.url`
/// (which the caller owns: the returned `TestApp` drops no database). `Crash::crash` stops
/// the HTTP server and the System and drops its runtime: every actor, timer and in-flight
/// webhook request of that herald is gone at once, with nothing written on the way out
/// (leases stay as they were), as after `kill -9`.
pub async fn spawn_crashable_app(settings: Settings) -> (TestApp, Crash) {
    init_logging();
    type Ready = (u16, Option<String>, actix_web::dev::ServerHandle);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let settings_url = settings.database.url.clone();
    let thread = std::thread::Builder::new()
        .name("crashable-herald".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let app = Application::build_with(settings, test_routes).await.expect("application starts");
                let handle = app.handle();
                let _ = ready_tx.send((app.port(), app.bootstrap_key.clone(), handle.clone()));
                actix_web::rt::spawn(app.run_until_stopped());
                actix_web::rt::spawn(async move {
                    // A send or a dropped `Crash` both end this herald.
                    let _ = stop_rx.await;
                    handle.stop(false).await;
                    actix_web::rt::System::current().stop();
                });
            });
            let _ = system.run();
            // Dropping the runner here drops the runtime and every task still on it.
        })
        .expect("spawn the crashable herald's thread");
    let database_url = settings_url;
    let (port, key, handle) = ready_rx.await.expect("the crashable herald started (see its panic above)");
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        default_key: key.expect("a fresh database prints a key"),
        client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        handle,
        database_url,
        _tempdir: None,
        pg_database: None,
    };
    (app, Crash { stop: Some(stop_tx), thread: Some(thread) })
}

impl Crash {
    /// Kills that herald and waits (at most 15 s) until its thread has ended.
    pub async fn crash(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take().expect("crashed once");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !thread.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the crashed herald's thread did not end within 15 s"
            );
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}
