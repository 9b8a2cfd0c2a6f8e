//! Publishing and tracking events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actors::FirstAttempt;
use crate::actors::messages::AttemptSummary;
use crate::api::auth::OrgAuth;
use crate::api::event_types::resolve;
use crate::api::json::Json;
use crate::api::pagination::{PageRequest, page};
use crate::delivery::type_patterns::validate_type_name;
use crate::domain::DeliveryStatus;
use crate::error::{ApiError, Issue};
use crate::ids::{new_id, now_ms};
use crate::json_schema::Schema;
use crate::state::AppState;
use crate::store::deliveries;
use crate::store::events::{self, Event, EventFilter, NewEvent, Published};
use crate::timefmt::{rfc3339, rfc3339_opt};

const MAX_ID_LEN: usize = 255;
/// `?wait=true` never holds a request longer than this beyond the delivery timeout.
const WAIT_SLACK: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(30);
/// The longest a payload's validation against its type's schema may take.
const VALIDATION_TIME: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    #[serde(rename = "type")]
    event_type: String,
    data: Value,
    id: Option<String>,
    correlation_id: Option<String>,
    /// The version of its type (default: the type's latest registered version, or 1).
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    version: Option<u32>,
}

fn accepted_view(event: &Event, delivery_count: i64) -> Value {
    json!({
        "id": event.id,
        "type": event.event_type,
        "created_at": rfc3339(event.created_at),
        "seq": event.seq,
        "version": event.version,
        "delivery_count": delivery_count,
    })
}

fn check_publish(p: &Publish) -> Result<(), ApiError> {
    let mut issues = Vec::new();
    if let Err(m) = validate_type_name(&p.event_type) {
        issues.push(Issue::at(&["type"], m));
    }
    if !p.data.is_object() {
        issues.push(Issue::at(&["data"], "must be a JSON object"));
    }
    if let Some(id) = &p.id
        && (id.is_empty()
            || id.len() > MAX_ID_LEN
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b)))
    {
        issues.push(Issue::at(&["id"], "must be 1 to 255 letters, digits, '_', '-', '.' or ':'"));
    }
    if let Some(c) = &p.correlation_id
        && (c.len() > MAX_ID_LEN || c.bytes().any(|b| b.is_ascii_control()))
    {
        issues.push(Issue::at(
            &["correlation_id"],
            "must be at most 255 characters without control characters",
        ));
    }
    if issues.is_empty() { Ok(()) } else { Err(ApiError::validation("Invalid payload", issues)) }
}

pub async fn publish(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
    body: Json<Publish>,
) -> Result<HttpResponse, ApiError> {
    let p = body.0;
    check_publish(&p)?;
    let wait = query.get("wait").is_some_and(|v| v == "true" || v == "1");
    let mut p = p;
    let resolved = resolve(&state, &auth.org_id, &p.event_type, p.version).await?;
    if let Some(schema) = resolved.schema {
        check_schema(&mut p, schema).await?;
    }
    let new = NewEvent {
        id: p.id.unwrap_or_else(|| new_id("evt")),
        org_id: auth.org_id,
        event_type: p.event_type,
        payload: p.data.to_string(),
        correlation_id: p.correlation_id,
        source_id: None,
        created_at: now_ms(),
        version: resolved.version,
        latest_version: resolved.latest,
    };
    let view_org = new.org_id.clone();
    let (published, waits) = state.engine.publish_waiting(new, None, wait).await?;
    let (event, count, replayed) = match &published {
        Published::Created { event, deliveries } => (event, deliveries.len() as i64, false),
        Published::Existing { event, delivery_count } => (event, *delivery_count, true),
    };
    let mut view = accepted_view(event, count);
    let replayed_header = ("idempotent-replayed", if replayed { "true" } else { "false" });
    if !wait {
        return Ok(HttpResponse::Accepted().insert_header(replayed_header).json(view));
    }
    view["deliveries"] = Value::Array(first_attempts(&state, &view_org, waits).await);
    Ok(HttpResponse::Ok().insert_header(replayed_header).json(view))
}

