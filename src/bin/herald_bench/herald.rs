//! One herald process for one scenario: a fresh database (SQLite in a temp dir, or a new
//! PostgreSQL database made through the admin URL), the release binary started on a free
//! port, an organisation and key to work with; SIGTERM, the database dropped and the temp
//! dir removed at the end, also when the scenario fails half-way.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::http::call_blocking;
use crate::util::status_kib;

const ADMIN_TOKEN: &str = "herald-bench-admin-token";
const READY_WITHIN: Duration = Duration::from_secs(60);
const STOP_WITHIN: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How to start herald, the same for every scenario.
pub struct Launch {
    pub binary: PathBuf,
    pub pg_admin_url: String,
    /// `KEY=VALUE` given with `--env`, over the bench's own settings.
    pub extra_env: Vec<(String, String)>,
    pub fd_limit: u64,
    /// `--tls`: herald trusts the receiver's CA.
    pub tls: bool,
}

/// What herald's log said (RUST_LOG=warn, so only warnings and errors).
#[derive(Debug, Default)]
pub struct LogSummary {
    pub warnings: u64,
    pub errors: u64,
    pub samples: Vec<String>,
    /// Where the log was kept, when it had anything in it.
    pub kept_at: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Stopped {
    pub exit: String,
    pub shutdown_ms: u128,
    pub log: LogSummary,
    /// PostgreSQL's counters for herald's database over its whole life (read after herald
    /// exited: backends flush their statistics when they end).
    pub pg_stats: Option<(PgStats, Vec<TableStats>)>,
}

#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
pub struct PgStats {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub xact_commit: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub xact_rollback: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tup_inserted: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tup_updated: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tup_fetched: i64,
}

/// One table's scans, to find a query that reads far more rows than it needs.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct TableStats {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub table: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub seq_scans: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub seq_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub index_rows: i64,
}

