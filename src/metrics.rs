//! Prometheus metrics through prometheus-client. Each counter and gauge is an atomic that the
//! registry shares: cheap on the hot path, read on scrape.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};

/// `/metrics` answers in the Prometheus text format, version 0.0.4: what every scraper
/// reads, and what herald answered before it used prometheus-client.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Attempt latency histogram bounds, in seconds (5 ms to 30 s).
const LATENCY_BUCKETS_S: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub struct Metrics {
    pub http_2xx: Counter,
    pub http_4xx: Counter,
    pub http_5xx: Counter,
    pub rate_limited: Counter,
    pub events_published: Counter,
    pub deliveries_succeeded: Counter,
    pub deliveries_failed: Counter,
    pub deliveries_dead: Counter,
    pub attempts_retried: Counter,
    pub open_circuits: Gauge,
    pub endpoint_actors: Gauge,
    /// Actors that died and were replaced by their supervisor.
    pub endpoint_actor_restarts: Counter,
    pub stream_actor_restarts: Counter,
    /// Inbound requests refused, by whether a receipt of them was kept.
    pub inbound_rejected_kept: Counter,
    pub inbound_rejected_dropped: Counter,
    pub inbound_rate_limited: Counter,
    /// Rows the Janitor purged, by table.
    pub purged_events: Counter,
    pub purged_deliveries: Counter,
    pub purged_attempts: Counter,
    pub purged_receipts: Counter,
    pub purged_idempotency_keys: Counter,
    pub purged_sessions: Counter,
    pub purged_stream_tokens: Counter,
    /// Pending deliveries as the Janitor last counted them (a scrape never scans a table).
    pub pending_deliveries: Gauge,
    /// Live nodes as the last ownership renewal saw them (1 on a single node).
    pub nodes_alive: Gauge,
    pub streams_open: Gauge,
    pub stream_actors: Gauge,
    pub stream_events_sent: Counter,
    pub streams_dropped_slow: Counter,
    attempt_duration: Histogram,
    registry: Registry,
}

/// A metric of its own name, registered. prometheus-client ends help texts with a full
/// stop and counter names with `_total` itself, so neither is written here.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// A counter family whose label values are all known: each sample exists from the start
/// (at zero, so a scrape before the first event still lists it), with its own handle.
fn labelled<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<[(&'static str, &'static str); 1], Counter>::default();
    let counters = values.map(|value| family.get_or_create_owned(&[(label, value)]));
    registry.register(name, help, family);
    counters
}

impl Default for Metrics {
    /// Long, but a flat list: one registration per family, in the order `/metrics` lists them.
    fn default() -> Self {
        let r = &mut Registry::default();
        let [http_2xx, http_4xx, http_5xx] = labelled(
            r,
            "herald_http_responses",
            "HTTP answers by status class",
            "class",
            ["2xx", "4xx", "5xx"],
        );
        let rate_limited =
            registered(r, "herald_rate_limited", "Requests refused by an organisation's rate limit");
        let events_published = registered(r, "herald_events_published", "Events stored by this node");
        let [deliveries_succeeded, deliveries_failed, deliveries_dead] = labelled(
            r,
            "herald_deliveries",
            "Deliveries that reached a final outcome on this node",
            "outcome",
            ["succeeded", "failed", "dead"],
        );
        let attempts_retried =
            registered(r, "herald_attempts_retried", "Attempts that failed and were scheduled again");
        let open_circuits =
            registered(r, "herald_open_circuits", "Endpoints whose circuit is open on this node");
        let [inbound_rejected_kept, inbound_rejected_dropped] = labelled(
            r,
            "herald_inbound_rejected",
            "Inbound requests refused (bad signature, stale, malformed), by whether a receipt was kept",
            "receipt",
            ["kept", "dropped"],
        );
        let inbound_rate_limited =
            registered(r, "herald_inbound_rate_limited", "Inbound requests refused by a source's rate limit");
        let [
            purged_events,
            purged_deliveries,
            purged_attempts,
            purged_receipts,
            purged_idempotency_keys,
            purged_sessions,
            purged_stream_tokens,
        ] = labelled(
            r,
            "herald_retention_purged",
            "Rows the Janitor purged, by table",
            "table",
            [
                "events",
                "deliveries",
                "delivery_attempts",
                "receipts",
                "idempotency_keys",
                "sessions",
                "stream_tokens",
            ],
        );
        let endpoint_actors = registered(
            r,
            "herald_endpoint_actors",
            "Endpoint actors alive on this node (idle ones stop after delivery.idle_actor_ttl)",
        );
        let [endpoint_actor_restarts, stream_actor_restarts] = labelled(
            r,
            "herald_actor_restarts",
            "Actors that died (a bug) and were replaced by their supervisor, by kind",
            "actor",
            ["endpoint", "stream"],
        );
        let streams_open =
            registered(r, "herald_streams_open", "Open Server-Sent Events streams on this node");
        let stream_actors = registered(
            r,
            "herald_stream_actors",
            "Stream actors alive on this node (one per open stream; a cut-off stream's stops at once)",
        );
        let stream_events_sent = registered(r, "herald_stream_events_sent", "Events written to streams");
        let streams_dropped_slow = registered(
            r,
            "herald_streams_dropped_slow",
            "Streams cut off because the client could not keep up",
        );
        let pending_deliveries = registered(
            r,
            "herald_pending_deliveries",
            "Deliveries waiting for their first or next attempt, as of the Janitor's last count",
        );
        let nodes_alive: Gauge =
            registered(r, "herald_cluster_nodes", "herald nodes with a recent heartbeat in this database");
        // A single node never counts the cluster: it is the one node there is.
        nodes_alive.set(1);
        let attempt_duration = Histogram::new(LATENCY_BUCKETS_S);
        r.register_with_unit(
            "herald_attempt_duration",
            "Delivery attempt latency",
            Unit::Seconds,
            attempt_duration.clone(),
        );
        Self {
            http_2xx,
            http_4xx,
            http_5xx,
            rate_limited,
            events_published,
            deliveries_succeeded,
            deliveries_failed,
            deliveries_dead,
            attempts_retried,
            open_circuits,
            endpoint_actors,
            endpoint_actor_restarts,
            stream_actor_restarts,
            inbound_rejected_kept,
            inbound_rejected_dropped,
            inbound_rate_limited,
            purged_events,
            purged_deliveries,
            purged_attempts,
            purged_receipts,
            purged_idempotency_keys,
            purged_sessions,
            purged_stream_tokens,
            pending_deliveries,
            nodes_alive,
            streams_open,
            stream_actors,
            stream_events_sent,
            streams_dropped_slow,
            attempt_duration,
            registry: std::mem::take(r),
        }
    }
}

