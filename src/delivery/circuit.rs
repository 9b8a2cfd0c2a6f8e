//! Per-endpoint circuit breaker (DESIGN §5). Pure state; the caller passes the clock in
//! (unix milliseconds) so every transition can be tested without waiting.

/// How long other deliveries wait while the half-open probe is still out: short, since the
/// probe's answer (or its timeout) settles the circuit. Never longer than the configured
/// open period, which tests set in milliseconds.
pub const PROBE_WAIT_MS: i64 = 1_000;

crate::domain::text_enum! {
    /// An endpoint's circuit, as DESIGN §3 names it.
    pub enum CircuitState {
        Closed = "closed",
        Open = "open",
        HalfOpen = "half_open",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    pub failure_threshold: u32,
    pub open_for_ms: i64,
    pub max_open_for_ms: i64,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self { failure_threshold: 5, open_for_ms: 30_000, max_open_for_ms: 10 * 60_000 }
    }
}

/// What the caller may do with the endpoint's next delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allow,
    /// Send it as the single trial request; its outcome must be reported.
    Probe,
    /// Hold deliveries until then; waiting does not count as an attempt.
    Wait {
        until: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    pub open_until: Option<i64>,
    /// Length of the latest open period. A failed probe doubles it; an opening from
    /// closed always starts again at the configured base.
    pub current_open_for_ms: i64,
    pub probe_in_flight: bool,
}

impl CircuitBreaker {
    pub fn new(cfg: &CircuitConfig) -> Self {
        Self {
            state: CircuitState::Closed,
            consecutive_failures: 0,
            open_until: None,
            current_open_for_ms: cfg.open_for_ms,
            probe_in_flight: false,
        }
    }

    pub fn admit(&mut self, now: i64, cfg: &CircuitConfig) -> Admission {
        match self.state {
            CircuitState::Closed => Admission::Allow,
            CircuitState::Open => match self.open_until {
                Some(until) if now < until => Admission::Wait { until },
                _ => {
                    self.state = CircuitState::HalfOpen;
                    self.probe_in_flight = true;
                    Admission::Probe
                }
            },
            CircuitState::HalfOpen if self.probe_in_flight => {
                Admission::Wait { until: now.saturating_add(PROBE_WAIT_MS.min(cfg.open_for_ms).max(1)) }
            }
            CircuitState::HalfOpen => {
                self.probe_in_flight = true;
                Admission::Probe
            }
        }
    }

    /// Any success proves the endpoint answers, so the backlog may flow again.
    pub fn on_success(&mut self) {
        self.state = CircuitState::Closed;
        self.consecutive_failures = 0;
        self.open_until = None;
        self.probe_in_flight = false;
    }

