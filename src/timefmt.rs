//! Times are unix milliseconds inside herald and RFC 3339 UTC strings in JSON.

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

/// Accepts an RFC 3339 time or a plain date (`2026-11-23`, meaning its midnight UTC).
/// A duration as people read it, in its two largest units: `9d 4h`, `2h 5m`, `40ms`.
pub fn human_duration(d: std::time::Duration) -> String {
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

    #[test]
    fn durations_read_in_their_two_largest_units() {
        use std::time::Duration;
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
