//! The JSON body extractor every handler uses: checks the content type, enforces the body
//! limit (413 before reading past it), and reports wrong fields with their exact path.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Issue};
use crate::state::AppState;

pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit =
            req.app_data::<web::Data<AppState>>().map_or(256 * 1024, |s| s.settings.limits.max_body_bytes);
        let content_type_ok = is_json_content_type(req);
        let payload = payload.take();
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::unsupported_media_type());
            }
            let body = read_body(payload, limit, declared_len).await?;
            parse_json(&body).map(Json)
        })
    }
}

pub fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads a request body, refusing it as soon as it passes `limit`.
pub async fn read_body(
    mut payload: Payload,
    limit: usize,
    declared_len: Option<usize>,
) -> Result<web::Bytes, ApiError> {
    if declared_len.is_some_and(|n| n > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared_len.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid_field(&[], format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path: Vec<serde_json::Value> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(serde_json::Value::from(*index)),
                serde_path_to_error::Segment::Map { key } => Some(serde_json::Value::from(key.as_str())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(serde_json::Value::from(variant.as_str()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("Body is not valid JSON: {inner}")
        } else {
            strip_position(&inner.to_string())
        };
        let summary = if inner.is_syntax() || inner.is_eof() { "Malformed JSON" } else { "Invalid payload" };
        ApiError::validation(summary, vec![Issue { path, message }])
    })
}

/// serde_json appends " at line 1 column 17"; the path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A whole number given as `10` or `10.0`: JSON Schema, and so herald's OpenAPI description,
/// counts both as integers. For the optional counts of request bodies
/// (`#[serde(default, deserialize_with = "whole_u32")]`).
pub fn whole_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    whole_number(&n).and_then(|w| u32::try_from(w).ok()).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid value: {n}, expected a whole number from 0 to {}",
            u32::MAX
        ))
    })
}

/// `n` as a whole number, when it is one (`7` or `7.0`, not `7.5` or `-7`).
pub fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f)).map(|f| f as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        counts: Vec<u32>,
    }

    #[test]
    fn wrong_type_reports_its_path() {
        let err = parse_json::<Probe>(br#"{"name":"a","inner":{"counts":[1,"x"]}}"#).unwrap_err();
        assert_eq!(err.code, "VALIDATION_ERROR");
        assert_eq!(
            err.issues[0].path,
            vec![serde_json::json!("inner"), serde_json::json!("counts"), serde_json::json!(1)]
        );
    }

    #[test]
    fn malformed_json_is_a_validation_error() {
        let err = parse_json::<Probe>(b"{nope").unwrap_err();
        assert_eq!(err.message, "Malformed JSON");
    }
}
