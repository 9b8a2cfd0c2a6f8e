//! Times are unix milliseconds inside herald and RFC 3339 UTC strings in JSON. Durations
//! are written as people write them (`10ms`, `5s`, `2h`, `30d`): read by humantime.

use std::time::Duration;

use humantime::DurationError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn rfc3339(ms: i64) -> String {
    let nanos = ms as i128 * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

pub fn rfc3339_opt(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}

/// A duration as people read it, in its two largest units: `9d 4h`, `2h 5m`, `40ms`.
/// humantime's `format_duration` would write `5days` and every unit down to nanoseconds;
/// these lines are read by people, and the settings they name are written `5d`.
pub fn human_duration(d: Duration) -> String {
    const UNITS: [(&str, u128); 5] =
        [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];
    let mut rest = d.as_millis();
    let parts: Vec<String> = UNITS
        .iter()
        .filter_map(|(name, size)| {
            let n = rest / size;
            rest %= size;
            (n > 0).then(|| format!("{n}{name}"))
        })
        .take(2)
        .collect();
    if parts.is_empty() { "0s".to_string() } else { parts.join(" ") }
}

/// A duration such as `10ms`, `5s`, `5m`, `2h` or `5d` (humantime's grammar, which also
/// takes `1h 30m`, `1.5s` and spelled-out units).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    humantime::parse_duration(t).map_err(|e| format!("invalid duration {t:?}: {}", explain(e)))
}

/// humantime's own messages list units herald does not document (months, years, µs) and
/// count positions in bytes; these name the units the settings use.
fn explain(e: DurationError) -> String {
    match e {
        DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            "missing unit (ms, s, m, h or d)".into()
        }
        DurationError::UnknownUnit { unit, .. } => format!("unknown unit {unit:?} (use ms, s, m, h or d)"),
        DurationError::NumberOverflow => "too large".into(),
        DurationError::Empty | DurationError::InvalidCharacter(_) | DurationError::NumberExpected(_) => {
            "expected a whole number followed by ms, s, m, h or d".into()
        }
    }
}

/// A comma-separated schedule such as `5s,5m,30m`; it must name at least one delay.
pub fn parse_duration_list(s: &str) -> Result<Vec<Duration>, String> {
    if s.trim().is_empty() {
        return Err("duration list is empty".to_owned());
    }
    s.split(',')
        .enumerate()
        .map(|(i, item)| {
            if item.trim().is_empty() {
                Err(format!("duration list has an empty entry at position {}", i + 1))
            } else {
                parse_duration(item)
            }
        })
        .collect()
}

/// Accepts an RFC 3339 time or a plain date (`2026-11-23`, meaning its midnight UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration(" 5s "), Ok(secs(5)));
        assert_eq!(parse_duration("5m"), Ok(secs(300)));
        assert_eq!(parse_duration("2h"), Ok(secs(7200)));
        assert_eq!(parse_duration("5d"), Ok(secs(5 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30 s"), Ok(secs(30)));
        // humantime's grammar is wider than the documented one: fractions, sums, words.
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h 30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("2 days"), Ok(secs(2 * 86_400)));
    }

    #[test]
    fn duration_errors_say_what_is_wrong() {
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse_duration("s").unwrap_err().contains("whole number"));
        assert!(parse_duration("").unwrap_err().contains("whole number"));
        assert!(parse_duration("-5s").unwrap_err().contains("whole number"));
        assert!(parse_duration("99999999999999999999s").unwrap_err().contains("too large"));
        assert!(parse_duration("999999999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn duration_lists() {
        assert_eq!(parse_duration_list("5s,5m,30m").unwrap(), [5, 300, 1800].map(secs));
        assert_eq!(parse_duration_list("10ms, 20ms").unwrap(), [10, 20].map(Duration::from_millis));
        assert_eq!(parse_duration_list("  ").unwrap_err(), "duration list is empty");
        assert!(parse_duration_list("5s,,5m").unwrap_err().contains("position 2"));
        assert!(parse_duration_list("5s,").unwrap_err().contains("position 2"));
        assert!(parse_duration_list("5s,5q").unwrap_err().contains("\"5q\""));
    }

    #[test]
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(human_duration(Duration::from_secs(14 * 86_400)), "14d");
        assert_eq!(human_duration(Duration::from_secs(9 * 86_400 + 4 * 3600 + 59)), "9d 4h");
        assert_eq!(human_duration(Duration::from_millis(40)), "40ms");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn round_trips() {
        let s = rfc3339(1_700_000_000_123);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_time(&s), Some(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14"), Some(1_699_920_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
