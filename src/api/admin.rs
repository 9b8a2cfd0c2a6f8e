//! Organisations and API keys, managed with the admin token.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::api_keys::NewKeyView;
use crate::api::auth::AdminAuth;
use crate::api::json::Json;
use crate::config::Settings;
use crate::error::ApiError;
use crate::ids::{new_id, now_ms};
use crate::state::AppState;
use crate::store::api_keys;
use crate::store::orgs::{self, Org, OrgChanges};
use crate::timefmt::{parse_duration, rfc3339};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    name: String,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    rate_limit_per_minute: Option<u32>,
}

#[derive(Serialize)]
pub struct OrgView {
    id: String,
    name: String,
    rate_limit_per_minute: i32,
    /// In force: the organisation's own, or the setting's.
    max_endpoints: u32,
    max_streams: u32,
    retention_events: String,
    created_at: String,
}

impl OrgView {
    fn new(o: Org, settings: &Settings) -> Self {
        Self {
            max_endpoints: orgs::quota(o.max_endpoints, settings.limits.max_endpoints),
            max_streams: orgs::quota(o.max_streams, settings.limits.max_streams),
            retention_events: show_duration(retention_events(&o, settings)),
            id: o.id,
            name: o.name,
            rate_limit_per_minute: o.rate_limit_per_minute,
            created_at: rfc3339(o.created_at),
        }
    }
}

/// How long the organisation's finished events are kept.
pub fn retention_events(o: &Org, settings: &Settings) -> Duration {
    o.retention_events_ms.map_or(settings.retention.events, |ms| Duration::from_millis(ms as u64))
}

/// A duration in the largest unit that divides it: "30d", "12h", "90s", "250ms".
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms > 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    rate_limit_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    max_endpoints: Option<u32>,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    max_streams: Option<u32>,
    retention_events: Option<String>,
}

/// A century: longer is a typo (and would not fit the arithmetic of a cut-off time).
const MAX_RETENTION: Duration = Duration::from_secs(36_500 * 86_400);

fn positive(value: Option<u32>, field: &str) -> Result<Option<i32>, ApiError> {
    match value {
        Some(n) if n == 0 || n > i32::MAX as u32 => {
            Err(ApiError::invalid_field(&[field], "must be a positive number"))
        }
        other => Ok(other.map(|n| n as i32)),
    }
}

pub async fn update_org(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<UpdateOrg>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let retention = match b.retention_events.as_deref() {
        None => None,
        Some(text) => {
            let d = parse_duration(text).map_err(|m| ApiError::invalid_field(&["retention_events"], m))?;
            if d < Duration::from_secs(1) || d > MAX_RETENTION {
                return Err(ApiError::invalid_field(&["retention_events"], "must be from 1s to 36500d"));
            }
            Some(d.as_millis() as i64)
        }
    };
    let changes = OrgChanges {
        rate_limit_per_minute: positive(b.rate_limit_per_minute, "rate_limit_per_minute")?,
        max_endpoints: positive(b.max_endpoints, "max_endpoints")?,
        max_streams: positive(b.max_streams, "max_streams")?,
        retention_events_ms: retention,
    };
    let id = path.into_inner();
    let org = state.db.run(move |conn| orgs::update(conn, &id, &changes)).await?;
    Ok(HttpResponse::Ok().json(OrgView::new(org, &state.settings)))
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
    let org = Org::new(new_id("org"), name, limit as i32, now_ms());
    let view = OrgView::new(org.clone(), &state.settings);
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
        .run(move |conn| match orgs::find(conn, &org_id)? {
            Some(_) => api_keys::issue(conn, &org_id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Organisation"))?;
    Ok(HttpResponse::Created().json(NewKeyView::from(created)))
}
