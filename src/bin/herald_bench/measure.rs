//! What every scenario measures around its load: CPU (herald's, by thread, PostgreSQL's, the
//! bench's, the machine's), memory, how long herald takes to record results, what its log and
//! PostgreSQL's statistics say once it has stopped.

use std::time::{Duration, Instant};

use crate::herald::{Backend, Herald};
use crate::load::Outcome;
use crate::report::{Goal, ScenarioResult};
use crate::util::{MachineCpu, Percentiles, cpu_seconds, now_us, postgres_cpu_seconds, thread_cpu_seconds};

/// How long deliveries or frames may stop coming before the bench stops waiting for the rest.
pub const STALL: Duration = Duration::from_secs(20);

/// Herald's (and PostgreSQL's, and the bench's, and the machine's) CPU at one moment.
pub struct Usage {
    herald_cpu: f64,
    herald_threads: Vec<(u32, String, f64)>,
    postgres_cpu: f64,
    bench_cpu: f64,
    machine: MachineCpu,
    at: Instant,
}

impl Usage {
    pub fn read(herald_pid: Option<u32>) -> Self {
        Self {
            herald_cpu: herald_pid.and_then(cpu_seconds).unwrap_or(0.0),
            herald_threads: herald_pid.map(thread_cpu_seconds).unwrap_or_default(),
            postgres_cpu: postgres_cpu_seconds(),
            bench_cpu: cpu_seconds(std::process::id()).unwrap_or(0.0),
            machine: MachineCpu::read(),
            at: Instant::now(),
        }
    }

    /// `tokio-rt-worker×12 3.10, herald 1.20, …`: where herald's CPU went, by thread name
    /// (threads of one name summed, the busiest of them single too when one stands out).
    fn busiest_threads(&self, later: &Usage) -> String {
        let mut by_name: Vec<(String, usize, f64, f64)> = Vec::new();
        for (tid, name, cpu) in &later.herald_threads {
            let before = self.herald_threads.iter().find(|(t, _, _)| t == tid).map_or(0.0, |(_, _, c)| *c);
            let used = cpu - before;
            if used <= 0.0 {
                continue;
            }
            match by_name.iter_mut().find(|(n, ..)| n == name) {
                Some(entry) => {
                    entry.1 += 1;
                    entry.2 += used;
                    entry.3 = entry.3.max(used);
                }
                None => by_name.push((name.clone(), 1, used, used)),
            }
        }
        by_name.sort_by(|a, b| b.2.total_cmp(&a.2));
        let top: Vec<String> = by_name
            .iter()
            .take(4)
            .map(|(name, n, sum, max)| match n {
                1 => format!("{name} {sum:.2}"),
                _ => format!("{name}×{n} {sum:.2} (busiest {max:.2})"),
            })
            .collect();
        if top.is_empty() { "-".into() } else { top.join(", ") }
    }

    /// CPU figures from `self` to `later`; `work` is what CPU per 1,000 is counted against.
    pub fn report(
        &self,
        later: &Usage,
        herald: Option<(&Herald, Backend)>,
        work: (&str, f64),
        r: &mut ScenarioResult,
    ) {
        let window = later.at.duration_since(self.at).as_secs_f64();
        if let Some((h, backend)) = herald {
            let cpu = later.herald_cpu - self.herald_cpu;
            r.num("herald_cpu_s", "herald CPU s (utime+stime)", cpu);
            if work.1 > 0.0 {
                r.num(
                    "herald_cpu_s_per_1k",
                    &format!("herald CPU s per 1,000 {}", work.0),
                    cpu * 1000.0 / work.1,
                );
            }
            if window > 0.0 {
                r.num("herald_cores", "herald cores busy (CPU s / wall s)", cpu / window);
            }
            r.text("herald_threads", "herald's busiest threads (CPU s)", self.busiest_threads(later));
            if backend == Backend::Postgres {
                r.num(
                    "postgres_cpu_s",
                    "PostgreSQL CPU s (all postgres processes)",
                    later.postgres_cpu - self.postgres_cpu,
                );
            }
            r.num("herald_idle_rss_mb", "herald RSS idle MB (after start)", h.idle_rss_kib as f64 / 1024.0)
                .goal(Goal::AtMost(30.0));
            r.num("herald_peak_rss_mb", "herald peak RSS MB (VmHWM)", h.peak_rss_kib() as f64 / 1024.0);
        }
        r.num("bench_cpu_s", "bench CPU s (generator, receiver, streams)", later.bench_cpu - self.bench_cpu);
        r.num(
            "machine_busy_pct",
            "machine CPU busy % (all cores)",
            later.machine.busy_percent_since(&self.machine),
        );
        r.num("measured_s", "measured window s", window);
    }
}