fn pg_stats(admin_url: &str, name: &str) -> Result<(PgStats, Vec<TableStats>), String> {
    use diesel::RunQueryDsl;
    let mut admin = diesel::PgConnection::establish(admin_url).map_err(|e| e.to_string())?;
    let db = diesel::sql_query(
        "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched \
         FROM pg_stat_database WHERE datname = $1",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .get_result(&mut admin)
    .map_err(|e| e.to_string())?;
    let mut conn =
        diesel::PgConnection::establish(&with_database(admin_url, name)).map_err(|e| e.to_string())?;
    let tables = diesel::sql_query(
        "SELECT relname::text AS table, seq_scan AS seq_scans, seq_tup_read AS seq_rows, \
         COALESCE(idx_tup_fetch, 0) AS index_rows FROM pg_stat_user_tables",
    )
    .load(&mut conn)
    .map_err(|e| e.to_string())?;
    Ok((db, tables))
}

pub struct Herald {
    child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    pub key: String,
    pub idle_rss_kib: u64,
    workdir: PathBuf,
    pg_database: Option<(String, String)>,
}

static STARTS: AtomicU32 = AtomicU32::new(0);

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (before_query, query) = url.split_once('?').map_or((url, None), |(a, q)| (a, Some(q)));
    let scheme_end = before_query.find("://").map_or(0, |i| i + 3);
    let host_end = before_query[scheme_end..].find('/').map_or(before_query.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &before_query[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn pg_execute(admin_url: &str, sql: &str) -> Result<(), String> {
    let mut conn = diesel::PgConnection::establish(admin_url)
        .map_err(|e| format!("cannot connect to PostgreSQL at {admin_url}: {e}"))?;
    conn.batch_execute(sql).map_err(|e| format!("PostgreSQL: {sql}: {e}"))
}

impl Herald {
    pub fn start(launch: &Launch, backend: Backend) -> Result<Self, String> {
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let workdir = std::env::temp_dir().join(format!("herald-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&workdir).map_err(|e| format!("{}: {e}", workdir.display()))?;
        let mut herald = Self {
            child: None,
            pid: 0,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            key: String::new(),
            idle_rss_kib: 0,
            workdir,
            pg_database: None,
        };
        let url = match backend {
            Backend::Sqlite => herald.workdir.join("herald.db").display().to_string(),
            Backend::Postgres => {
                let name = format!("herald_bench_{}", std::process::id());
                // One statement per call: DROP DATABASE may not share a transaction.
                pg_execute(&launch.pg_admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
                pg_execute(&launch.pg_admin_url, &format!("CREATE DATABASE {name}"))?;
                herald.pg_database = Some((launch.pg_admin_url.clone(), name.clone()));
                with_database(&launch.pg_admin_url, &name)
            }
        };
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        herald.addr.set_port(port);
        herald.spawn(launch, &url, port)?;
        herald.wait_ready()?;
        herald.idle_rss_kib = status_kib(herald.pid, "VmRSS").unwrap_or(0);
        herald.make_org()?;
        Ok(herald)
    }

    fn spawn(&mut self, launch: &Launch, url: &str, port: u16) -> Result<(), String> {
        let log = File::create(self.workdir.join("herald.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("sh");
        // herald holds one descriptor per open stream: give it the hard limit, as the bench has.
        cmd.arg("-c")
            .arg(format!("ulimit -n {} 2>/dev/null; exec \"$0\" serve", launch.fd_limit))
            .arg(&launch.binary)
            .current_dir(&self.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (name, _) in std::env::vars() {
            if name.starts_with("HERALD_") || name == "RUST_LOG" {
                cmd.env_remove(name);
            }
        }
        let port = port.to_string();
        let settings = [
            ("HERALD_SERVER__HOST", "127.0.0.1"),
            ("HERALD_SERVER__PORT", port.as_str()),
            ("HERALD_DATABASE__URL", url),
            ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN),
            ("HERALD_LIMITS__RATE_LIMIT_PER_MINUTE", "100000000"),
            // The sse scenario opens up to ~19,000 streams for one organisation.
            ("HERALD_LIMITS__MAX_STREAMS", "1000000"),
            // fanout with --endpoints above 100 (the default quota), e2e with --filtered N.
            ("HERALD_LIMITS__MAX_ENDPOINTS", "100000"),
            // herald_pending_deliveries, which the bench polls to see results recorded, is the
            // Janitor's count as of its last turn (a scrape never scans a table): a turn a
            // second keeps it current.
            ("HERALD_RETENTION__INTERVAL", "1s"),
            ("HERALD_SECURITY__ALLOW_INSECURE_URLS", "true"),
            ("HERALD_SECURITY__ALLOWED_NETWORKS", "127.0.0.0/8"),
            ("RUST_LOG", "warn"),
        ];
        for (name, value) in settings {
            cmd.env(name, value);
        }
        if launch.tls {
            cmd.env("HERALD_SECURITY__TRUSTED_CA_FILE", crate::tls::write_ca(&self.workdir)?);
        }
        for (name, value) in &launch.extra_env {
            cmd.env(name, value);
        }
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill herald if the bench dies,
        // so no herald outlives an interrupted run.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", launch.binary.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let until = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("herald exited at start ({status}): {}", self.log_tail()));
            }
            let answer = call_blocking(self.addr, "GET", "/readyz", &[], b"", Duration::from_secs(2));
            if matches!(answer, Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!("herald not ready within {READY_WITHIN:?}: {}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.workdir.join("herald.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    fn call(&self, bearer: &str, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        let auth = format!("Bearer {bearer}");
        let text = body.to_string();
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let (status, answer) =
            call_blocking(self.addr, method, path, &headers, text.as_bytes(), CALL_TIMEOUT)
                .map_err(|e| format!("{method} {path}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("{method} {path}: HTTP {status}: {}", String::from_utf8_lossy(&answer)));
        }
        if answer.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer).map_err(|e| format!("{method} {path}: answer is not JSON: {e}"))
    }

    /// A call with this run's API key.
    pub fn api(&self, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        self.call(&self.key, method, path, body)
    }

    fn make_org(&mut self) -> Result<(), String> {
        let org = self.call(
            ADMIN_TOKEN,
            "POST",
            "/v1/orgs",
            &json!({"name": "bench", "rate_limit_per_minute": 1_000_000_000}),
        )?;
        let org_id = org["id"].as_str().ok_or("POST /v1/orgs answered no id")?;
        let key = self.call(ADMIN_TOKEN, "POST", &format!("/v1/orgs/{org_id}/api-keys"), &json!({}))?;
        self.key = key["key"].as_str().ok_or("POST /v1/orgs/{id}/api-keys answered no key")?.to_string();
        Ok(())
    }

    /// An endpoint for every `bench.*` event, with a payload filter when given.
    pub fn create_endpoint(&self, url: &str, filter: Option<&Value>, fifo: bool) -> Result<String, String> {
        let mut body =
            json!({"url": url, "events": ["bench.*"], "ordering": if fifo { "fifo" } else { "none" }});
        if let Some(filter) = filter {
            body["filter"] = filter.clone();
        }
        let ep = self.api("POST", "/v1/endpoints", &body)?;
        ep["id"].as_str().map(str::to_string).ok_or_else(|| "POST /v1/endpoints answered no id".into())
    }

    pub fn create_stripe_source(&self, secret: &str) -> Result<String, String> {
        let body = json!({"name": "bench-stripe", "kind": "stripe", "secret": secret});
        let source = self.api("POST", "/v1/sources", &body)?;
        source["id"].as_str().map(str::to_string).ok_or_else(|| "POST /v1/sources answered no id".into())
    }

    pub fn publish(&self, event_type: &str, data: &Value) -> Result<(), String> {
        self.api("POST", "/v1/events", &json!({"type": event_type, "data": data})).map(|_| ())
    }

    /// One value of `GET /metrics` (summed over its labels).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (status, text) = call_blocking(self.addr, "GET", "/metrics", &[], b"", CALL_TIMEOUT).ok()?;
        if status != 200 {
            return None;
        }
        let text = String::from_utf8_lossy(&text);
        let values: Vec<f64> = text
            .lines()
            .filter(|line| {
                line.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid, "VmRSS").unwrap_or(0)
    }

    pub fn peak_rss_kib(&self) -> u64 {
        status_kib(self.pid, "VmHWM").unwrap_or(0)
    }

    /// SIGTERM, then up to STOP_WITHIN for it to exit (SIGKILL after that).
    fn terminate(&mut self) -> Option<(String, u128)> {
        let mut child = self.child.take()?;
        let started = Instant::now();
        // SAFETY: kill only sends a signal to the process we started and still own.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some((status.to_string(), started.elapsed().as_millis())),
                Ok(None) if started.elapsed() < STOP_WITHIN => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let waited = started.elapsed().as_millis();
                    return Some((format!("killed: no exit within {STOP_WITHIN:?} of SIGTERM"), waited));
                }
            }
        }
    }

    fn summarise_log(&self, label: &str) -> LogSummary {
        let path = self.workdir.join("herald.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut summary = LogSummary::default();
        for line in text.lines() {
            let is_error = line.contains(" ERROR ");
            if is_error {
                summary.errors += 1;
            } else if line.contains(" WARN ") {
                summary.warnings += 1;
            } else {
                continue;
            }
            // One sample per kind of message: drop the timestamp and the digits.
            let shape: String =
                line.split_once(']').map_or(line, |(_, m)| m).trim().chars().take(160).collect();
            let key: String = shape.chars().filter(|c| !c.is_ascii_digit()).take(60).collect();
            let seen =
                |s: &String| s.chars().filter(|c| !c.is_ascii_digit()).take(60).collect::<String>() == key;
            if summary.samples.len() < 6 && !summary.samples.iter().any(seen) {
                summary.samples.push(shape);
            }
        }
        let dir = std::env::temp_dir().join("herald-bench-logs");
        let kept = dir.join(format!("{label}.log"));
        if text.trim().is_empty() {
            // An earlier run's log of this scenario would mislead.
            let _ = std::fs::remove_file(&kept);
        } else if std::fs::create_dir_all(&dir).is_ok() && std::fs::copy(&path, &kept).is_ok() {
            summary.kept_at = Some(kept);
        }
        summary
    }

    pub fn stop(mut self, label: &str) -> Stopped {
        let (exit, shutdown_ms) = self.terminate().unwrap_or_else(|| ("already exited".into(), 0));
        let log = self.summarise_log(label);
        let pg_stats = self.pg_database.as_ref().and_then(|(admin, name)| {
            // The last backends flush their counters as they exit, just after herald.
            std::thread::sleep(Duration::from_millis(300));
            pg_stats(admin, name).inspect_err(|e| eprintln!("herald-bench: pg_stat_database: {e}")).ok()
        });
        Stopped { exit, shutdown_ms, log, pg_stats }
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        self.terminate();
        if let Some((admin, name)) = self.pg_database.take()
            && let Err(e) = pg_execute(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        {
            eprintln!("herald-bench: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1/postgres", "x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
