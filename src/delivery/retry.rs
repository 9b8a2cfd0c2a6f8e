//! When to try a delivery again (DESIGN §5): outcome classes, the schedule, `Retry-After`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::HttpDate;

use crate::timefmt::parse_duration_list;

/// `Retry-After` may not park a delivery longer than this, whatever the receiver asks.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// `delivery.retry_schedule` of `config/default.toml` (a config test keeps the two equal).
pub const DEFAULT_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h,24h,24h,24h,24h,24h,24h,24h,24h";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    Retriable,
    Failed,
}

/// `None` is a connection error or timeout. Redirects are not followed, so a 3xx is a
/// misconfigured URL that retrying will not fix.
pub fn classify(status: Option<u16>) -> AttemptOutcome {
    match status {
        None | Some(408 | 429 | 500..=599) => AttemptOutcome::Retriable,
        Some(200..=299) => AttemptOutcome::Succeeded,
        Some(_) => AttemptOutcome::Failed,
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date, capped at [`MAX_RETRY_AFTER`]. A date is
/// read in any of the three forms RFC 9110 §5.6.7 says a recipient must accept (IMF-fixdate,
/// RFC 850, asctime). A date in the past means "now" (zero); anything unparseable is
/// ignored (`None`).
pub fn parse_retry_after(value: &str, now_unix_secs: i64) -> Option<Duration> {
    let v = value.trim();
    let delay = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // A number too long for u64 is still a request to wait "very long".
        v.parse().map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = SystemTime::from(v.parse::<HttpDate>().ok()?);
        let at = i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
        Duration::from_secs(u64::try_from(at.saturating_sub(now_unix_secs)).unwrap_or(0))
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { schedule: parse_duration_list(DEFAULT_SCHEDULE).expect("the default schedule parses") }
    }
}

impl RetryPolicy {
    /// Attempts a delivery gets in all: the first one plus one per scheduled retry.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// Delay before the next attempt after `attempts_made` attempts (the failed one
    /// included), or `None` when the schedule is used up and the delivery is dead.
    /// `attempts_made == 0` is treated as 1. `jitter` in [0, 1) spreads the delay over
    /// ±20 % so that deliveries that failed together do not all come back together.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        let base = *self.schedule.get(attempts_made.max(1) as usize - 1)?;
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.5 };
        let delay = base.mul_f64(0.8 + 0.4 * jitter);
        Some(retry_after.map_or(delay, |ra| ra.max(delay)))
    }
}

/// A uniformly random number in [0, 1) for [`RetryPolicy::next_delay`].
pub fn jitter() -> f64 {
    let bits = u64::from_le_bytes(crate::ids::random::<8>()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_default_schedule() {
        let day = 86_400;
        assert_eq!(
            RetryPolicy::default().schedule,
            [5, 300, 1800, 7200, 18_000, 36_000, 36_000, day, day, day, day, day, day, day, day].map(secs)
        );
    }

    #[test]
    fn classification() {
        use AttemptOutcome::*;
        for (status, outcome) in [
            (None, Retriable),
            (Some(200), Succeeded),
            (Some(204), Succeeded),
            (Some(299), Succeeded),
            (Some(408), Retriable),
            (Some(429), Retriable),
            (Some(500), Retriable),
            (Some(503), Retriable),
            (Some(599), Retriable),
            (Some(100), Failed),
            (Some(301), Failed),
            (Some(304), Failed),
            (Some(400), Failed),
            (Some(401), Failed),
            (Some(404), Failed),
            (Some(410), Failed),
            (Some(600), Failed),
        ] {
            assert_eq!(classify(status), outcome, "{status:?}");
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120", 0), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999", 0), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("99999999999999999999999", 0), Some(MAX_RETRY_AFTER));
        for junk in ["", "-5", "1.5", "soon", "5s"] {
            assert_eq!(parse_retry_after(junk, 0), None, "{junk}");
        }
    }

    #[test]
    fn retry_after_http_dates() {
        // 1445412480 and 1709251199 computed independently (Python's email.utils + calendar.timegm).
        let at = 1_445_412_480;
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at - 90), Some(secs(90)));
        assert_eq!(parse_retry_after("Thu, 29 Feb 2024 23:59:59 GMT", 1_709_251_199 - 7), Some(secs(7)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:05 GMT", 0), Some(secs(5)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at + 90), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at - 10 * 86_400),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_takes_the_obsolete_date_forms_rfc_9110_requires() {
        let at = 1_445_412_480;
        for form in ["Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015"] {
            assert_eq!(parse_retry_after(form, at - 90), Some(secs(90)), "{form}");
        }
        // asctime pads a one-digit day with a space: 1 Oct 2015 is 20 days earlier.
        assert_eq!(parse_retry_after("Thu Oct  1 07:28:00 2015", at - 20 * 86_400 - 90), Some(secs(90)));
    }

    #[test]
    fn malformed_http_dates_are_ignored() {
        for bad in [
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 21 Okt 2015 07:28:00 GMT",
            "Wed, 1 Oct 2015 07:28:00 GMT",
            "Wed, 30 Feb 2015 07:28:00 GMT",
            "Thu, 29 Feb 2023 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:00:00 GMT",
            "Wed, 21 Oct 2015 07:60:00 GMT",
            "Wed, 21 Oct 2015 7:28:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Xyz, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-2015 07:28:00 GMT",
            "Wed Oct 21 07:28:00 15",
        ] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn schedule_is_followed_then_exhausted() {
        let policy = RetryPolicy { schedule: [5, 300, 1800].map(secs).to_vec() };
        assert_eq!(policy.max_attempts(), 4);
        assert_eq!(policy.next_delay(1, None, 0.5), Some(secs(5)));
        assert_eq!(policy.next_delay(2, None, 0.5), Some(secs(300)));
        assert_eq!(policy.next_delay(3, None, 0.5), Some(secs(1800)));
        assert_eq!(policy.next_delay(4, None, 0.5), None);
        assert_eq!(policy.next_delay(u32::MAX, None, 0.5), None);
        assert_eq!(policy.next_delay(0, None, 0.5), Some(secs(5)));
        assert_eq!(RetryPolicy { schedule: vec![] }.next_delay(1, None, 0.5), None);
        assert_eq!(RetryPolicy::default().max_attempts(), 16);
    }

    #[test]
    fn jitter_spreads_twenty_percent_either_way() {
        let policy = RetryPolicy { schedule: vec![secs(100)] };
        assert_eq!(policy.next_delay(1, None, 0.0), Some(secs(80)));
        assert_eq!(policy.next_delay(1, None, 0.25), Some(secs(90)));
        let top = policy.next_delay(1, None, 0.999_999).unwrap();
        assert!(top < secs(120) && top > Duration::from_millis(119_999), "{top:?}");
        assert_eq!(policy.next_delay(1, None, -3.0), Some(secs(80)));
        assert_eq!(policy.next_delay(1, None, f64::NAN), Some(secs(100)));
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(samples.iter().any(|j| *j < 0.5) && samples.iter().any(|j| *j >= 0.5));
    }

    #[test]
    fn retry_after_wins_only_when_longer() {
        let policy = RetryPolicy { schedule: vec![secs(100)] };
        assert_eq!(policy.next_delay(1, Some(secs(600)), 0.5), Some(secs(600)));
        assert_eq!(policy.next_delay(1, Some(secs(10)), 0.5), Some(secs(100)));
        assert_eq!(policy.next_delay(2, Some(secs(600)), 0.5), None);
    }
}