pub fn latency_figures(
    r: &mut ScenarioResult,
    key: &str,
    what: &str,
    p: Option<Percentiles>,
) -> Option<Percentiles> {
    let p = p?;
    r.num(&format!("{key}_p50_ms"), &format!("{what} p50 ms"), p.p50_ms);
    r.num(&format!("{key}_p90_ms"), &format!("{what} p90 ms"), p.p90_ms);
    r.num(&format!("{key}_p99_ms"), &format!("{what} p99 ms"), p.p99_ms);
    r.num(&format!("{key}_max_ms"), &format!("{what} max ms"), p.max_ms);
    Some(p)
}

pub fn answers_note(r: &mut ScenarioResult, what: &str, out: &Outcome) {
    r.text(&format!("{what}_answers"), &format!("{what} answers"), out.answers());
    if let Some(e) = &out.first_error {
        r.note(format!("first {what} failure: {e}"));
    }
    if out.timed_out {
        r.complete = false;
        r.note(format!("{what}: the time limit cut the load off after {} requests", out.sent));
    }
}

/// Stops herald and reports how it went; `per` is what PostgreSQL's counters are divided by
/// (everything herald did on its database, warm-up included).
pub fn finish(h: Herald, label: &str, per: (&str, f64), r: &mut ScenarioResult) {
    let stopped = h.stop(label);
    if let Some((pg, tables)) = stopped.pg_stats.filter(|_| per.1 > 0.0) {
        let (unit, n) = per;
        let mut scanned: Vec<_> = tables.iter().filter(|t| t.seq_rows > 0).collect();
        scanned.sort_by_key(|t| std::cmp::Reverse(t.seq_rows));
        let shown: Vec<String> = scanned
            .iter()
            .take(3)
            .map(|t| format!("{} {:.1} ({} scans)", t.table, t.seq_rows as f64 / n, t.seq_scans))
            .collect();
        if !shown.is_empty() {
            r.text(
                "pg_seq_rows_per_unit",
                &format!("PostgreSQL rows read by seq scans per {unit}"),
                shown.join(", "),
            );
        }
        let mut fetched: Vec<_> = tables.iter().filter(|t| t.index_rows > 0).collect();
        fetched.sort_by_key(|t| std::cmp::Reverse(t.index_rows));
        let shown: Vec<String> =
            fetched.iter().take(3).map(|t| format!("{} {:.1}", t.table, t.index_rows as f64 / n)).collect();
        if !shown.is_empty() {
            r.text(
                "pg_index_rows_per_unit",
                &format!("PostgreSQL rows fetched by index per {unit}"),
                shown.join(", "),
            );
        }
        r.num("pg_commits_per_unit", &format!("PostgreSQL commits per {unit}"), pg.xact_commit as f64 / n);
        r.num(
            "pg_rows_inserted_per_unit",
            &format!("PostgreSQL rows inserted per {unit}"),
            pg.tup_inserted as f64 / n,
        );
        r.num(
            "pg_rows_updated_per_unit",
            &format!("PostgreSQL rows updated per {unit}"),
            pg.tup_updated as f64 / n,
        );
        r.num(
            "pg_rows_fetched_per_unit",
            &format!("PostgreSQL rows fetched per {unit}"),
            pg.tup_fetched as f64 / n,
        );
        if pg.xact_rollback > 0 {
            r.count("pg_rollbacks", "PostgreSQL rollbacks", pg.xact_rollback as u64);
        }
    }
    r.num("herald_shutdown_ms", "herald SIGTERM to exit ms", stopped.shutdown_ms as f64);
    if stopped.exit != "exit status: 0" {
        r.note(format!("herald's exit: {}", stopped.exit));
    }
    let log = stopped.log;
    if log.warnings + log.errors > 0 {
        r.count("herald_log_warnings", "herald log warnings", log.warnings);
        r.count("herald_log_errors", "herald log errors", log.errors);
        for sample in &log.samples {
            r.note(format!("herald log: {sample}"));
        }
    }
    if let Some(path) = log.kept_at {
        r.note(format!("herald's log kept at {}", path.display()));
    }
}

