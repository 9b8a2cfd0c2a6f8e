//! The bench's clock, percentiles, and what /proc says about processes and the machine.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ORIGIN: OnceLock<Instant> = OnceLock::new();

fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// Microseconds since the bench started: the time base of every timestamp the bench puts in
/// an event and reads back from a webhook or a stream (one process, one monotonic clock).
pub fn now_us() -> u64 {
    origin().elapsed().as_micros() as u64
}

/// The instant of a `now_us` timestamp.
pub fn instant_at(us: u64) -> Instant {
    origin() + Duration::from_micros(us)
}

/// `to - from` in microseconds, clamped into a u32 (71 minutes).
pub fn span_us(from: u64, to: u64) -> u32 {
    to.saturating_sub(from).min(u64::from(u32::MAX)) as u32
}

/// The unsigned number right after `key` (such as `"t":`) in a JSON text: how the bench
/// reads its own markers back from a webhook or a stream frame without parsing the rest.
pub fn number_after(text: &[u8], key: &[u8]) -> Option<u64> {
    let start = text.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = text[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&text[start..start + digits]).ok()?.parse().ok()
}

/// The unit is in every name, as in the printed report.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Percentiles (nearest rank) of samples in microseconds, in milliseconds.
pub fn percentiles(samples: &mut [u32]) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    let at = |q: f64| {
        let rank = ((n as f64 * q).ceil() as usize).clamp(1, n);
        f64::from(samples[rank - 1]) / 1000.0
    };
    Some(Percentiles { p50_ms: at(0.50), p90_ms: at(0.90), p99_ms: at(0.99), max_ms: at(1.0) })
}

/// Waits until `current()` reaches `target`. Gives up when nothing moved for `stall` or at
/// `deadline`; says whether the target was reached.
pub fn wait_for(target: u64, current: impl Fn() -> u64, stall: Duration, deadline: Instant) -> bool {
    let mut last = current();
    let mut moved_at = Instant::now();
    loop {
        let value = current();
        if value >= target {
            return true;
        }
        if value != last {
            last = value;
            moved_at = Instant::now();
        }
        if Instant::now() >= deadline || moved_at.elapsed() >= stall {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// (command name, own utime+stime, reaped children's cutime+cstime) in clock ticks.
fn read_stat(pid: &str) -> Option<(String, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // After the name: state is field 3 of the man page, so utime (14) is index 11.
    Some((comm, field(11)? + field(12)?, field(13)? + field(14)?))
}

/// A process's CPU time (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    read_stat(&pid.to_string()).map(|(_, own, _)| own as f64 / clock_ticks_per_second())
}

/// CPU seconds of each thread of a process, by thread id, with the thread's name.
pub fn thread_cpu_seconds(pid: u32) -> Vec<(u32, String, f64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let ticks = clock_ticks_per_second();
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|tid| {
            let (name, own, _) = read_stat(&format!("{pid}/task/{tid}"))?;
            Some((tid.parse().ok()?, name, own as f64 / ticks))
        })
        .collect()
}

/// CPU seconds of every `postgres` process, including backends that have already exited
/// (the postmaster's reaped-children time), so a delta covers the whole scenario.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    let ticks: u64 = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| read_stat(&pid))
        .filter(|(comm, _, _)| comm == "postgres")
        .map(|(_, own, children)| own + children)
        .sum();
    ticks as f64 / clock_ticks_per_second()
}

/// A `kB` field of /proc/<pid>/status (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Busy and total jiffies of the whole machine, from /proc/stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    pub fn read() -> Self {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return Self::default() };
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Self { busy: total.saturating_sub(idle), total }
    }

    /// Percent of all cores busy between `earlier` and now.
    pub fn busy_percent_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 { 0.0 } else { 100.0 * self.busy.saturating_sub(earlier.busy) as f64 / total as f64 }
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Raises this process's soft limit on open files to its hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return 1024;
    }
    // An unlimited hard limit cannot be the soft one for files; the kernel's usual cap is 2^20.
    let wanted = lim.rlim_max.min(1 << 20);
    if lim.rlim_cur < wanted {
        let raised = libc::rlimit { rlim_cur: wanted, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } == 0 {
            lim.rlim_cur = wanted;
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        let p = percentiles(&mut v).unwrap();
        assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms), (50.0, 90.0, 99.0, 100.0));
    }

    #[test]
    fn reads_markers_back() {
        let body = br#"{"id":"evt_1","type":"bench.e2e","created_at":"x","data":{"i":42,"t":1234567}}"#;
        assert_eq!(number_after(body, br#""i":"#), Some(42));
        assert_eq!(number_after(body, br#""t":"#), Some(1234567));
        assert_eq!(number_after(body, br#""w":"#), None);
    }

    #[test]
    fn own_stat_parses() {
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(status_kib(std::process::id(), "VmRSS").unwrap() > 0);
    }
}
