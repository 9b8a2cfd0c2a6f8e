//! The outermost layer every request passes: gives it a request id (echoed as
//! `X-Request-Id` and carried by its log line), makes sure every error answer is the error
//! JSON, and adds the rate-limit headers once the caller is known. Inside it,
//! actix-web-lab's `CatchPanic` turns a panic in a handler into a 500 while the process
//! keeps serving, and its `PanicReporter` logs the cause (`panic_layers`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use crate::api::auth::rate_limit_headers;
use crate::api::rate_limit::RateStatus;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

fn new_request_id() -> String {
    // Unique per process run without a random call per request: start time + counter.
    static START: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| crate::ids::ulid_at(crate::ids::now_ms())[..10].to_lowercase());
    format!("req_{start}{:08x}", REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn outer<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_string);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // No clone of the HttpRequest may live across the call: routing needs it unshared.
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let path = req.path().to_string();

    let outcome = next.call(req).await;
    let finish = |status: StatusCode| {
        if let Some(state) = &state {
            state.metrics.record_status(status.as_u16());
        }
        log::info!(
            "request_id={request_id} {method} {path} {} {:.1}ms",
            status.as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    };
    let failure = match outcome {
        Ok(res) => {
            let mut res = res.map_into_boxed_body();
            if res.status().as_u16() >= 400 && !is_json(res.headers()) {
                res = normalize_error(res);
            }
            let rate = res.request().extensions().get::<RateStatus>().copied();
            set_headers(res.headers_mut(), &request_id, rate.as_ref());
            finish(res.status());
            return Ok(res);
        }
        // A panic caught by `CatchPanic` arrives as a plain 500, answered below.
        Err(err) => err.error_response(),
    };
    // Errors that escaped the handlers: answered with a response built here, headers included.
    let mut response = if is_json(failure.headers()) {
        failure
    } else {
        error_for_status(failure.status()).error_response()
    };
    set_headers(response.headers_mut(), &request_id, None);
    finish(response.status());
    Err(InternalError::from_response("request failed", response).into())
}

/// Logs a handler's panic (its request's line follows, with its request id); the panic then
/// reaches `CatchPanic`, which answers 500.
pub fn panic_reporter() -> actix_web_lab::middleware::PanicReporter {
    actix_web_lab::middleware::PanicReporter::new(|panic| {
        let cause = panic
            .downcast_ref::<&str>()
            .map(std::string::ToString::to_string)
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        log::error!("a handler panicked: {cause}");
    })
}

fn set_headers(headers: &mut HeaderMap, request_id: &str, rate: Option<&RateStatus>) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    if let Some(rate) = rate {
        for (name, value) in rate_limit_headers(rate) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// An error answer made by actix itself (a bad path parameter, a malformed request) is
/// given the error JSON of its status, keeping its other headers.
fn normalize_error(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let err = error_for_status(status);
    let (req, mut response) = res.into_parts();
    let mut fresh = err.error_response();
    for (name, value) in response.headers_mut().drain() {
        if let Some(name) = name
            && name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
        {
            fresh.headers_mut().insert(name, value);
        }
    }
    ServiceResponse::new(req, fresh)
}

pub fn error_for_status(status: StatusCode) -> ApiError {
    match status.as_u16() {
        401 => ApiError::unauthorized("Unauthorized"),
        403 => ApiError::forbidden("Forbidden"),
        404 => ApiError::not_found("Route"),
        405 => ApiError::method_not_allowed(),
        409 => ApiError::conflict("Conflict"),
        413 => ApiError::new(status, "PAYLOAD_TOO_LARGE", "Request body is too large"),
        415 => ApiError::unsupported_media_type(),
        429 => ApiError::new(status, "RATE_LIMITED", "Rate limit exceeded"),
        503 => ApiError::unavailable(),
        500..=599 => ApiError::new(status, "INTERNAL_ERROR", "Internal error; see the server log"),
        _ => ApiError::new(status, "VALIDATION_ERROR", "Bad request"),
    }
}
