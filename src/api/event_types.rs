//! Event types: names publishers use, optionally with a JSON Schema for their `data`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::auth::OrgAuth;
use crate::api::json::Json;
use crate::api::pagination::{PageRequest, page};
use crate::error::ApiError;
use crate::ids::{new_id, now_ms};
use crate::json_schema::Schema;
use crate::state::AppState;
use crate::store::event_types::{self, EventType};
use crate::timefmt::rfc3339;

pub const MAX_TYPE_LEN: usize = 128;

/// How long "this type is not registered" is believed: another node may register it.
const UNREGISTERED_TTL: Duration = Duration::from_secs(1);
const SCHEMA_CACHE_MAX: usize = 10_000;

/// The JSON Schema each publish is checked against, kept in memory. Event types are never
/// changed once registered, so a registered type's schema stays valid for good; only the
/// absence of a registration is re-read, after `UNREGISTERED_TTL`.
#[derive(Default)]
pub struct SchemaCache {
    entries: Mutex<HashMap<(String, String), CachedSchema>>,
}

/// A type's schema, and when "not registered" was read (None for registered types).
type CachedSchema = (Option<Arc<Schema>>, Option<Instant>);

impl SchemaCache {
    fn get(&self, key: &(String, String)) -> Option<Option<Arc<Schema>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key)? {
            (_, Some(read_at)) if read_at.elapsed() >= UNREGISTERED_TTL => None,
            (schema, _) => Some(schema.clone()),
        }
    }

    fn put(&self, key: (String, String), schema: Option<Arc<Schema>>, registered: bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SCHEMA_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key, (schema, (!registered).then(Instant::now)));
    }
}

/// A schema as the store keeps it (JSON text), parsed.
fn stored_schema(text: Option<&str>) -> Option<Value> {
    text.and_then(|s| serde_json::from_str(s).ok())
}

/// The compiled schema a publish of `name` must match, if its type is registered with one.
pub async fn schema_for(state: &AppState, org_id: &str, name: &str) -> Result<Option<Arc<Schema>>, ApiError> {
    let key = (org_id.to_string(), name.to_string());
    if let Some(schema) = state.schemas.get(&key) {
        return Ok(schema);
    }
    let (org, n) = key.clone();
    let registered = state.db.run(move |conn| event_types::find_by_name(conn, &org, &n)).await?;
    let schema = match registered.as_ref().and_then(|t| stored_schema(t.json_schema.as_deref())) {
        // Compiling takes time: off the worker thread, like the read.
        Some(value) => {
            let compiled = web::block(move || Schema::compile(&value))
                .await
                .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?;
            // A schema stored before today's checks that fails them now refuses publishes
            // of its type rather than being skipped.
            Some(Arc::new(compiled.map_err(|m| {
                ApiError::invalid_field(&["type"], format!("the registered schema of {name} is refused: {m}"))
            })?))
        }
        None => None,
    };
    state.schemas.put(key, schema.clone(), registered.is_some());
    Ok(schema)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    name: String,
    description: Option<String>,
    schema: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub struct EventTypeView {
    id: String,
    name: String,
    description: Option<String>,
    schema: Option<serde_json::Value>,
    created_at: String,
}

impl From<EventType> for EventTypeView {
    fn from(t: EventType) -> Self {
        Self {
            id: t.id,
            name: t.name,
            description: t.description,
            schema: stored_schema(t.json_schema.as_deref()),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// Event type names: dotted segments of letters, digits, `_` and `-`. Nothing that could
/// break a header or an SSE field (no spaces, CR, LF or colons).
pub fn validate_type_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TYPE_LEN {
        return Err(format!("must be 1 to {MAX_TYPE_LEN} characters"));
    }
    let ok_segment =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name.split('.').all(ok_segment) {
        return Err(
            "must be dot-separated segments of letters, digits, '_' or '-' (like payment.completed)".into()
        );
    }
    Ok(())
}

pub async fn create(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Json<CreateEventType>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    validate_type_name(&body.name).map_err(|m| ApiError::invalid_field(&["name"], m))?;
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.len() > 1000 || d.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(ApiError::invalid_field(
            &["description"],
            "at most 1000 characters, no control characters",
        ));
    }
    let compiled = match body.schema.clone() {
        Some(schema) => Some(Arc::new(
            web::block(move || Schema::compile(&schema))
                .await
                .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
                .map_err(|m| ApiError::invalid_field(&["schema"], m))?,
        )),
        None => None,
    };
    let row = EventType {
        id: new_id("et"),
        org_id: auth.org_id,
        name: body.name,
        description: body.description,
        json_schema: body.schema.map(|s| s.to_string()),
        created_at: now_ms(),
    };
    let view = EventTypeView::from(row.clone());
    let key = (row.org_id.clone(), row.name.clone());
    state.db.run(move |conn| event_types::insert(conn, &row)).await?;
    state.schemas.put(key, compiled, true);
    Ok(HttpResponse::Created().json(view))
}

pub async fn list(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(&query)?;
    let range = super::list_filters::time_range(&query)?;
    let (after, fetch) = (req.after.clone(), req.fetch());
    let rows = state
        .db
        .run(move |conn| event_types::list(conn, &auth.org_id, range, after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page(rows, &req, |t| t.id.clone(), EventTypeView::from)))
}

#[cfg(test)]
mod tests {
    use super::validate_type_name;

    #[test]
    fn type_names() {
        assert!(validate_type_name("payment.completed").is_ok());
        assert!(validate_type_name("a_b-c.D9").is_ok());
        for bad in ["", "a..b", ".a", "a b", "a\nb", "a:b", "order.*"] {
            assert!(validate_type_name(bad).is_err(), "{bad:?}");
        }
    }
}