/// Deliveries expected that did not arrive, and duplicates, as figures; either makes the run
/// incomplete.
pub fn delivery_checks(r: &mut ScenarioResult, expected: u64, unique: u64, duplicates: u64) {
    let missing = expected.saturating_sub(unique);
    r.count("duplicates", "duplicate deliveries", duplicates);
    r.count("missing", "deliveries missing at the end", missing);
    if missing > 0 {
        r.complete = false;
    }
}

/// Once the receiver has every delivery: how much longer herald took to record their results
/// (deliveries still `pending` in its store), and whether it retried any.
pub struct Settled {
    unrecorded_at_last_delivery: Option<f64>,
    recorded_s: f64,
    still_pending: f64,
    retried: Option<f64>,
    /// Pending deliveries the polls counted: herald counts them with a query, so they add to
    /// the rows PostgreSQL reports read.
    polled_rows: f64,
}

/// The polls back off up to this: counting pending deliveries is itself a query that reads
/// them, and polling fast would slow what is being measured.
const SETTLE_POLL_MAX: Duration = Duration::from_secs(1);

impl Settled {
    pub fn wait(h: &Herald, started_us: u64, deadline: Instant) -> Self {
        let first = h.metric("herald_pending_deliveries");
        let (mut pending, mut moved) = (first.unwrap_or(0.0), Instant::now());
        let (mut interval, mut polled_rows) = (Duration::from_millis(50), pending);
        while pending > 0.0 && Instant::now() < deadline && moved.elapsed() < STALL {
            std::thread::sleep(interval);
            interval = (interval * 2).min(SETTLE_POLL_MAX);
            let now = h.metric("herald_pending_deliveries").unwrap_or(pending);
            polled_rows += now;
            if now != pending {
                (pending, moved) = (now, Instant::now());
            }
        }
        Self {
            unrecorded_at_last_delivery: first,
            recorded_s: now_us().saturating_sub(started_us) as f64 / 1e6,
            still_pending: pending,
            retried: h.metric("herald_attempts_retried_total"),
            polled_rows,
        }
    }

    pub fn report(self, r: &mut ScenarioResult) {
        let Some(first) = self.unrecorded_at_last_delivery else {
            r.note("cannot read herald_pending_deliveries from /metrics");
            return;
        };
        r.num("unrecorded_at_last_delivery", "results unrecorded when the last delivery arrived", first);
        r.num("recorded_s", "first publish to every result recorded s (polled)", self.recorded_s);
        if self.polled_rows > 1000.0 {
            r.num(
                "settle_polled_rows",
                "pending rows counted by the bench's /metrics polls",
                self.polled_rows,
            );
        }
        if self.still_pending > 0.0 {
            r.complete = false;
            r.note(format!("{} deliveries still pending in herald's store at the end", self.still_pending));
        }
        if let Some(retried) = self.retried.filter(|n| *n > 0.0) {
            r.num("attempts_retried", "attempts herald retried", retried);
        }
    }
}