/// `data` against its type's schema: off the worker threads, and bounded in time, so a
/// costly schema delays only its own publish (the blocking thread finishes the work and is
/// then free again).
async fn check_schema(p: &mut Publish, schema: Arc<Schema>) -> Result<(), ApiError> {
    let data = std::mem::take(&mut p.data);
    let checked = tokio::time::timeout(
        VALIDATION_TIME,
        web::block(move || {
            let failures = schema.validate(&data);
            (data, failures)
        }),
    )
    .await
    .map_err(|_| ApiError::invalid_field(&["data"], "took too long to validate against its type's schema"))?
    .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?;
    let failures;
    (p.data, failures) = checked;
    if failures.is_empty() {
        return Ok(());
    }
    let issues = failures.into_iter().map(|f| Issue { path: f.path, message: f.message }).collect();
    Err(ApiError::validation(format!("data does not match the schema of {}", p.event_type), issues))
}

/// `?wait=true`: each delivery's first attempt, as its actor reports it (or, for another
/// node's, as the store shows it), until the wait runs out.
async fn first_attempts(state: &AppState, org_id: &str, waits: Vec<FirstAttempt>) -> Vec<Value> {
    let limit = (state.settings.delivery.timeout + WAIT_SLACK).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + limit;
    let mut outcomes = Vec::with_capacity(waits.len());
    for mut w in waits {
        let outcome = if w.held {
            tokio::time::timeout_at(deadline, &mut w.rx).await.ok().and_then(Result::ok)
        } else {
            first_attempt_in_store(state, org_id, &w.delivery_id, deadline).await
        };
        let entry = match outcome {
            Some(s) => json!({
                "id": w.delivery_id, "endpoint_id": w.endpoint_id, "status": s.status,
                "attempt_count": s.attempt_count, "status_code": s.status_code, "error": s.error,
            }),
            None => {
                json!({
                    "id": w.delivery_id, "endpoint_id": w.endpoint_id, "status": DeliveryStatus::Pending,
                    "attempt_count": 0, "status_code": null, "error": "no answer yet",
                })
            }
        };
        outcomes.push(entry);
    }
    outcomes
}

/// How often a waiting publish reads a delivery another node attempts.
const STORE_POLL: Duration = Duration::from_millis(20);

/// The first attempt's outcome of a delivery another node attempts, read from the store
/// until `deadline`.
async fn first_attempt_in_store(
    state: &AppState,
    org_id: &str,
    delivery_id: &str,
    deadline: tokio::time::Instant,
) -> Option<AttemptSummary> {
    loop {
        let (org, id) = (org_id.to_string(), delivery_id.to_string());
        if let Ok(Some(d)) = state.db.run(move |conn| deliveries::find(conn, &org, &id)).await
            && d.attempt_count > 0
        {
            return Some(AttemptSummary {
                status: d.status,
                attempt_count: d.attempt_count,
                status_code: d.last_status_code.and_then(|c| u16::try_from(c).ok()),
                error: d.last_error,
            });
        }
        if tokio::time::Instant::now() + STORE_POLL >= deadline {
            return None;
        }
        tokio::time::sleep(STORE_POLL).await;
    }
}

pub async fn list(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(&query)?;
    let filter = EventFilter {
        event_type: query.get("type").cloned(),
        range: super::list_filters::time_range(&query)?,
    };
    // Events page by seq. A cursor that holds no seq is past every event: an empty page,
    // as for any other made-up position (see `pagination::decode_cursor`).
    let before = req.after.as_ref().map(|c| c.parse::<i64>().unwrap_or(0));
    let fetch = req.fetch();
    let rows = state.db.run(move |conn| events::list(conn, &auth.org_id, &filter, before, fetch)).await?;
    Ok(HttpResponse::Ok().json(page(rows, &req, |e| e.seq.to_string(), |e| event_view(&e))))
}

/// An event as the API shows it (lists, one event, the event of a dead letter).
pub fn event_view(e: &Event) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "created_at": rfc3339(e.created_at),
        "seq": e.seq,
        "version": e.version,
        "correlation_id": e.correlation_id,
        "data": serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null),
    })
}

pub async fn get(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (event, rows) = state
        .db
        .run(move |conn| {
            let Some(event) = events::find(conn, &auth.org_id, &id)? else { return Ok(None) };
            let rows = deliveries::for_event(conn, event.seq)?;
            Ok(Some((event, rows)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Event"))?;
    let mut view = event_view(&event);
    view["deliveries"] = rows
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "endpoint_id": d.endpoint_id,
                "status": d.status,
                "attempt_count": d.attempt_count,
                "last_status_code": d.last_status_code,
                "next_attempt_at": if d.status == DeliveryStatus::Pending { rfc3339_opt(d.next_attempt_at) } else { None },
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(view))
}
