//! The client-side circuit breaker: after `threshold` consecutive failures the client stops
//! sending for `open_for`, then lets a single probe through; its outcome closes the circuit
//! or opens it again. While open, calls fail at once with [`crate::Error::CircuitOpen`]
//! instead of piling onto a service that is already failing.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    open_for: Duration,
    failures: u32,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else waits for its outcome.
    Probing,
}

/// What the breaker lets a caller do now.
#[derive(Debug, PartialEq)]
pub(crate) enum Permit {
    Send,
    /// Fail fast; the circuit may let a probe through after this long.
    Refuse(Duration),
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker { threshold: threshold.max(1), open_for, failures: 0, state: State::Closed }
    }

    pub(crate) fn permit(&mut self, now: Instant) -> Permit {
        match self.state {
            State::Closed => Permit::Send,
            State::Open { until } if now >= until => {
                self.state = State::Probing;
                Permit::Send
            }
            State::Open { until } => Permit::Refuse(until - now),
            // The probe's own outcome decides; a short wait is the honest hint meanwhile.
            State::Probing => Permit::Refuse(Duration::from_millis(100)),
        }
    }

    pub(crate) fn success(&mut self) {
        self.failures = 0;
        self.state = State::Closed;
    }

    pub(crate) fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.state == State::Probing || self.failures >= self.threshold {
            self.state = State::Open { until: now + self.open_for };
        }
    }

    /// The probe's call was dropped before its outcome (its caller gave up): the next call
    /// may probe at once, instead of every call being refused while waiting for an outcome
    /// that will never come.
    pub(crate) fn abandon_probe(&mut self, now: Instant) {
        if self.state == State::Probing {
            self.state = State::Open { until: now };
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state != State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_once() {
        let t0 = Instant::now();
        let mut b = Breaker::new(5, Duration::from_secs(30));
        for _ in 0..4 {
            b.failure(t0);
        }
        assert_eq!(b.permit(t0), Permit::Send);
        b.failure(t0);
        assert_eq!(b.permit(t0 + Duration::from_secs(10)), Permit::Refuse(Duration::from_secs(20)));
        // After 30 s one probe goes; a second caller is refused while it is out.
        let later = t0 + Duration::from_secs(30);
        assert_eq!(b.permit(later), Permit::Send);
        assert!(matches!(b.permit(later), Permit::Refuse(_)));
        // A failed probe opens it again at once, without another five failures.
        b.failure(later);
        assert_eq!(b.permit(later), Permit::Refuse(Duration::from_secs(30)));
        let probe = later + Duration::from_secs(30);
        assert_eq!(b.permit(probe), Permit::Send);
        b.success();
        assert_eq!(b.permit(probe), Permit::Send);
        assert!(!b.is_open());
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(30));
        b.failure(t0);
        let later = t0 + Duration::from_secs(30);
        assert_eq!(b.permit(later), Permit::Send);
        b.abandon_probe(later);
        assert_eq!(b.permit(later), Permit::Send);
        assert!(matches!(b.permit(later), Permit::Refuse(_)), "one probe at a time still");
        // Only a probe is abandoned: an open or closed circuit is left as it is.
        b.failure(later);
        b.abandon_probe(later);
        assert_eq!(b.permit(later), Permit::Refuse(Duration::from_secs(30)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(1));
        b.failure(t0);
        b.failure(t0);
        b.success();
        b.failure(t0);
        b.failure(t0);
        assert_eq!(b.permit(t0), Permit::Send);
    }
}
