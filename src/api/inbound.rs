//! `POST /v1/inbound/{source_id}`: a provider's webhook. Verified on the raw bytes with the
//! source's scheme, recorded as a receipt whatever happens, then stored as an event once
//! per provider event id (through the Inbound actor) before the answer.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::actors::inbound::Ingest;
use crate::api::json::read_body;
use crate::delivery::signing::{
    VerifyError, verify_github, verify_hmac_sha256, verify_standard_webhooks, verify_stripe,
};
use crate::domain::SourceKind;
use crate::error::ApiError;
use crate::ids::{new_id, now_ms};
use crate::secrets::{Cipher, Purpose};
use crate::state::AppState;
use crate::store::events::NewEvent;
use crate::store::sources::{self, Receipt, Source};

fn header_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn verify(
    source: &Source,
    cipher: &Cipher,
    req: &HttpRequest,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), VerifyError> {
    let opened: Vec<String> = source
        .secrets(now)
        .into_iter()
        .filter_map(|stored| match cipher.reveal(Purpose::SourceSecret, stored) {
            Ok(secret) => Some(secret),
            Err(e) => {
                log::error!("source {}: {e}", source.id);
                None
            }
        })
        .collect();
    let secrets: Vec<&str> = opened.iter().map(String::as_str).collect();
    let h = |name| header_value(req, name);
    let now_s = now / 1000;
    match source.kind {
        SourceKind::Stripe => verify_stripe(&secrets, h("stripe-signature"), body, now_s, tolerance),
        SourceKind::Github => verify_github(&secrets, h("x-hub-signature-256"), body),
        SourceKind::StandardWebhooks => verify_standard_webhooks(
            &secrets,
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            body,
            now_s,
            tolerance,
        ),
        SourceKind::HmacSha256 => verify_hmac_sha256(
            &secrets,
            h("x-webhook-id"),
            h("x-webhook-timestamp"),
            h("x-webhook-signature"),
            body,
            now_s,
            tolerance,
        ),
    }
}

/// The provider's own id for the event, which duplicates share.
fn provider_event_id(source: &Source, req: &HttpRequest, json: &Value) -> Option<String> {
    let id = match source.kind {
        SourceKind::Stripe => json.get("id").and_then(Value::as_str),
        SourceKind::Github => header_value(req, "x-github-delivery"),
        SourceKind::StandardWebhooks => header_value(req, "webhook-id"),
        SourceKind::HmacSha256 => header_value(req, "x-webhook-id"),
    };
    id.map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control))
        .map(str::to_string)
}

/// The provider's name for what happened (`payment_intent.succeeded`, `pull_request.opened`).
fn provider_type(source: &Source, req: &HttpRequest, json: &Value) -> String {
    let body_type = json.get("type").and_then(Value::as_str);
    match source.kind {
        SourceKind::Github => {
            let event = header_value(req, "x-github-event").unwrap_or("event");
            match json.get("action").and_then(Value::as_str) {
                Some(action) => format!("{event}.{action}"),
                None => event.to_string(),
            }
        }
        SourceKind::HmacSha256 => {
            body_type.or(header_value(req, "x-webhook-event")).unwrap_or("event").to_string()
        }
        SourceKind::Stripe | SourceKind::StandardWebhooks => body_type.unwrap_or("event").to_string(),
    }
}

/// Makes a provider's type name a valid herald type: other characters become `_`.
fn event_type_name(prefix: &str, provider_type: &str) -> String {
    let cleaned: Vec<String> = format!("{prefix}{provider_type}")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|seg| {
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
                .collect()
        })
        .collect();
    let mut name = cleaned.join(".");
    name.truncate(crate::delivery::type_patterns::MAX_TYPE_LEN);
    name.trim_end_matches('.').to_string()
}

