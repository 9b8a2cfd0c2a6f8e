//! Delivery tracking, retry, and the dead-letter list and replay.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::auth::OrgAuth;
use crate::api::json::Json;
use crate::api::list_filters;
use crate::api::pagination::{PageRequest, page};
use crate::domain::DeliveryStatus;
use crate::error::ApiError;
use crate::ids::now_ms;
use crate::state::AppState;
use crate::store::deliveries::{self, AttemptRow, Delivery, ReplaySelection, Retry};
use crate::store::events::Event;
use crate::timefmt::{rfc3339, rfc3339_opt};

#[derive(Serialize)]
pub struct DeliveryView {
    id: String,
    event_id: Option<String>,
    endpoint_id: String,
    status: DeliveryStatus,
    attempt_count: i32,
    next_attempt_at: Option<String>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    first_attempt_at: Option<String>,
    last_attempt_at: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<Vec<AttemptView>>,
}

#[derive(Serialize)]
pub struct AttemptView {
    attempt: i32,
    started_at: String,
    duration_ms: i64,
    status_code: Option<i32>,
    response_body: Option<String>,
    error: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(a: AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

impl DeliveryView {
    pub fn new(d: Delivery, event_id: Option<String>) -> Self {
        Self {
            id: d.id,
            event_id,
            endpoint_id: d.endpoint_id,
            // Pending without a due time cannot happen; pending shows when it is due.
            next_attempt_at: if d.status == DeliveryStatus::Pending {
                rfc3339_opt(d.next_attempt_at)
            } else {
                None
            },
            status: d.status,
            attempt_count: d.attempt_count,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            first_attempt_at: rfc3339_opt(d.first_attempt_at),
            last_attempt_at: rfc3339_opt(d.last_attempt_at),
            created_at: rfc3339(d.created_at),
            event: None,
            attempts: None,
        }
    }

    pub fn with_event(d: Delivery, e: Event) -> Self {
        let mut view = Self::new(d, Some(e.id.clone()));
        view.event = Some(crate::api::events::event_view(&e));
        view
    }
}

/// A page of deliveries (with their events), for the endpoint log and the dead letters.
/// A page of deliveries; `statuses` (a list's own, like the dead letters') or, when empty,
/// the query's `status`; the query's `from`/`to` on their creation time.
pub async fn list_page(
    state: &AppState,
    org_id: String,
    endpoint_id: Option<String>,
    statuses: Vec<DeliveryStatus>,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ApiError> {
    let statuses = if statuses.is_empty() { list_filters::delivery_statuses(query)? } else { statuses };
    let filter =
        deliveries::DeliveryFilter { endpoint_id, statuses, range: list_filters::time_range(query)? };
    let req = PageRequest::from_query(query)?;
    let (after, fetch) = (req.after.clone(), req.fetch());
    let rows =
        state.db.run(move |conn| deliveries::list(conn, &org_id, &filter, after.as_deref(), fetch)).await?;
    Ok(HttpResponse::Ok().json(page(
        rows,
        &req,
        |(d, _)| d.id.clone(),
        |(d, e)| DeliveryView::with_event(d, e),
    )))
}

pub async fn get(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let view = state
        .db
        .run(move |conn| {
            let d = deliveries::get(conn, &auth.org_id, &id)?;
            let event = deliveries::event_of(conn, &d)?;
            let attempts = deliveries::attempts(conn, &d.id)?;
            let mut view = DeliveryView::new(d, Some(event.id));
            view.attempts = Some(attempts.into_iter().map(AttemptView::from).collect());
            Ok(view)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Re-queues the selected deliveries, then wakes the scheduler to claim them now.
pub async fn requeue(state: &AppState, sel: ReplaySelectionOwned) -> Result<usize, ApiError> {
    let n = state
        .db
        .run(move |conn| {
            let selection = ReplaySelection {
                org_id: &sel.org_id,
                ids: sel.ids.as_deref(),
                endpoint_id: sel.endpoint_id.as_deref(),
                statuses: &sel.statuses,
                since: sel.since,
                until: sel.until,
            };
            deliveries::requeue(conn, &selection, now_ms())
        })
        .await?;
    if n > 0 {
        state.engine.kick();
    }
    Ok(n)
}

pub struct ReplaySelectionOwned {
    pub org_id: String,
    pub ids: Option<Vec<String>>,
    pub endpoint_id: Option<String>,
    pub statuses: Vec<DeliveryStatus>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

pub async fn retry(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let lookup = id.clone();
    let outcome = state.db.run(move |conn| deliveries::retry(conn, &auth.org_id, &lookup, now_ms())).await?;
    match outcome {
        Retry::Queued => {
            state.engine.kick();
            Ok(HttpResponse::Accepted().json(json!({"id": id, "status": DeliveryStatus::Pending})))
        }
        Retry::NotFound => Err(ApiError::not_found("Delivery")),
        Retry::BeingAttempted => Err(ApiError::conflict(
            "The delivery is being attempted; retry it once that attempt has finished",
        )),
        Retry::EndpointDeleted => Err(ApiError::conflict("The delivery's endpoint was deleted")),
    }
}

/// Marks a pending delivery `failed` ("cancelled"), so a FIFO endpoint blocked by it goes
/// on with the next one.
pub async fn cancel(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let outcome = state.db.run(move |conn| deliveries::cancel(conn, &auth.org_id, &id, now_ms())).await?;
    match outcome {
        deliveries::Cancel::Cancelled(d) => {
            // Its endpoint's queue may move now.
            state.engine.ctx.wake_scheduler();
            Ok(HttpResponse::Ok().json(DeliveryView::new(d, None)))
        }
        deliveries::Cancel::NotFound => Err(ApiError::not_found("Delivery")),
        deliveries::Cancel::NotPending(d) if d.status == DeliveryStatus::Pending => Err(ApiError::conflict(
            "The delivery is being attempted; its attempt decides (cancel it after, if it is still pending)",
        )),
        deliveries::Cancel::NotPending(d) => Err(ApiError::conflict(format!(
            "The delivery is already {}; only a pending one can be cancelled",
            d.status
        ))),
    }
}

pub async fn dead_letters(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let endpoint_id = query.get("endpoint_id").cloned();
    list_page(&state, auth.org_id, endpoint_id, vec![DeliveryStatus::Dead], &query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayDead {
    ids: Option<Vec<String>>,
    endpoint_id: Option<String>,
}

pub async fn replay_dead_letters(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Json<ReplayDead>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    if body.ids.is_none() && body.endpoint_id.is_none() {
        return Err(ApiError::invalid_field(&["ids"], "give ids, endpoint_id, or both"));
    }
    if body.ids.as_ref().is_some_and(|ids| ids.len() > 1000) {
        return Err(ApiError::invalid_field(&["ids"], "at most 1000 ids at once"));
    }
    let sel = ReplaySelectionOwned {
        org_id: auth.org_id,
        ids: body.ids,
        endpoint_id: body.endpoint_id,
        statuses: vec![DeliveryStatus::Dead],
        since: None,
        until: None,
    };
    let replayed = requeue(&state, sel).await?;
    Ok(HttpResponse::Accepted().json(json!({"replayed": replayed})))
}
