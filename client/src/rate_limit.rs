//! herald's `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` answers,
//! remembered so that a client whose allowance is spent waits for the window to reset
//! instead of sending a request that will be refused with `429`.

use std::time::{Duration, Instant};

use actix_web::http::header::HeaderMap;

#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    /// The allowance is spent until this instant.
    exhausted_until: Option<Instant>,
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl RateLimit {
    /// Takes in an answer's headers (`RateLimit-Reset` is in seconds from now).
    pub(crate) fn observe(&mut self, headers: &HeaderMap, now: Instant) {
        match (number(headers, "ratelimit-remaining"), number(headers, "ratelimit-reset")) {
            (Some(0), Some(reset)) => self.exhausted_until = Some(now + Duration::from_secs(reset.max(1))),
            (Some(_), _) => self.exhausted_until = None,
            _ => {}
        }
    }

    /// How long to wait before the next request may be sent.
    pub(crate) fn wait(&mut self, now: Instant) -> Option<Duration> {
        match self.exhausted_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                self.exhausted_until = None;
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn waits_only_while_the_allowance_is_spent() {
        let t0 = Instant::now();
        let mut r = RateLimit::default();
        r.observe(&headers(&[("ratelimit-remaining", "3"), ("ratelimit-reset", "20")]), t0);
        assert_eq!(r.wait(t0), None);
        r.observe(&headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "20")]), t0);
        assert_eq!(r.wait(t0 + Duration::from_secs(5)), Some(Duration::from_secs(15)));
        assert_eq!(r.wait(t0 + Duration::from_secs(20)), None);
        assert_eq!(r.wait(t0 + Duration::from_secs(5)), None, "cleared once the window passed");
        // An answer without the headers (a health check, say) changes nothing.
        r.observe(&headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "2")]), t0);
        r.observe(&headers(&[]), t0);
        assert!(r.wait(t0).is_some());
    }
}
