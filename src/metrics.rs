//! Prometheus text-format metrics. Plain atomics: cheap on the hot path, read on scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Attempt latency histogram bounds, in milliseconds.
const LATENCY_BUCKETS_MS: [i64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

#[derive(Default)]
pub struct Metrics {
    pub http_2xx: AtomicU64,
    pub http_4xx: AtomicU64,
    pub http_5xx: AtomicU64,
    pub rate_limited: AtomicU64,
    pub events_published: AtomicU64,
    pub deliveries_succeeded: AtomicU64,
    pub deliveries_failed: AtomicU64,
    pub deliveries_dead: AtomicU64,
    pub attempts_retried: AtomicU64,
    pub open_circuits: AtomicI64,
    pub endpoint_actors: AtomicI64,
    /// Actors that died and were replaced by their supervisor.
    pub endpoint_actor_restarts: AtomicU64,
    pub stream_actor_restarts: AtomicU64,
    pub inbound_rejected: AtomicU64,
    pub inbound_rejected_unrecorded: AtomicU64,
    pub inbound_rate_limited: AtomicU64,
    /// Rows the Janitor purged, by table.
    pub purged_events: AtomicU64,
    pub purged_deliveries: AtomicU64,
    pub purged_attempts: AtomicU64,
    pub purged_receipts: AtomicU64,
    pub purged_idempotency_keys: AtomicU64,
    pub purged_sessions: AtomicU64,
    pub purged_stream_tokens: AtomicU64,
    /// Pending deliveries as the Janitor last counted them (a scrape never scans a table).
    pub pending_deliveries: AtomicI64,
    /// Live nodes as the last ownership renewal saw them (1 on a single node).
    pub nodes_alive: AtomicI64,
    pub streams_open: AtomicI64,
    pub stream_actors: AtomicI64,
    pub stream_events_sent: AtomicU64,
    pub streams_dropped_slow: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len()],
    latency_count: AtomicU64,
    latency_sum_ms: AtomicU64,
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

    pub fn observe_attempt(&self, ms: i64) {
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ms.fetch_add(ms.max(0) as u64, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "herald_http_responses_total",
            "counter",
            "HTTP answers by status class.",
            &[
                ("{class=\"2xx\"}", get(&self.http_2xx).to_string()),
                ("{class=\"4xx\"}", get(&self.http_4xx).to_string()),
                ("{class=\"5xx\"}", get(&self.http_5xx).to_string()),
            ],
        );
        family(
            "herald_rate_limited_total",
            "counter",
            "Requests refused by an organisation's rate limit.",
            &[("", get(&self.rate_limited).to_string())],
        );
        family(
            "herald_events_published_total",
            "counter",
            "Events stored by this node.",
            &[("", get(&self.events_published).to_string())],
        );
        family(
            "herald_deliveries_total",
            "counter",
            "Deliveries that reached a final outcome on this node.",
            &[
                ("{outcome=\"succeeded\"}", get(&self.deliveries_succeeded).to_string()),
                ("{outcome=\"failed\"}", get(&self.deliveries_failed).to_string()),
                ("{outcome=\"dead\"}", get(&self.deliveries_dead).to_string()),
            ],
        );
        family(
            "herald_attempts_retried_total",
            "counter",
            "Attempts that failed and were scheduled again.",
            &[("", get(&self.attempts_retried).to_string())],
        );
        family(
            "herald_open_circuits",
            "gauge",
            "Endpoints whose circuit is open on this node.",
            &[("", self.open_circuits.load(Ordering::Relaxed).max(0).to_string())],
        );
        family(
            "herald_inbound_rejected_total",
            "counter",
            "Inbound requests refused (bad signature, stale, malformed), by whether a receipt was kept.",
            &[
                (
                    "{receipt=\"kept\"}",
                    (get(&self.inbound_rejected)
                        - get(&self.inbound_rejected_unrecorded).min(get(&self.inbound_rejected)))
                    .to_string(),
                ),
                ("{receipt=\"dropped\"}", get(&self.inbound_rejected_unrecorded).to_string()),
            ],
        );
        family(
            "herald_inbound_rate_limited_total",
            "counter",
            "Inbound requests refused by a source's rate limit.",
            &[("", get(&self.inbound_rate_limited).to_string())],
        );
        family(
            "herald_retention_purged_total",
            "counter",
            "Rows the Janitor purged, by table.",
            &[
                ("{table=\"events\"}", get(&self.purged_events).to_string()),
                ("{table=\"deliveries\"}", get(&self.purged_deliveries).to_string()),
                ("{table=\"delivery_attempts\"}", get(&self.purged_attempts).to_string()),
                ("{table=\"receipts\"}", get(&self.purged_receipts).to_string()),
                ("{table=\"idempotency_keys\"}", get(&self.purged_idempotency_keys).to_string()),
                ("{table=\"sessions\"}", get(&self.purged_sessions).to_string()),
                ("{table=\"stream_tokens\"}", get(&self.purged_stream_tokens).to_string()),
            ],
        );
        family(
            "herald_endpoint_actors",
            "gauge",
            "Endpoint actors alive on this node (idle ones stop after delivery.idle_actor_ttl).",
            &[("", self.endpoint_actors.load(Ordering::Relaxed).max(0).to_string())],
        );
        family(
            "herald_actor_restarts_total",
            "counter",
            "Actors that died (a bug) and were replaced by their supervisor, by kind.",
            &[
                ("{actor=\"endpoint\"}", get(&self.endpoint_actor_restarts).to_string()),
                ("{actor=\"stream\"}", get(&self.stream_actor_restarts).to_string()),
            ],
        );
        family(
            "herald_streams_open",
            "gauge",
            "Open Server-Sent Events streams on this node.",
            &[("", self.streams_open.load(Ordering::Relaxed).max(0).to_string())],
        );
        family(
            "herald_stream_actors",
            "gauge",
            "Stream actors alive on this node (one per open stream; a cut-off stream's stops at once).",
            &[("", self.stream_actors.load(Ordering::Relaxed).max(0).to_string())],
        );
        family(
            "herald_stream_events_sent_total",
            "counter",
            "Events written to streams.",
            &[("", get(&self.stream_events_sent).to_string())],
        );
        family(
            "herald_streams_dropped_slow_total",
            "counter",
            "Streams cut off because the client could not keep up.",
            &[("", get(&self.streams_dropped_slow).to_string())],
        );
        family(
            "herald_pending_deliveries",
            "gauge",
            "Deliveries waiting for their first or next attempt, as of the Janitor's last count.",
            &[("", self.pending_deliveries.load(Ordering::Relaxed).max(0).to_string())],
        );
        family(
            "herald_cluster_nodes",
            "gauge",
            "herald nodes with a recent heartbeat in this database.",
            &[("", self.nodes_alive.load(Ordering::Relaxed).max(1).to_string())],
        );
        let _ = writeln!(out, "# HELP herald_attempt_duration_ms Delivery attempt latency.");
        let _ = writeln!(out, "# TYPE herald_attempt_duration_ms histogram");
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS_MS.iter().zip(&self.latency_buckets) {
            cumulative += get(count);
            let _ = writeln!(out, "herald_attempt_duration_ms_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ =
            writeln!(out, "herald_attempt_duration_ms_bucket{{le=\"+Inf\"}} {}", get(&self.latency_count));
        let _ = writeln!(out, "herald_attempt_duration_ms_sum {}", get(&self.latency_sum_ms));
        let _ = writeln!(out, "herald_attempt_duration_ms_count {}", get(&self.latency_count));
    }
}
