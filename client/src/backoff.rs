//! How long to wait before the next try: exponential backoff with jitter, or what the
//! server asked for in `Retry-After`.

use std::time::{Duration, SystemTime};

use actix_web::http::header::{HeaderMap, HttpDate};

/// Exponential backoff: `base × 2^attempt`, capped at `max`, then scaled by a random
/// factor in [0.5, 1) ("equal jitter") so that many clients do not retry in step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20)).min(self.max);
        exp.mul_f64(0.5 + 0.5 * unit_random())
    }
}

/// A uniform random number in [0, 1).
fn unit_random() -> f64 {
    let bits = u64::from_le_bytes(crate::webhook::random_bytes::<8>()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as seconds or as an HTTP date (any of the three forms RFC 9110 allows).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date: HttpDate = value.parse().ok()?;
    Some(SystemTime::from(date).duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    #[test]
    fn grows_exponentially_with_jitter_and_a_cap() {
        let b = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(2) };
        for _ in 0..100 {
            let d0 = b.delay(0);
            assert!(d0 >= Duration::from_millis(50) && d0 < Duration::from_millis(100), "{d0:?}");
            let d3 = b.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 < Duration::from_millis(800), "{d3:?}");
            assert!(b.delay(40) < Duration::from_secs(2));
        }
    }

    #[test]
    fn retry_after_in_seconds_and_as_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut h = HeaderMap::new();
        h.insert("retry-after".parse().unwrap(), HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        for form in
            ["Sun, 06 Nov 1994 08:49:47 GMT", "Sunday, 06-Nov-94 08:49:47 GMT", "Sun Nov  6 08:49:47 1994"]
        {
            h.insert("retry-after".parse().unwrap(), HeaderValue::from_static(form));
            assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)), "{form}");
        }
        h.insert("retry-after".parse().unwrap(), HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }
}
