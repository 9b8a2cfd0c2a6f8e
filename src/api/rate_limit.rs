//! Per-organisation rate limit: a token bucket holding a minute's allowance, so a whole
//! minute's worth may be spent at once, refilled continuously. In memory, per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct RateStatus {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until one request is allowed again (when refused).
    pub retry_after_secs: u64,
}

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn check(&self, org_id: &str, per_minute: u32) -> RateStatus {
        self.check_at(org_id, per_minute, Instant::now())
    }

    fn check_at(&self, org_id: &str, per_minute: u32, now: Instant) -> RateStatus {
        let capacity = per_minute.max(1) as f64;
        let per_sec = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(org_id.to_string()).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        RateStatus {
            allowed,
            limit: per_minute,
            remaining: bucket.tokens.floor() as u32,
            reset_secs: ((capacity - bucket.tokens) / per_sec).ceil() as u64,
            retry_after_secs: if allowed {
                0
            } else {
                ((1.0 - bucket.tokens) / per_sec).ceil().max(1.0) as u64
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_minute_of_allowance_then_refusal_then_refill() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..100 {
            let s = rl.check_at("org", 100, t0);
            assert!(s.allowed, "request {i}");
            assert_eq!(s.remaining, 99 - i);
        }
        let refused = rl.check_at("org", 100, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(rl.check_at("other", 100, t0).allowed, "buckets are per organisation");
        assert!(rl.check_at("org", 100, t0 + Duration::from_secs(1)).allowed);
        assert!(!rl.check_at("org", 100, t0 + Duration::from_secs(1)).allowed);
    }
}
