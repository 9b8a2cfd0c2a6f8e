//! Cursor pagination, one piece of code for every list: `?limit=` (1–250, default 50) and
//! an opaque `?cursor=`; answers `{"data": [...], "next_cursor": ... | null}`.

use std::collections::HashMap;

use base64::Engine;
use serde::Serialize;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 250;

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    /// The sort key of the last row of the previous page, decoded.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid_field(
                        &["limit"],
                        format!("must be a number from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        let after = match query.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                decode_cursor(c)
                    .ok_or_else(|| ApiError::invalid_field(&["cursor"], "not a cursor from this API"))?,
            ),
        };
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another page exists.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Turns `fetch()` rows into a page; `key` gives the sort key the store filters on.
pub fn page<R, T>(
    mut rows: Vec<R>,
    req: &PageRequest,
    key: impl Fn(&R) -> String,
    render: impl FnMut(R) -> T,
) -> Page<T> {
    let more = rows.len() as i64 > req.limit;
    rows.truncate(req.limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&key(r))) } else { None };
    Page { data: rows.into_iter().map(render).collect(), next_cursor }
}

fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Any base64url text is a position: what it decodes to is compared with the list's sort
/// keys, so a made-up cursor gives a page (perhaps empty), never an error.
fn decode_cursor(cursor: &str) -> Option<String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = LENIENT.decode(cursor).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(PageRequest::from_query(&query(&[])).unwrap().limit, 50);
        assert!(PageRequest::from_query(&query(&[("limit", "0")])).is_err());
        assert!(PageRequest::from_query(&query(&[("limit", "251")])).is_err());
        assert!(PageRequest::from_query(&query(&[("limit", "x")])).is_err());
    }

    #[test]
    fn next_cursor_only_when_more_rows() {
        let req = PageRequest::from_query(&query(&[("limit", "2")])).unwrap();
        let p = page(vec!["c", "b", "a"], &req, std::string::ToString::to_string, |s| s);
        assert_eq!(p.data, vec!["c", "b"]);
        let next = PageRequest::from_query(&query(&[("cursor", p.next_cursor.as_deref().unwrap())])).unwrap();
        assert_eq!(next.after.as_deref(), Some("b"));
        let last = page(vec!["a"], &req, std::string::ToString::to_string, |s| s);
        assert!(last.next_cursor.is_none());
    }
}
