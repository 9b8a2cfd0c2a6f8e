//! API keys: an organisation's own (list, new, revoke) and, with the admin token, any
//! organisation's. Keys are stored as hashes: a key is shown only in the answer that made
//! it. A revoked key, and every dashboard session made with it, stops working on this node
//! at once and on every other node within a second (their key caches live shorter).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::api::auth::{AdminAuth, OrgAuth};
use crate::api::pagination::{PageRequest, page};
use crate::error::ApiError;
use crate::ids::now_ms;
use crate::state::AppState;
use crate::store::api_keys::{self, ApiKey, IssuedKey};
use crate::store::orgs;
use crate::timefmt::{rfc3339, rfc3339_opt};

#[derive(Serialize)]
pub struct KeyView {
    id: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            prefix: k.prefix,
            created_at: rfc3339(k.created_at),
            last_used_at: rfc3339_opt(k.last_used_at),
        }
    }
}

/// A key just made: the only answer that shows the key itself.
#[derive(Serialize)]
pub struct NewKeyView {
    pub id: String,
    pub key: String,
    pub prefix: String,
    pub org_id: String,
    pub created_at: String,
}

impl From<IssuedKey> for NewKeyView {
    fn from(issued: IssuedKey) -> Self {
        let row = issued.row;
        Self {
            id: row.id,
            key: issued.key,
            prefix: row.prefix,
            org_id: row.org_id,
            created_at: rfc3339(row.created_at),
        }
    }
}

async fn list_page(
    state: &AppState,
    org_id: String,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(query)?;
    let (after, fetch) = (req.after.clone(), req.fetch());
    let range = super::list_filters::time_range(query)?;
    let rows =
        state.db.run(move |conn| api_keys::list(conn, &org_id, range, after.as_deref(), fetch)).await?;
    Ok(HttpResponse::Ok().json(page(rows, &req, |k| k.id.clone(), KeyView::from)))
}

async fn revoke_key(state: &AppState, org_id: String, id: String) -> Result<HttpResponse, ApiError> {
    let key_id = id.clone();
    let revoked = state.db.run(move |conn| api_keys::revoke(conn, &org_id, &id, now_ms())).await?;
    if !revoked {
        return Err(ApiError::not_found("API key"));
    }
    state.keys.forget_key(&key_id);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    list_page(&state, auth.org_id, &query).await
}

pub async fn create(auth: OrgAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let created = state.db.run(move |conn| api_keys::issue(conn, &auth.org_id)).await?;
    Ok(HttpResponse::Created().json(NewKeyView::from(created)))
}

pub async fn revoke(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    revoke_key(&state, auth.org_id, path.into_inner()).await
}

pub async fn admin_list(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let org_id = path.into_inner();
    let lookup = org_id.clone();
    state
        .db
        .run(move |conn| orgs::find(conn, &lookup))
        .await?
        .ok_or_else(|| ApiError::not_found("Organisation"))?;
    list_page(&state, org_id, &query).await
}

pub async fn admin_revoke(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    revoke_key(&state, org_id, id).await
}
