//! What a call can fail with.

use std::fmt;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use serde::Deserialize;

/// A failed call. [`Error::is_retriable`] tells whether trying again later may help; the
/// client has already retried those as often as it was configured to.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Error {
    /// herald answered with its error JSON (`{"code", "message", "issues"}`).
    Api(ApiError),
    /// The client's circuit breaker is open after repeated failures: no request was sent.
    CircuitOpen {
        /// When the breaker lets one probe request through.
        retry_in: Duration,
    },
    /// No answer within the request's timeout.
    Timeout,
    /// The connection failed (refused, reset, DNS, TLS).
    Connect(String),
    /// herald answered something that is not what the route documents.
    Decode(String),
}

/// herald's error JSON, with the HTTP status and request id it came with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// `VALIDATION_ERROR`, `UNAUTHORIZED`, `NOT_FOUND`, `CONFLICT`, `RATE_LIMITED`, …
    pub code: String,
    /// A human-readable description.
    pub message: String,
    /// Where the request was wrong, for `VALIDATION_ERROR` (and a few others).
    #[serde(default)]
    pub issues: Vec<Issue>,
    /// The `X-Request-Id` of the answer, which herald's log line for the request carries.
    #[serde(skip)]
    pub request_id: Option<String>,
}

/// One problem in a request: where (`path`) and what.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Issue {
    /// The path to the offending value: field names and array indexes.
    #[serde(default)]
    pub path: Vec<PathSegment>,
    /// What is wrong there.
    pub message: String,
}

/// One step of an [`Issue`]'s path.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum PathSegment {
    /// A field name.
    Key(String),
    /// An array index.
    Index(u64),
}

impl Error {
    /// Whether the same request may succeed later: connection failures, timeouts, `429`,
    /// `5xx` and an open circuit. Other `4xx` answers will not change by repeating them.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Api(e) => e.status == 429 || e.status >= 500,
            Error::CircuitOpen { .. } | Error::Timeout | Error::Connect(_) => true,
            Error::Decode(_) => false,
        }
    }

    /// The HTTP status of an [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// The error code of an [`Error::Api`] (`"NOT_FOUND"`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

impl ApiError {
    /// Reads an error answer (its status, `X-Request-Id` and body). A body that is not
    /// herald's error JSON (a proxy's HTML page, say) still becomes an `ApiError`, with a
    /// code made from the status.
    pub(crate) fn from_answer(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
        let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut error = serde_json::from_slice::<ApiError>(body).unwrap_or_else(|_| ApiError {
            status,
            code: match status {
                429 => "RATE_LIMITED",
                502..=504 => "UNAVAILABLE",
                s if s >= 500 => "INTERNAL_ERROR",
                _ => "HTTP_ERROR",
            }
            .to_string(),
            message: format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
            issues: Vec::new(),
            request_id: None,
        });
        error.status = status;
        error.request_id = request_id;
        error
    }
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Key(k) => f.write_str(k),
            PathSegment::Index(i) => write!(f, "{i}"),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path: Vec<String> = self.path.iter().map(ToString::to_string).collect();
        if path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", path.join("."), self.message)
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        for issue in &self.issues {
            write!(f, "; {issue}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(e) => e.fmt(f),
            Error::CircuitOpen { retry_in } => {
                write!(f, "circuit open after repeated failures; next try in {} ms", retry_in.as_millis())
            }
            Error::Timeout => f.write_str("no answer within the timeout"),
            Error::Connect(e) => write!(f, "connection failed: {e}"),
            Error::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_error_json_and_anything_else() {
        let body = br#"{"code":"VALIDATION_ERROR","message":"Invalid payload","issues":[{"path":["items",2,"sku"],"message":"required"}]}"#;
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id".parse().unwrap(), "req_1".parse().unwrap());
        let e = ApiError::from_answer(400, &headers, body);
        assert_eq!(e.code, "VALIDATION_ERROR");
        assert_eq!(
            e.issues[0].path,
            vec![PathSegment::Key("items".into()), PathSegment::Index(2), PathSegment::Key("sku".into())]
        );
        assert_eq!(e.to_string(), "400 VALIDATION_ERROR: Invalid payload; items.2.sku: required");
        assert_eq!(e.request_id.as_deref(), Some("req_1"));

        let e = ApiError::from_answer(502, &HeaderMap::new(), b"<html>bad gateway</html>");
        assert_eq!((e.status, e.code.as_str()), (502, "UNAVAILABLE"));
        assert!(Error::Api(e).is_retriable());
        assert!(!Error::Api(ApiError::from_answer(404, &HeaderMap::new(), b"")).is_retriable());
    }
}
