//! The filters lists share: `from`/`to` on every list whose rows have a time, `status` on
//! delivery lists and `outcome` on receipts (each may name several, comma-separated).

use std::collections::HashMap;

use crate::domain::DeliveryStatus;
use crate::error::ApiError;
use crate::store::TimeRange;
use crate::store::sources::Outcome;

const DAY_MS: i64 = 86_400_000;

/// `from` and `to`: RFC 3339 times or dates, both inclusive (a date as `to` takes in its
/// whole day, so `from=2025-01-01&to=2025-12-31` is the year).
pub fn time_range(query: &HashMap<String, String>) -> Result<TimeRange, ApiError> {
    let raw = |field: &str| query.get(field).map(String::as_str).filter(|v| !v.is_empty());
    let from = super::time_field("from", raw("from"))?;
    let to = super::time_field("to", raw("to"))?
        .map(|t| if raw("to").is_some_and(is_date) { t + DAY_MS - 1 } else { t });
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::invalid_field(&["from"], "must not be after to"));
    }
    Ok(TimeRange { from, to })
}

fn is_date(value: &str) -> bool {
    value.len() == 10 && !value.contains(['T', 't', ' '])
}

/// `status=pending,failed`: the delivery statuses to show (all when absent).
pub fn delivery_statuses(query: &HashMap<String, String>) -> Result<Vec<DeliveryStatus>, ApiError> {
    list_of(query, "status", DeliveryStatus::parse, "pending, succeeded, failed or dead")
}

/// `outcome=accepted,duplicate`: the receipt outcomes to show (all when absent).
pub fn receipt_outcomes(query: &HashMap<String, String>) -> Result<Vec<Outcome>, ApiError> {
    let parse = |s: &str| match s {
        "accepted" => Some(Outcome::Accepted),
        "duplicate" => Some(Outcome::Duplicate),
        "rejected" => Some(Outcome::Rejected),
        _ => None,
    };
    list_of(query, "outcome", parse, "accepted, duplicate or rejected")
}

fn list_of<T>(
    query: &HashMap<String, String>,
    field: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Vec<T>, ApiError> {
    let Some(value) = query.get(field) else { return Ok(Vec::new()) };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| {
                ApiError::invalid_field(&[field], format!("{s:?} is not one of {allowed} (comma-separated)"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_date_as_to_takes_in_its_whole_day() {
        let r = time_range(&query(&[("from", "2025-01-01"), ("to", "2025-12-31")])).unwrap();
        assert_eq!(r.from, Some(1_735_689_600_000));
        assert_eq!(r.to, Some(1_767_225_599_999));
        let exact = time_range(&query(&[("to", "2025-12-31T00:00:00Z")])).unwrap();
        assert_eq!(exact.to, Some(1_767_139_200_000));
        assert!(time_range(&query(&[("from", "2025-02-01"), ("to", "2025-01-01")])).is_err());
        assert!(time_range(&query(&[("from", "soon")])).is_err());
    }

    #[test]
    fn several_statuses_and_outcomes() {
        assert_eq!(
            delivery_statuses(&query(&[("status", "pending, dead")])).unwrap(),
            [DeliveryStatus::Pending, DeliveryStatus::Dead]
        );
        assert!(delivery_statuses(&query(&[("status", "pending,lost")])).is_err());
        assert!(delivery_statuses(&query(&[])).unwrap().is_empty());
        assert_eq!(
            receipt_outcomes(&query(&[("outcome", "rejected,accepted")])).unwrap(),
            [Outcome::Rejected, Outcome::Accepted]
        );
    }
}