impl Metrics {
    pub fn record_status(&self, status: u16) {
        let counter = match status {
            500.. => &self.http_5xx,
            400..=499 => &self.http_4xx,
            _ => &self.http_2xx,
        };
        counter.inc();
    }

    pub fn observe_attempt(&self, ms: i64) {
        self.attempt_duration.observe(ms.max(0) as f64 / 1000.0);
    }

    /// The Prometheus text of every metric, appended to `out`.
    pub fn render(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(out, &self.registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(m: &Metrics) -> String {
        let mut out = String::new();
        m.render(&mut out);
        out
    }

    #[test]
    fn every_sample_is_listed_from_the_start_under_its_name() {
        let text = rendered(&Metrics::default());
        for sample in [
            "herald_http_responses_total{class=\"2xx\"} 0",
            "herald_http_responses_total{class=\"5xx\"} 0",
            "herald_rate_limited_total 0",
            "herald_events_published_total 0",
            "herald_deliveries_total{outcome=\"dead\"} 0",
            "herald_attempts_retried_total 0",
            "herald_open_circuits 0",
            "herald_inbound_rejected_total{receipt=\"kept\"} 0",
            "herald_inbound_rejected_total{receipt=\"dropped\"} 0",
            "herald_inbound_rate_limited_total 0",
            "herald_retention_purged_total{table=\"delivery_attempts\"} 0",
            "herald_endpoint_actors 0",
            "herald_actor_restarts_total{actor=\"stream\"} 0",
            "herald_streams_open 0",
            "herald_stream_actors 0",
            "herald_stream_events_sent_total 0",
            "herald_streams_dropped_slow_total 0",
            "herald_pending_deliveries 0",
            "herald_cluster_nodes 1",
            "herald_attempt_duration_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample} missing from:\n{text}");
        }
        assert!(
            text.contains("# HELP herald_http_responses_total HTTP answers by status class.\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE herald_http_responses_total counter\n"), "{text}");
        assert!(!text.contains(".."), "one full stop after each help text: {text}");
    }

    #[test]
    fn attempt_latency_is_in_seconds() {
        let m = Metrics::default();
        m.observe_attempt(40);
        m.observe_attempt(2000);
        m.observe_attempt(-5);
        let text = rendered(&m);
        for sample in [
            "herald_attempt_duration_seconds_bucket{le=\"0.005\"} 1",
            "herald_attempt_duration_seconds_bucket{le=\"0.05\"} 2",
            "herald_attempt_duration_seconds_bucket{le=\"1\"} 2",
            "herald_attempt_duration_seconds_bucket{le=\"2.5\"} 3",
            "herald_attempt_duration_seconds_bucket{le=\"+Inf\"} 3",
            "herald_attempt_duration_seconds_sum 2.04",
            "herald_attempt_duration_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample} missing from:\n{text}");
        }
        assert!(text.contains("# TYPE herald_attempt_duration_seconds histogram\n"), "{text}");
    }

    #[test]
    fn counters_and_gauges_move() {
        let m = Metrics::default();
        m.record_status(204);
        m.record_status(404);
        m.record_status(503);
        m.record_status(503);
        m.purged_sessions.inc_by(7);
        m.streams_open.inc();
        m.streams_open.inc();
        m.streams_open.dec();
        let text = rendered(&m);
        for sample in [
            "herald_http_responses_total{class=\"2xx\"} 1",
            "herald_http_responses_total{class=\"4xx\"} 1",
            "herald_http_responses_total{class=\"5xx\"} 2",
            "herald_retention_purged_total{table=\"sessions\"} 7",
            "herald_streams_open 1",
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample} missing from:\n{text}");
        }
    }
}
