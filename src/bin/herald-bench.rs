//! `herald-bench`: starts herald, a webhook receiver and a load generator on 127.0.0.1, runs
//! bounded scenarios and prints what herald achieved beside the targets. `--help` for usage.

#[path = "herald_bench/cli.rs"]
mod cli;
#[path = "herald_bench/herald.rs"]
mod herald;
#[path = "herald_bench/http.rs"]
mod http;
#[path = "herald_bench/load.rs"]
mod load;
#[path = "herald_bench/measure.rs"]
mod measure;
#[path = "herald_bench/receiver.rs"]
mod receiver;
#[path = "herald_bench/report.rs"]
mod report;
#[path = "herald_bench/scenarios.rs"]
mod scenarios;
#[path = "herald_bench/sse.rs"]
mod sse;
#[path = "herald_bench/tls.rs"]
mod tls;
#[path = "herald_bench/util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use serde_json::json;

use cli::{Options, Scenario};
use herald::Launch;
use load::ClientKind;
use receiver::Receiver;
use scenarios::Ctx;

fn main() -> ExitCode {
    // clap prints the help (exit 0) or the usage error (exit 2) itself.
    let opts = Options::parse();
    match run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("herald-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(opts: Options) -> Result<bool, String> {
    let started = Instant::now();
    let started_at = rfc3339(SystemTime::now());
    util::now_us();
    // awc (`--client awc`) wants a process-wide TLS provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fd_limit = util::raise_fd_limit();
    let binary = match &opts.herald {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| format!("where am I? {e}"))?.with_file_name("herald"),
    };
    if opts.scenario != Scenario::Limit && !binary.is_file() {
        return Err(format!(
            "no herald binary at {}: cargo build --release --bin herald --bin herald-bench",
            binary.display()
        ));
    }
    let receiver = Receiver::start(opts.receiver_workers, opts.tls)
        .map_err(|e| format!("cannot start the receiver: {e}"))?;
    let (header, machine) = header(&opts, &binary, fd_limit, &started_at);
    println!("{header}");

    let mut runs: Vec<(Scenario, Option<herald::Backend>)> = Vec::new();
    match opts.scenario {
        Scenario::All => {
            runs.push((Scenario::Limit, None));
            for backend in opts.backends() {
                runs.extend(Scenario::EACH.iter().map(|s| (*s, Some(backend))));
            }
        }
        Scenario::Limit => runs.push((Scenario::Limit, None)),
        scenario => runs.extend(opts.backends().into_iter().map(|b| (scenario, Some(b)))),
    }
    let launch = Launch {
        binary,
        pg_admin_url: opts.pg_url.clone(),
        extra_env: opts.env.clone(),
        fd_limit,
        tls: opts.tls,
    };
    let ctx = Ctx { opts, launch, receiver, fd_limit };
    let mut results: Vec<_> = runs.iter().map(|(s, b)| scenarios::run(&ctx, *s, *b)).collect();
    scenarios::add_ratios(&mut results);
    let wall = started.elapsed();

    println!("\n{}", report::table(&results));
    println!("total wall time: {}", duration_text(wall));
    let doc = json!({
        "bench": "herald-bench",
        "started_at": started_at,
        "wall_s": (wall.as_secs_f64() * 10.0).round() / 10.0,
        "machine": machine,
        "scenario": ctx.opts.scenario.name(),
        "results": results.iter().map(report::ScenarioResult::to_json).collect::<Vec<_>>(),
    });
    if let Some(path) = &ctx.opts.json {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("JSON written to {}", path.display());
    }
    let complete = results.iter().all(|r| r.complete);
    ctx.receiver.stop();
    println!("JSON {doc}");
    Ok(complete)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(env!("CARGO_MANIFEST_DIR")).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest file herald is built from (src/ without src/bin, migrations/, Cargo.toml).
fn newest_source() -> Option<(SystemTime, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join("src"), root.join("migrations"), root.join("config")];
    let mut newest = modified(&root.join("Cargo.toml")).map(|t| (t, root.join("Cargo.toml")));
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path == root.join("src/bin") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Some(t) = modified(&path)
                && newest.as_ref().is_none_or(|(n, _)| t > *n)
            {
                newest = Some((t, path));
            }
        }
    }
    newest
}

/// What was measured on what: printed first, and kept in the JSON.
fn header(opts: &Options, binary: &Path, fd_limit: u64, started_at: &str) -> (String, serde_json::Value) {
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let built = modified(binary);
    let stale = match (built, newest_source()) {
        (Some(b), Some((t, path))) if t > b => Some(path.display().to_string()),
        _ => None,
    };
    let client = match opts.client {
        ClientKind::Raw => "raw",
        ClientKind::Awc => "awc",
    };
    let machine = json!({
        "herald_version": env!("CARGO_PKG_VERSION"),
        "commit": commit,
        "uncommitted_changes": dirty,
        "herald_binary": binary.display().to_string(),
        "herald_binary_built_at": built.map(rfc3339),
        "herald_binary_older_than": stale,
        "cores": cores,
        "open_files_limit": fd_limit,
        "load_average_at_start": util::load_average(),
        "client": client,
        "threads": opts.threads,
        "receiver_workers": opts.receiver_workers,
        "tls": opts.tls,
        "timeout_s": opts.timeout.as_secs_f64(),
        "extra_env": opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "herald-bench  herald {} (commit {}{})  {} cores  open files {}  started {}\n",
        env!("CARGO_PKG_VERSION"),
        commit.as_deref().unwrap_or("unknown"),
        if dirty == Some(true) { ", with uncommitted changes" } else { "" },
        cores,
        fd_limit,
        started_at,
    );
    text.push_str(&format!(
        "herald binary {} (built {})  load average {}\nclient {client}, {} generator thread(s), {} receiver worker(s), {} s limit per scenario\nwebhooks over {}",
        binary.display(),
        built.map_or_else(|| "?".into(), rfc3339),
        util::load_average(),
        opts.threads,
        opts.receiver_workers,
        opts.timeout.as_secs_f64(),
        if opts.tls { "HTTPS (--tls; limit stays on HTTP)" } else { "HTTP" },
    ));
    if let Some(path) = stale {
        text.push_str(&format!(
            "\nWARNING: the herald binary is older than {path}: rebuild to measure the current code"
        ));
    }
    if !opts.env.is_empty() {
        let extra: Vec<String> = opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!("\nherald environment: {}", extra.join(" ")));
    }
    (text, machine)
}

fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m {:02}s ({:.1} s)", s / 60, s % 60, d.as_secs_f64())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
