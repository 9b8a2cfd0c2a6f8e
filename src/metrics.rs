//! Prometheus text-format counters. Plain atomics: cheap on the hot path, read on scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub http_2xx: AtomicU64,
    pub http_4xx: AtomicU64,
    pub http_5xx: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Metrics {
    pub fn record_status(&self, status: u16) {
        let counter = match status {
            500.. => &self.http_5xx,
            400..=499 => &self.http_4xx,
            _ => &self.http_2xx,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP herald_http_responses_total HTTP answers by status class.");
        let _ = writeln!(out, "# TYPE herald_http_responses_total counter");
        for (class, c) in [("2xx", &self.http_2xx), ("4xx", &self.http_4xx), ("5xx", &self.http_5xx)] {
            let _ = writeln!(
                out,
                "herald_http_responses_total{{class=\"{class}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP herald_rate_limited_total Requests refused by an organisation's rate limit."
        );
        let _ = writeln!(out, "# TYPE herald_rate_limited_total counter");
        let _ = writeln!(out, "herald_rate_limited_total {}", self.rate_limited.load(Ordering::Relaxed));
    }
}
