//! Organisations and API keys, managed with the admin token.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::auth::AdminAuth;
use crate::api::json::Json;
use crate::error::ApiError;
use crate::ids::{new_id, now_ms};
use crate::state::AppState;
use crate::store::orgs::{self, Org};
use crate::store::{DbConn, api_keys};
use crate::timefmt::rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    name: String,
    rate_limit_per_minute: Option<u32>,
}

#[derive(Serialize)]
pub struct OrgView {
    id: String,
    name: String,
    rate_limit_per_minute: i32,
    created_at: String,
}

impl From<Org> for OrgView {
    fn from(o: Org) -> Self {
        Self {
            id: o.id,
            name: o.name,
            rate_limit_per_minute: o.rate_limit_per_minute,
            created_at: rfc3339(o.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct NewKeyView {
    pub id: String,
    pub key: String,
    pub prefix: String,
    pub org_id: String,
    pub created_at: String,
}

pub async fn create_org(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: Json<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(&["name"], "must be 1 to 100 characters"));
    }
    let limit = body.rate_limit_per_minute.unwrap_or(state.settings.limits.rate_limit_per_minute);
    if limit == 0 || limit > i32::MAX as u32 {
        return Err(ApiError::invalid_field(&["rate_limit_per_minute"], "must be a positive number"));
    }
    let org = Org { id: new_id("org"), name, rate_limit_per_minute: limit as i32, created_at: now_ms() };
    let view = OrgView::from(org.clone());
    state.db.run(move |conn| orgs::insert(conn, &org)).await?;
    Ok(HttpResponse::Created().json(view))
}

pub async fn create_api_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let org_id = path.into_inner();
    let created = state
        .db
        .run(move |conn| {
            orgs::find(conn, &org_id)?.ok_or_else(|| ApiError::not_found("Organisation"))?;
            issue_key(conn, &org_id)
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Makes a new key for an organisation. Only its hash is stored; the key is in the answer.
pub fn issue_key(conn: &mut DbConn, org_id: &str) -> Result<NewKeyView, ApiError> {
    let key = format!("hk_{}", crate::ids::url_safe_token(&crate::ids::random::<32>()));
    let prefix = key[..11].to_string();
    let now = now_ms();
    let row = api_keys::ApiKey {
        id: new_id("key"),
        org_id: org_id.to_string(),
        prefix: prefix.clone(),
        key_hash: crate::ids::sha256_hex(key.as_bytes()),
        created_at: now,
        revoked_at: None,
    };
    api_keys::insert(conn, &row)?;
    Ok(NewKeyView { id: row.id, key, prefix, org_id: org_id.to_string(), created_at: rfc3339(now) })
}
