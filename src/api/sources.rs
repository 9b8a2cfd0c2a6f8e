//! Inbound sources: where providers send their webhooks, and the receipts of what came.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::auth::OrgAuth;
use crate::api::json::Json;
use crate::api::pagination::{PageRequest, page};
use crate::delivery::signing::ROTATION_GRACE_MS;
use crate::delivery::type_patterns::validate_type_name;
use crate::domain::SourceKind;
use crate::error::ApiError;
use crate::ids::{new_id, now_ms};
use crate::secrets::Purpose;
use crate::state::AppState;
use crate::store::sources::{self, Receipt, Source};
use crate::timefmt::{rfc3339, rfc3339_opt};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    name: String,
    kind: String,
    secret: String,
    event_type_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSourceSecret {
    secret: String,
}

#[derive(Serialize)]
struct SourceView {
    id: String,
    name: String,
    kind: SourceKind,
    event_type_prefix: String,
    ingest_path: String,
    created_at: String,
    previous_secret_expires_at: Option<String>,
}

impl From<&Source> for SourceView {
    fn from(s: &Source) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind,
            event_type_prefix: s.event_type_prefix.clone(),
            ingest_path: format!("/v1/inbound/{}", s.id),
            created_at: rfc3339(s.created_at),
            previous_secret_expires_at: rfc3339_opt(s.previous_secret_expires_at.filter(|t| *t > now_ms())),
        }
    }
}

fn receipt_view(r: Receipt) -> serde_json::Value {
    json!({
        "id": r.id,
        "received_at": rfc3339(r.received_at),
        "provider_event_id": r.provider_event_id,
        "verified": r.verified,
        "duplicate": r.duplicate,
        "error": r.error,
        "event_id": r.event_id,
    })
}

fn check_secret(secret: &str) -> Result<(), ApiError> {
    if !(8..=512).contains(&secret.chars().count()) || secret.chars().any(|c| c.is_ascii_control()) {
        return Err(ApiError::invalid_field(&["secret"], "must be 8 to 512 characters"));
    }
    Ok(())
}

pub async fn create(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Json<CreateSource>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let Some(kind) = SourceKind::parse(&b.kind) else {
        let kinds: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(ApiError::invalid_field(&["kind"], format!("must be one of {}", kinds.join(", "))));
    };
    if b.name.trim().is_empty() || b.name.len() > 100 || b.name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(&["name"], "must be 1 to 100 characters"));
    }
    check_secret(&b.secret)?;
    // Stripe and GitHub events get their provider's name in front unless told otherwise.
    let prefix = b.event_type_prefix.unwrap_or_else(|| match kind {
        SourceKind::Stripe | SourceKind::Github => format!("{kind}."),
        SourceKind::StandardWebhooks | SourceKind::HmacSha256 => String::new(),
    });
    let probe = format!("{prefix}x");
    if !prefix.is_empty() && validate_type_name(&probe).is_err() {
        return Err(ApiError::invalid_field(
            &["event_type_prefix"],
            "must be dot-separated segments ending in '.', like stripe.",
        ));
    }
    let source = Source {
        id: new_id("src"),
        org_id: auth.org_id,
        name: b.name.trim().to_string(),
        kind,
        secret: state.engine.ctx.cipher.seal(Purpose::SourceSecret, &b.secret),
        previous_secret: None,
        previous_secret_expires_at: None,
        event_type_prefix: prefix,
        created_at: now_ms(),
        deleted_at: None,
    };
    let view = SourceView::from(&source);
    state.db.run(move |conn| sources::insert(conn, &source)).await?;
    Ok(HttpResponse::Created().json(view))
}

pub async fn list(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(&query)?;
    let (after, fetch) = (req.after.clone(), req.fetch());
    let range = super::list_filters::time_range(&query)?;
    let rows =
        state.db.run(move |conn| sources::list(conn, &auth.org_id, range, after.as_deref(), fetch)).await?;
    Ok(HttpResponse::Ok().json(page(rows, &req, |s| s.id.clone(), |s| SourceView::from(&s))))
}

pub async fn get(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let source = state.db.run(move |conn| sources::find(conn, &auth.org_id, &id)).await?;
    Ok(HttpResponse::Ok().json(SourceView::from(&source)))
}

pub async fn delete(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let deleted = state.db.run(move |conn| sources::soft_delete(conn, &auth.org_id, &id, now_ms())).await?;
    if !deleted {
        return Err(ApiError::not_found("Source"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The provider issued a new secret: herald accepts both for 24 hours.
pub async fn rotate_secret(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<RotateSourceSecret>,
) -> Result<HttpResponse, ApiError> {
    let secret = body.0.secret;
    check_secret(&secret)?;
    let secret = state.engine.ctx.cipher.seal(Purpose::SourceSecret, &secret);
    let id = path.into_inner();
    let source = state
        .db
        .run(move |conn| {
            sources::rotate_secret(conn, &auth.org_id, &id, &secret, now_ms() + ROTATION_GRACE_MS)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SourceView::from(&source)))
}

pub async fn receipts(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(&query)?;
    let filter = sources::ReceiptFilter {
        outcomes: super::list_filters::receipt_outcomes(&query)?,
        range: super::list_filters::time_range(&query)?,
    };
    let id = path.into_inner();
    let (after, fetch) = (req.after.clone(), req.fetch());
    let rows = state
        .db
        .run(move |conn| {
            let source = sources::find(conn, &auth.org_id, &id)?;
            sources::receipts(conn, &source.id, &filter, after.as_deref(), fetch)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page(rows, &req, |r| r.id.clone(), receipt_view)))
}