    /// Returns true when this failure opened (or, after a failed probe, re-opened) the circuit.
    pub fn on_retriable_failure(&mut self, now: i64, cfg: &CircuitConfig) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let open_for = match self.state {
            // A request sent before the circuit opened can still fail late; the circuit
            // is already open, so it changes nothing.
            CircuitState::Open => return false,
            CircuitState::Closed if self.consecutive_failures < cfg.failure_threshold.max(1) => {
                return false;
            }
            CircuitState::Closed => cfg.open_for_ms,
            CircuitState::HalfOpen => {
                let cap = cfg.max_open_for_ms.max(cfg.open_for_ms);
                self.current_open_for_ms.max(cfg.open_for_ms).saturating_mul(2).min(cap)
            }
        };
        self.state = CircuitState::Open;
        self.current_open_for_ms = open_for;
        self.open_until = Some(now.saturating_add(open_for));
        self.probe_in_flight = false;
        true
    }

    /// A 4xx (or other non-retriable answer) is the receiver's verdict on one message,
    /// not a sign that it is down: it counts as the endpoint being up.
    pub fn on_non_retriable(&mut self) {
        self.on_success();
    }

    /// For a probe that was admitted but never sent (its delivery was cancelled), so the
    /// next caller gets to probe instead of waiting for an answer that will not come.
    pub fn release_probe(&mut self) {
        self.probe_in_flight = false;
    }

    /// The state to show: an open circuit whose wait is over reports `half_open`, because
    /// the next delivery will be let through as a probe.
    pub fn state(&self, now: i64) -> CircuitState {
        match (self.state, self.open_until) {
            (CircuitState::Open, Some(until)) if now >= until => CircuitState::HalfOpen,
            (state, _) => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: CircuitConfig =
        CircuitConfig { failure_threshold: 3, open_for_ms: 30_000, max_open_for_ms: 100_000 };

    /// A breaker that has just opened at `t`.
    fn opened_at(t: i64) -> CircuitBreaker {
        let mut cb = CircuitBreaker::new(&CFG);
        assert!(!cb.on_retriable_failure(t, &CFG));
        assert!(!cb.on_retriable_failure(t, &CFG));
        assert!(cb.on_retriable_failure(t, &CFG));
        cb
    }

    #[test]
    fn state_names() {
        assert_eq!(CircuitState::Closed.as_str(), "closed");
        assert_eq!(CircuitState::Open.as_str(), "open");
        assert_eq!(CircuitState::HalfOpen.as_str(), "half_open");
    }

    #[test]
    fn closed_allows_and_counts_failures_below_the_threshold() {
        let mut cb = CircuitBreaker::new(&CFG);
        assert_eq!(cb.admit(0, &CFG), Admission::Allow);
        assert!(!cb.on_retriable_failure(0, &CFG));
        assert!(!cb.on_retriable_failure(0, &CFG));
        assert_eq!(cb.consecutive_failures, 2);
        assert_eq!(cb.state(0), CircuitState::Closed);
        assert_eq!(cb.admit(0, &CFG), Admission::Allow);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut cb = CircuitBreaker::new(&CFG);
        cb.on_retriable_failure(0, &CFG);
        cb.on_retriable_failure(0, &CFG);
        cb.on_success();
        assert_eq!(cb.consecutive_failures, 0);
        assert!(!cb.on_retriable_failure(0, &CFG));
        assert!(!cb.on_retriable_failure(0, &CFG));
        assert_eq!(cb.state(0), CircuitState::Closed);
    }

    #[test]
    fn threshold_failures_open_it() {
        let mut cb = opened_at(1_000);
        assert_eq!(cb.state(1_000), CircuitState::Open);
        assert_eq!(cb.open_until, Some(31_000));
        assert_eq!(cb.admit(1_000, &CFG), Admission::Wait { until: 31_000 });
        assert_eq!(cb.admit(30_999, &CFG), Admission::Wait { until: 31_000 });
        // Late failures of requests sent before it opened neither re-open nor extend it.
        assert!(!cb.on_retriable_failure(5_000, &CFG));
        assert_eq!(cb.open_until, Some(31_000));
        assert_eq!(cb.consecutive_failures, 4);
    }

    #[test]
    fn after_the_wait_exactly_one_probe_goes_through() {
        let mut cb = opened_at(0);
        assert_eq!(cb.state(30_000), CircuitState::HalfOpen);
        assert_eq!(cb.admit(30_000, &CFG), Admission::Probe);
        assert_eq!(cb.state, CircuitState::HalfOpen);
        assert!(cb.probe_in_flight);
        assert_eq!(cb.admit(30_001, &CFG), Admission::Wait { until: 31_001 });
        assert_eq!(cb.admit(30_500, &CFG), Admission::Wait { until: 31_500 });
    }

    #[test]
    fn probe_wait_never_exceeds_the_open_period() {
        let cfg = CircuitConfig { failure_threshold: 1, open_for_ms: 50, max_open_for_ms: 400 };
        let mut cb = CircuitBreaker::new(&cfg);
        assert!(cb.on_retriable_failure(0, &cfg));
        assert_eq!(cb.admit(50, &cfg), Admission::Probe);
        assert_eq!(cb.admit(60, &cfg), Admission::Wait { until: 110 });
    }

    #[test]
    fn a_successful_probe_closes_it() {
        let mut cb = opened_at(0);
        assert_eq!(cb.admit(30_000, &CFG), Admission::Probe);
        cb.on_success();
        assert_eq!(cb.state(30_001), CircuitState::Closed);
        assert_eq!((cb.consecutive_failures, cb.open_until, cb.probe_in_flight), (0, None, false));
        assert_eq!(cb.admit(30_001, &CFG), Admission::Allow);
    }

    #[test]
    fn a_failed_probe_reopens_for_twice_as_long_up_to_the_cap() {
        let mut cb = opened_at(0);
        let mut now = 0;
        for expected in [60_000, 100_000, 100_000] {
            now = cb.open_until.unwrap();
            assert_eq!(cb.admit(now, &CFG), Admission::Probe);
            assert!(cb.on_retriable_failure(now + 10, &CFG));
            assert_eq!(cb.state(now + 10), CircuitState::Open);
            assert_eq!(cb.current_open_for_ms, expected);
            assert_eq!(cb.open_until, Some(now + 10 + expected));
            assert!(!cb.probe_in_flight);
        }
        // Once it closes, the next opening starts again from the base duration.
        cb.on_success();
        for _ in 0..3 {
            cb.on_retriable_failure(now, &CFG);
        }
        assert_eq!(cb.open_until, Some(now + 30_000));
    }

    #[test]
    fn a_non_retriable_answer_proves_the_endpoint_is_up() {
        let mut cb = CircuitBreaker::new(&CFG);
        cb.on_retriable_failure(0, &CFG);
        cb.on_retriable_failure(0, &CFG);
        cb.on_non_retriable();
        assert_eq!(cb.consecutive_failures, 0);

        let mut cb = opened_at(0);
        assert_eq!(cb.admit(30_000, &CFG), Admission::Probe);
        cb.on_non_retriable();
        assert_eq!(cb.state(30_000), CircuitState::Closed);
        assert!(!cb.probe_in_flight);
        assert_eq!(cb.admit(30_000, &CFG), Admission::Allow);
    }

    #[test]
    fn a_released_probe_lets_the_next_delivery_probe() {
        let mut cb = opened_at(0);
        assert_eq!(cb.admit(30_000, &CFG), Admission::Probe);
        cb.release_probe();
        assert_eq!(cb.state(30_000), CircuitState::HalfOpen);
        assert_eq!(cb.admit(30_001, &CFG), Admission::Probe);
        assert!(matches!(cb.admit(30_002, &CFG), Admission::Wait { .. }));
    }

    #[test]
    fn a_zero_threshold_behaves_like_one() {
        let cfg = CircuitConfig { failure_threshold: 0, ..CFG };
        let mut cb = CircuitBreaker::new(&cfg);
        assert!(cb.on_retriable_failure(0, &cfg));
        assert_eq!(cb.state(0), CircuitState::Open);
    }
}