pub async fn ingest(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let source = live_source(&state, path.into_inner()).await?;
    let now = now_ms();
    let mut receipt = Receipt {
        id: new_id("rcp"),
        source_id: source.id.clone(),
        org_id: source.org_id.clone(),
        received_at: now,
        provider_event_id: None,
        verified: false,
        duplicate: false,
        error: None,
        event_id: None,
    };
    let limit = state.settings.limits.max_body_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let body = match read_body(payload.into_inner(), limit, declared).await {
        Ok(b) => b,
        Err(e) => return reject(&state, receipt, e).await,
    };
    let tolerance = state.settings.inbound.tolerance.as_secs() as i64;
    if let Err(e) = verify(&source, &state.engine.ctx.cipher, &req, &body, now, tolerance) {
        receipt.provider_event_id = provider_event_id(&source, &req, &Value::Null);
        let err = ApiError::unauthorized(format!("Signature verification failed: {e}"));
        return reject(&state, receipt, err).await;
    }
    receipt.verified = true;
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return reject(&state, receipt, ApiError::invalid_field(&[], "the body is not JSON")).await,
    };
    let Some(provider_id) = provider_event_id(&source, &req, &json) else {
        let err = ApiError::invalid_field(&[], format!("no provider event id for a {} source", source.kind));
        return reject(&state, receipt, err).await;
    };
    receipt.provider_event_id = Some(provider_id.clone());
    let event = new_event(&source, &req, &json, provider_id, now);
    let answer = state
        .inbound
        .send(Ingest { receipt, event })
        .await
        .map_err(|e| ApiError::internal(format!("inbound actor unreachable: {e}")))??;
    Ok(HttpResponse::Ok()
        .json(json!({"received": true, "duplicate": answer.duplicate, "event_id": answer.event_id})))
}

/// The source a webhook is sent to, within its allowance: source ids are not secret, so
/// whoever sends, a source takes at most `inbound.rate_limit_per_minute`.
async fn live_source(state: &AppState, source_id: String) -> Result<Source, ApiError> {
    let source = state
        .db
        .run(move |conn| sources::find_live(conn, &source_id))
        .await?
        .ok_or_else(|| ApiError::not_found("Source"))?;
    let allowance =
        state.limiter.check(&format!("inbound#{}", source.id), state.settings.inbound.rate_limit_per_minute);
    if !allowance.allowed {
        state.metrics.inbound_rate_limited.inc();
        return Err(ApiError::rate_limited(allowance.retry_after_secs));
    }
    Ok(source)
}

/// The event a verified webhook becomes: its type named after the provider's, its data the
/// body (wrapped when it is not an object), its correlation id the provider's event id.
fn new_event(source: &Source, req: &HttpRequest, json: &Value, provider_id: String, now: i64) -> NewEvent {
    let data = if json.is_object() { json.clone() } else { json!({ "payload": json }) };
    NewEvent {
        id: new_id("evt"),
        org_id: source.org_id.clone(),
        event_type: event_type_name(&source.event_type_prefix, &provider_type(source, req, json)),
        payload: data.to_string(),
        correlation_id: Some(provider_id),
        source_id: Some(source.id.clone()),
        created_at: now,
        version: 1,
        latest_version: None,
    }
}

/// Records why a request was refused (up to `inbound.rejected_receipts_per_minute` per
/// source: unauthenticated senders must not grow the database; the rest are only counted),
/// then answers with that error.
async fn reject(state: &AppState, mut receipt: Receipt, err: ApiError) -> Result<HttpResponse, ApiError> {
    let per_minute = state.settings.inbound.rejected_receipts_per_minute;
    let keep =
        per_minute > 0 && state.limiter.check(&format!("rejected#{}", receipt.source_id), per_minute).allowed;
    if !keep {
        state.metrics.inbound_rejected_dropped.inc();
        return Err(err);
    }
    state.metrics.inbound_rejected_kept.inc();
    receipt.error = Some(err.message.clone());
    state.db.run(move |conn| sources::record_receipt(conn, &receipt)).await?;
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::event_type_name;

    #[test]
    fn provider_types_become_valid_names() {
        assert_eq!(event_type_name("stripe.", "payment_intent.succeeded"), "stripe.payment_intent.succeeded");
        assert_eq!(event_type_name("", "weird type/with:chars"), "weird_type_with_chars");
        assert_eq!(event_type_name("gh.", ".x..y."), "gh.x.y");
    }
}
