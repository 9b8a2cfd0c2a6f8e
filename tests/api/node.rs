//! A real `herald` process (the binary cargo built) on a database of the test's: for
//! cluster tests, and for measuring a node's memory from outside.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::FreshDatabase;

pub struct Node {
    child: Child,
    pub address: String,
    /// The key a first start printed.
    pub key: Option<String>,
}

impl Node {
    /// Starts `herald` on port 0 and reads its address (and first key) from stdout.
    pub fn start(db: &FreshDatabase, log_name: &str) -> Node {
        Self::start_on(&db.url, log_name)
    }

    pub fn start_on(database_url: &str, log_name: &str) -> Node {
        Self::start_with(database_url, log_name, &[])
    }

    /// As `start_on`, with more environment variables (they win over the ones set here).
    pub fn start_with(database_url: &str, log_name: &str, extra_env: &[(&str, &str)]) -> Node {
        let log = std::fs::File::create(std::env::temp_dir().join(format!("{log_name}.log"))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .env("HERALD_ENV", "test")
            .env("HERALD_SERVER__PORT", "0")
            .env("HERALD_DATABASE__URL", database_url)
            .env("HERALD_DELIVERY__LEASE", "2s")
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start herald");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut key, mut address) = (None, None);
        for line in lines.by_ref() {
            let line = line.expect("herald's stdout");
            let line = line.trim();
            if line.starts_with("hk_") {
                key = Some(line.to_string());
            }
            if let Some(rest) = line.strip_prefix("herald listening on ") {
                address = Some(rest.split_whitespace().next().unwrap().to_string());
                break;
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node { child, address: address.expect("herald printed its address"), key }
    }

    /// Kills the process (SIGKILL) and reaps it: nothing is released on the way out.
    /// The process's resident and peak resident memory, in MB (from /proc). Used by the
    /// memory tests' own binary (tests/memory.rs), not by this one.
    #[allow(dead_code)]
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or_else(|| panic!("{name} in /proc/<pid>/status"), |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (without blocking the test's runtime) for the exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < deadline, "a node did not exit within 15 s of SIGTERM");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
