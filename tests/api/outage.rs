//! A PostgreSQL outage mid-run, on a dedicated PostgreSQL instance this test starts on its
//! own port and data directory (never the machine's shared one): publishes answer 503 while
//! it is down, herald reconnects by itself, and nothing accepted is lost.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::receiver::{Behaviour, Receiver};
use crate::sse_client::auth;

/// A throwaway PostgreSQL server (initdb + pg_ctl, run as the `postgres` user when root).
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(std::result::Result::ok)
            .map(|e| e.path().join("bin"))
            .max()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("herald-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let pg = Self { bin, dir, port };
        pg.as_postgres(&["chown", "-R", "postgres", pg.dir.to_str()?], true);
        let data = pg.dir.join("data");
        let ok = pg.as_postgres(
            &[
                pg.bin.join("initdb").to_str()?,
                "-D",
                data.to_str()?,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            false,
        );
        if !ok {
            eprintln!("SKIPPED (private PostgreSQL): initdb failed");
            return None;
        }
        pg.ctl("start").then_some(pg)
    }

    /// Runs a command as `postgres` when we are root (initdb refuses root), else as we are.
    // A method, so that calls read as `cluster.as_postgres(..)` beside the others.
    #[allow(clippy::unused_self)]
    fn as_postgres(&self, args: &[&str], root_only: bool) -> bool {
        let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        let status = if is_root {
            if root_only {
                Command::new(args[0]).args(&args[1..]).status()
            } else {
                Command::new("runuser").args(["-u", "postgres", "--"]).args(args).status()
            }
        } else if root_only {
            return true;
        } else {
            Command::new(args[0]).args(&args[1..]).status()
        };
        status.is_ok_and(|s| s.success())
    }

    fn ctl(&self, action: &str) -> bool {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let ctl = self.bin.join("pg_ctl");
        let mut args =
            vec![ctl.to_str().unwrap(), "-D", data.to_str().unwrap(), "-w", "-l", log.to_str().unwrap()];
        if action == "start" {
            args.extend(["-o", &opts, "start"]);
        } else {
            args.extend(["-m", "fast", "stop"]);
        }
        self.as_postgres(&args, false)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[actix_web::test]
async fn a_postgres_outage_delays_but_loses_nothing() {
    if crate::helpers::pg_admin_url().is_none() {
        return;
    }
    let Some(pg) = PrivatePostgres::start() else {
        assert!(std::env::var("CI").is_err(), "CI must be able to start a private PostgreSQL");
        return;
    };
    // A real herald process, as a deployment would run it.
    let node = crate::node::Node::start_on(&pg.url(), "herald-outage");
    let key = node.key.clone().expect("a fresh database prints a key");
    let address = node.address.clone();

    let receiver = Receiver::start().await;
    receiver.set_default(Behaviour::ok());
    let client = awc::Client::builder().timeout(Duration::from_secs(15)).finish();
    let ep = client
        .post(format!("{address}/v1/endpoints"))
        .insert_header(auth(&key))
        .send_json(&json!({"url": receiver.url("/hook"), "events": ["*"]}))
        .await
        .unwrap();
    assert_eq!(ep.status(), 201);

    let (mut accepted, mut unavailable) = (BTreeSet::new(), 0);
    let started = Instant::now();
    let (mut stopped, mut restarted) = (false, false);
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(9) {
        let elapsed = started.elapsed();
        if !stopped && elapsed > Duration::from_secs(2) {
            assert!(pg.ctl("stop"), "stop the private PostgreSQL");
            stopped = true;
        }
        if stopped && !restarted && elapsed > Duration::from_secs(5) {
            assert!(pg.ctl("start"), "start it again");
            restarted = true;
        }
        let sent = Instant::now();
        let mut res = client
            .post(format!("{address}/v1/events"))
            .insert_header(auth(&key))
            .send_json(&json!({"type": "outage.test", "data": {"n": n}}))
            .await
            .expect("herald answers even while its database is down (no hang)");
        assert!(sent.elapsed() < Duration::from_secs(10), "answered within 10 s");
        match res.status().as_u16() {
            202 => {
                let body: serde_json::Value = res.json().await.unwrap();
                accepted.insert(body["id"].as_str().unwrap().to_string());
            }
            503 => {
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["code"], "UNAVAILABLE");
                unavailable += 1;
            }
            other => panic!("a publish during the outage answered {other}, not 202 or 503"),
        }
        n += 1;
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unavailable > 0, "publishes during the outage got 503");
    assert!(restarted);
    receiver.wait_for_ids(&accepted, None, Duration::from_secs(30)).await;
    println!(
        "outage: {} accepted and all delivered, {unavailable} answered 503 while PostgreSQL was down",
        accepted.len()
    );
    drop(node);
}
