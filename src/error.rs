//! Error policy.
//!
//! - `ApiError` is the only error a request handler or extractor returns. It renders as the
//!   JSON of DESIGN section 4 (`code`, `message`, `issues`) with its status. Internal causes
//!   are logged with the request id and never reach the client.
//! - Store functions return `store::StoreError`, which knows nothing of HTTP. It becomes an
//!   `ApiError` in one place (`From<StoreError>` below), so a handler can use `?` across the
//!   store boundary: a missing row is `NOT_FOUND`, a lost race or a taken name `CONFLICT`, a
//!   reached quota `FORBIDDEN`, a lost database `UNAVAILABLE`, anything else
//!   `INTERNAL_ERROR`. Actors and start-up code read `StoreError` as it is.
//! - Start-up and CLI code return `String` messages that name the setting or step that failed.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Issue {
    pub path: Vec<serde_json::Value>,
    pub message: String,
}

impl Issue {
    pub fn at(path: &[&str], message: impl Into<String>) -> Self {
        Self { path: path.iter().map(|p| serde_json::Value::from(*p)).collect(), message: message.into() }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub issues: Vec<Issue>,
    /// Seconds for `Retry-After` (rate limits, unavailability).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[Issue]>::is_empty")]
    issues: &'a [Issue],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), issues: Vec::new(), retry_after: None }
    }

    pub fn validation(message: impl Into<String>, issues: Vec<Issue>) -> Self {
        Self { issues, ..Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message) }
    }

    /// A single-field validation failure.
    pub fn invalid_field(path: &[&str], message: impl Into<String>) -> Self {
        let message = message.into();
        Self::validation("Invalid payload", vec![Issue::at(path, message)])
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("Request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "Method not allowed on this route")
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Rate limit exceeded; retry later")
        }
    }

    /// A 429 that says which limit was reached.
    pub fn rate_limited_because(message: impl Into<String>, retry_after: u64) -> Self {
        Self { message: message.into(), ..Self::rate_limited(retry_after) }
    }

    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "The database is unavailable; retry")
        }
    }

    /// The cause is logged here; the client sees only a generic message.
    pub fn internal(cause: impl fmt::Display) -> Self {
        log::error!("internal error: {cause}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Internal error; see the server log")
    }

    pub fn body_json(&self) -> String {
        serde_json::to_string(&ErrorBody { code: self.code, message: &self.message, issues: &self.issues })
            .unwrap_or_else(|_| r#"{"code":"INTERNAL_ERROR","message":"Internal error"}"#.to_string())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(self.body_json())
    }
}

/// The one place where a store failure becomes an HTTP answer.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::QuotaReached(message) => ApiError::forbidden(message),
            StoreError::Unavailable => ApiError::unavailable(),
            StoreError::Other(detail) => ApiError::internal(detail),
        }
    }
}
