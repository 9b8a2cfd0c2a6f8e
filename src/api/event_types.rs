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
use crate::delivery::type_patterns::validate_type_name;
use crate::error::ApiError;
use crate::ids::{new_id, now_ms};
use crate::json_schema::Schema;
use crate::state::AppState;
use crate::store::event_types::{self, EventType, TypeVersion};
use crate::timefmt::rfc3339;

/// How long a type's list of versions is believed: another node may register a version.
const VERSIONS_TTL: Duration = Duration::from_secs(1);
const SCHEMA_CACHE_MAX: usize = 10_000;
/// Versions a type may have.
const MAX_VERSION: u32 = 1000;

/// What publishes need of event types, kept in memory: each type's registered versions
/// (re-read after `VERSIONS_TTL`, since versions are added), and each version's compiled
/// schema (a registered version never changes, so it is compiled once).
#[derive(Default)]
pub struct SchemaCache {
    /// By (organisation, type name): its versions, and when they were read.
    types: Mutex<HashMap<(String, String), ReadAt<Registered>>>,
    /// By (type id, version).
    compiled: Mutex<HashMap<(String, i32), CompiledSchema>>,
}

/// What was read, and when.
type ReadAt<T> = (Arc<T>, Instant);

/// A version's compiled schema, or `None` when it has none.
type CompiledSchema = Option<Arc<Schema>>;

/// A type as publishes see it: its id and versions with their schema text (none when the
/// type is not registered).
#[derive(Default)]
struct Registered {
    type_id: String,
    versions: Vec<(i32, Option<String>)>,
}

impl SchemaCache {
    fn registered(&self, key: &(String, String)) -> Option<Arc<Registered>> {
        let types = self.types.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        types.get(key).filter(|(_, at)| at.elapsed() < VERSIONS_TTL).map(|(r, _)| r.clone())
    }

    fn put_registered(&self, key: (String, String), registered: Arc<Registered>) {
        let mut types = self.types.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if types.len() >= SCHEMA_CACHE_MAX {
            types.clear();
        }
        types.insert(key, (registered, Instant::now()));
    }

    /// A version was registered here: the next publish reads the type's versions again.
    fn forget(&self, key: &(String, String)) {
        self.types.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }

    fn compiled(&self, key: &(String, i32)) -> Option<CompiledSchema> {
        self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    fn put_compiled(&self, key: (String, i32), schema: CompiledSchema) {
        let mut compiled = self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if compiled.len() >= SCHEMA_CACHE_MAX {
            compiled.clear();
        }
        compiled.insert(key, schema);
    }
}

/// A schema as the store keeps it (JSON text), parsed.
fn stored_schema(text: Option<&str>) -> Option<Value> {
    text.and_then(|s| serde_json::from_str(s).ok())
}

/// The version a publish of `name` is, and what comes with it.
pub struct Resolved {
    pub version: i32,
    /// The type's latest registered version (`None`: it has none).
    pub latest: Option<i32>,
    /// The schema `data` must match.
    pub schema: Option<Arc<Schema>>,
}

/// Which version of `name` a publish is (the one asked for, or the type's latest, or 1 for
/// a type that is not registered) and the schema its data must match. Asking for a
/// version the registered type does not have is a validation error.
pub async fn resolve(
    state: &AppState,
    org_id: &str,
    name: &str,
    asked: Option<u32>,
) -> Result<Resolved, ApiError> {
    let key = (org_id.to_string(), name.to_string());
    let registered = if let Some(r) = state.schemas.registered(&key) {
        r
    } else {
        let (org, n) = key.clone();
        let found = state.db.run(move |conn| event_types::versions_by_name(conn, &org, &n)).await?;
        let registered = Arc::new(found.map_or_else(Registered::default, |(type_id, versions)| Registered {
            type_id,
            versions: versions.into_iter().map(|v| (v.version, v.json_schema)).collect(),
        }));
        state.schemas.put_registered(key, registered.clone());
        registered
    };
    let latest = registered.versions.iter().map(|(v, _)| *v).max();
    let version = match (asked, latest) {
        (Some(v), _) if v == 0 || v > MAX_VERSION => {
            return Err(ApiError::invalid_field(&["version"], format!("must be from 1 to {MAX_VERSION}")));
        }
        (Some(v), _) => v as i32,
        (None, Some(latest)) => latest,
        (None, None) => 1,
    };
    let Some((_, text)) = registered.versions.iter().find(|(v, _)| *v == version) else {
        if latest.is_some() {
            let known: Vec<String> = registered.versions.iter().map(|(v, _)| v.to_string()).collect();
            return Err(ApiError::invalid_field(
                &["version"],
                format!("{name} has no version {version} (registered: {})", known.join(", ")),
            ));
        }
        return Ok(Resolved { version, latest, schema: None });
    };
    let compiled_key = (registered.type_id.clone(), version);
    if let Some(schema) = state.schemas.compiled(&compiled_key) {
        return Ok(Resolved { version, latest, schema });
    }
    let schema = match stored_schema(text.as_deref()) {
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
    state.schemas.put_compiled(compiled_key, schema.clone());
    Ok(Resolved { version, latest, schema })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    name: String,
    description: Option<String>,
    schema: Option<serde_json::Value>,
    /// The version this schema is (default 1); a new version of a registered type is added
    /// beside the others.
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    version: Option<u32>,
}

#[derive(Serialize)]
pub struct VersionView {
    version: i32,
    schema: Option<serde_json::Value>,
    created_at: String,
}

#[derive(Serialize)]
pub struct EventTypeView {
    id: String,
    name: String,
    description: Option<String>,
    /// The latest version's schema.
    schema: Option<serde_json::Value>,
    latest_version: i32,
    versions: Vec<VersionView>,
    created_at: String,
}

impl EventTypeView {
    fn new(t: EventType, versions: Vec<TypeVersion>) -> Self {
        let versions: Vec<VersionView> = versions
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                schema: stored_schema(v.json_schema.as_deref()),
                created_at: rfc3339(v.created_at),
            })
            .collect();
        let latest = versions.last();
        Self {
            schema: latest.and_then(|v| v.schema.clone()),
            latest_version: latest.map_or(1, |v| v.version),
            id: t.id,
            name: t.name,
            description: t.description,
            versions,
            created_at: rfc3339(t.created_at),
        }
    }
}

pub async fn create(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Json<CreateEventType>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    validate_type_name(&body.name).map_err(|m| ApiError::invalid_field(&["name"], m))?;
    super::check_description(body.description.as_deref())?;
    let version = match body.version {
        None => 1,
        Some(v) if (1..=MAX_VERSION).contains(&v) => v as i32,
        Some(_) => {
            return Err(ApiError::invalid_field(&["version"], format!("must be from 1 to {MAX_VERSION}")));
        }
    };
    if let Some(schema) = body.schema.clone() {
        web::block(move || Schema::compile(&schema))
            .await
            .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
            .map_err(|m| ApiError::invalid_field(&["schema"], m))?;
    }
    let row = EventType {
        id: new_id("et"),
        org_id: auth.org_id,
        name: body.name,
        description: body.description,
        json_schema: body.schema.map(|s| s.to_string()),
        created_at: now_ms(),
    };
    let key = (row.org_id.clone(), row.name.clone());
    let (stored, versions) = state
        .db
        .run(move |conn| {
            let stored = event_types::register(conn, &row, version)?;
            let versions = event_types::versions_of(conn, std::slice::from_ref(&stored.id))?;
            Ok((stored, versions))
        })
        .await?;
    state.schemas.forget(&key);
    Ok(HttpResponse::Created().json(EventTypeView::new(stored, versions)))
}

pub async fn list(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(&query)?;
    let range = super::list_filters::time_range(&query)?;
    let (after, fetch) = (req.after.clone(), req.fetch());
    let (rows, versions) = state
        .db
        .run(move |conn| {
            let rows = event_types::list(conn, &auth.org_id, range, after.as_deref(), fetch)?;
            let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
            Ok((rows, event_types::versions_of(conn, &ids)?))
        })
        .await?;
    let mut by_type: HashMap<String, Vec<TypeVersion>> = HashMap::new();
    for v in versions {
        by_type.entry(v.type_id.clone()).or_default().push(v);
    }
    Ok(HttpResponse::Ok().json(page(
        rows,
        &req,
        |t| t.id.clone(),
        |t| {
            let versions = by_type.remove(&t.id).unwrap_or_default();
            EventTypeView::new(t, versions)
        },
    )))
}
