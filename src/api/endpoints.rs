//! Endpoints: subscriptions that receive signed webhooks.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::auth::OrgAuth;
use crate::api::deliveries::{ReplaySelectionOwned, list_page, requeue};
use crate::api::json::Json;
use crate::api::pagination::{PageRequest, page};
use crate::delivery::circuit::CircuitState;
use crate::delivery::payload_filter::PayloadFilter;
use crate::delivery::sender::is_reserved_header;
use crate::delivery::signing::{ROTATION_GRACE_MS, SignatureScheme, generate_secret};
use crate::delivery::type_patterns::{is_type_pattern, validate_type_name};
use crate::domain::{DeliveryOrder, DeliveryStatus, EndpointStatus};
use crate::error::{ApiError, Issue};
use crate::ids::{new_id, now_ms};
use crate::secrets::{Cipher, Purpose};
use crate::state::AppState;
use crate::store::endpoints::{self, Endpoint, EndpointChanges};
use crate::store::events::{NewEvent, Published};
use crate::store::{DbConn, owners};
use crate::timefmt::{rfc3339, rfc3339_opt};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    events: Vec<String>,
    description: Option<String>,
    secret: Option<String>,
    signature_scheme: Option<String>,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    rate_limit_per_second: Option<u32>,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    max_in_flight: Option<u32>,
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    filter: Option<serde_json::Value>,
    /// The version to receive per event type (`null` in a PATCH removes every pin).
    #[serde(default, deserialize_with = "present")]
    versions: Option<serde_json::Value>,
    /// `fifo` (one at a time, in event order) or `none` (the default).
    ordering: Option<String>,
}

/// A field that was given, `null` included (`Some(Value::Null)` removes a filter), apart
/// from one that was left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    status: Option<String>,
    signature_scheme: Option<String>,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    rate_limit_per_second: Option<u32>,
    #[serde(default, deserialize_with = "crate::api::json::whole_u32")]
    max_in_flight: Option<u32>,
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    filter: Option<serde_json::Value>,
    /// The version to receive per event type (`null` in a PATCH removes every pin).
    #[serde(default, deserialize_with = "present")]
    versions: Option<serde_json::Value>,
    /// `fifo` (one at a time, in event order) or `none` (the default).
    ordering: Option<String>,
}

impl UpdateEndpoint {
    /// The columns a `PATCH` writes, each checked (header values sealed).
    fn into_changes(self, state: &AppState) -> Result<EndpointChanges, ApiError> {
        let b = self;
        if let Some(url) = &b.url {
            check_url(state, url)?;
        }
        let filter = b.events.as_deref().map(check_filters).transpose()?;
        let headers = b.headers.as_ref().map(check_headers).transpose()?;
        let headers = headers.map(|h| state.engine.ctx.cipher.seal(Purpose::EndpointHeaders, &h));
        let scheme = b.signature_scheme.as_deref().map(|s| check_scheme(Some(s))).transpose()?;
        super::check_description(b.description.as_deref())?;
        let status = b.status.as_deref().map(check_status).transpose()?;
        let rate = check_limit(b.rate_limit_per_second, "rate_limit_per_second", 100_000)?;
        let in_flight = check_limit(b.max_in_flight, "max_in_flight", 1000)?;
        let payload_filter = b.filter.as_ref().map(payload_filter_text).transpose()?;
        let versions = b.versions.as_ref().map(check_versions).transpose()?;
        let ordering = check_ordering(b.ordering.as_deref())?;
        Ok(EndpointChanges {
            url: b.url,
            event_filter: filter,
            headers,
            signature_scheme: scheme.map(|v| v.as_str().to_string()),
            description: b.description,
            status,
            rate_limit_per_second: rate,
            max_in_flight: in_flight,
            payload_filter,
            versions,
            ordering,
        })
    }
}

#[derive(Serialize)]
pub struct EndpointView {
    id: String,
    url: String,
    description: Option<String>,
    events: Vec<String>,
    status: EndpointStatus,
    signature_scheme: String,
    rate_limit_per_second: Option<i32>,
    max_in_flight: Option<i32>,
    headers: BTreeMap<String, String>,
    /// The payload filter, or null.
    filter: Option<serde_json::Value>,
    /// The version pinned per event type (others get each type's latest).
    versions: BTreeMap<String, i32>,
    ordering: DeliveryOrder,
    /// A FIFO endpoint's queue (one endpoint view only): its head, and whether it waits
    /// on that delivery's retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<serde_json::Value>,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    circuit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<serde_json::Value>,
    /// The node whose actor sends this endpoint's deliveries (one endpoint view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_node: Option<Option<String>>,
}

/// Shown in place of each header value: values often carry the receiver's credentials.
const MASK: &str = "********";

impl EndpointView {
    /// Never with the secret (only create, rotate and `GET …/secret` show it), and header
    /// names with masked values.
    fn new(ep: &Endpoint, cipher: &Cipher) -> Self {
        let headers: BTreeMap<String, String> = cipher
            .reveal(Purpose::EndpointHeaders, &ep.headers)
            .ok()
            .and_then(|h| serde_json::from_str::<BTreeMap<String, String>>(&h).ok())
            .unwrap_or_default()
            .into_keys()
            .map(|name| (name, MASK.to_string()))
            .collect();
        Self {
            id: ep.id.clone(),
            url: ep.url.clone(),
            description: ep.description.clone(),
            events: ep.filters(),
            status: ep.status,
            signature_scheme: ep.signature_scheme.clone(),
            rate_limit_per_second: ep.rate_limit_per_second,
            max_in_flight: ep.max_in_flight,
            headers,
            filter: ep.payload_filter.as_deref().and_then(|f| serde_json::from_str(f).ok()),
            versions: ep.pinned_versions().into_iter().collect(),
            ordering: ep.ordering,
            queue: None,
            created_at: rfc3339(ep.created_at),
            updated_at: rfc3339(ep.updated_at),
            secret: None,
            circuit: Some(circuit_view(ep)),
            counts: None,
            owner_node: None,
        }
    }
}

fn circuit_view(ep: &Endpoint) -> serde_json::Value {
    let now = now_ms();
    let state = match (ep.circuit_state, ep.circuit_open_until) {
        (CircuitState::Open, Some(until)) if until <= now => CircuitState::HalfOpen,
        (s, _) => s,
    };
    json!({
        "state": state,
        "consecutive_failures": ep.consecutive_failures,
        "open_until": if state == CircuitState::Closed { None } else { rfc3339_opt(ep.circuit_open_until) },
    })
}

fn check_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    state.engine.ctx.policy.check_url(url).map(|_| ()).map_err(|m| ApiError::invalid_field(&["url"], m))
}

fn check_filters(events: &[String]) -> Result<String, ApiError> {
    if events.is_empty() || events.len() > 100 {
        return Err(ApiError::invalid_field(&["events"], "give 1 to 100 event types (\"*\" for all)"));
    }
    let mut issues = Vec::new();
    for (i, f) in events.iter().enumerate() {
        if !is_type_pattern(f) {
            issues.push(Issue {
                path: vec![json!("events"), json!(i)],
                message: "must be \"*\", an event type, or a prefix like \"order.*\"".into(),
            });
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::validation("Invalid payload", issues));
    }
    Ok(serde_json::to_string(events).expect("strings serialise"))
}

/// Pinned versions as given: an object of event type names to versions (`null` or `{}`
/// removes every pin). Answers the text to store.
fn check_versions(value: &serde_json::Value) -> Result<Option<String>, ApiError> {
    let map = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Object(map) if map.len() <= 100 => map,
        _ => {
            return Err(ApiError::invalid_field(
                &["versions"],
                "an object of at most 100 event types and versions",
            ));
        }
    };
    let mut pins = BTreeMap::new();
    for (name, version) in map {
        if validate_type_name(name).is_err() {
            return Err(ApiError::invalid_field(&["versions", name], "not an event type name"));
        }
        match version.as_number().and_then(crate::api::json::whole_number) {
            Some(v @ 1..=1000) => pins.insert(name.clone(), v as i32),
            _ => {
                return Err(ApiError::invalid_field(&["versions", name], "must be a version from 1 to 1000"));
            }
        };
    }
    Ok((!pins.is_empty()).then(|| serde_json::to_string(&pins).expect("a map serialises")))
}

/// Bytes a stored payload filter may take.
const MAX_FILTER_BYTES: usize = 8 * 1024;

/// A payload filter as given, checked: `None` for `null` (which removes one), otherwise the
/// text to store and the filter compiled.
pub fn check_payload_filter(
    field: &str,
    filter: &serde_json::Value,
) -> Result<Option<(String, PayloadFilter)>, ApiError> {
    if filter.is_null() {
        return Ok(None);
    }
    let text = serde_json::to_string(filter).expect("JSON serialises");
    if text.len() > MAX_FILTER_BYTES {
        return Err(ApiError::invalid_field(&[field], format!("at most {MAX_FILTER_BYTES} bytes of JSON")));
    }
    let compiled = PayloadFilter::compile(filter).map_err(|e| {
        let path = std::iter::once(json!(field)).chain(e.path.into_iter().map(|p| json!(p))).collect();
        ApiError::validation("Invalid filter", vec![Issue { path, message: e.message }])
    })?;
    Ok(Some((text, compiled)))
}

/// The text to store of a payload filter as given (`None`: remove it).
fn payload_filter_text(filter: &serde_json::Value) -> Result<Option<String>, ApiError> {
    Ok(check_payload_filter("filter", filter)?.map(|(text, _)| text))
}

fn check_ordering(ordering: Option<&str>) -> Result<Option<DeliveryOrder>, ApiError> {
    ordering
        .map(|o| {
            DeliveryOrder::parse(o)
                .ok_or_else(|| ApiError::invalid_field(&["ordering"], "must be fifo or none"))
        })
        .transpose()
}

/// A status a client may set or filter by: `active` or `disabled`.
fn check_status(status: &str) -> Result<EndpointStatus, ApiError> {
    match EndpointStatus::parse(status) {
        Some(s @ (EndpointStatus::Active | EndpointStatus::Disabled)) => Ok(s),
        _ => Err(ApiError::invalid_field(&["status"], "must be active or disabled")),
    }
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<String, ApiError> {
    for (name, value) in headers {
        let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !token || is_reserved_header(name) {
            return Err(ApiError::invalid_field(&["headers", name], "not a header name an endpoint may set"));
        }
        if value.bytes().any(|b| b.is_ascii_control()) || value.len() > 4096 {
            return Err(ApiError::invalid_field(
                &["headers", name],
                "header values may not contain control characters",
            ));
        }
    }
    Ok(serde_json::to_string(headers).expect("strings serialise"))
}

fn check_scheme(s: Option<&str>) -> Result<SignatureScheme, ApiError> {
    match s {
        None => Ok(SignatureScheme::StandardWebhooks),
        Some(s) => SignatureScheme::parse(s).ok_or_else(|| {
            ApiError::invalid_field(&["signature_scheme"], "must be standard-webhooks or hmac-sha256")
        }),
    }
}

fn check_limit(value: Option<u32>, field: &str, max: u32) -> Result<Option<i32>, ApiError> {
    match value {
        Some(n) if n == 0 || n > max => {
            Err(ApiError::invalid_field(&[field], format!("must be from 1 to {max}")))
        }
        other => Ok(other.map(|n| n as i32)),
    }
}

pub async fn create(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Json<CreateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    check_url(&state, &b.url)?;
    let event_filter = check_filters(&b.events)?;
    let headers = check_headers(&b.headers.unwrap_or_default())?;
    let scheme = check_scheme(b.signature_scheme.as_deref())?;
    super::check_description(b.description.as_deref())?;
    let payload_filter = b.filter.as_ref().map(payload_filter_text).transpose()?.flatten();
    let versions = b.versions.as_ref().map(check_versions).transpose()?.flatten();
    let ordering = check_ordering(b.ordering.as_deref())?.unwrap_or(DeliveryOrder::Unordered);
    let secret = match b.secret {
        Some(s)
            if !(8..=256).contains(&s.chars().count())
                || s.chars().any(|c| c.is_ascii_control() || c == ' ') =>
        {
            return Err(ApiError::invalid_field(&["secret"], "must be 8 to 256 characters without spaces"));
        }
        Some(s) => s,
        None => generate_secret(),
    };
    let now = now_ms();
    let cipher = &state.engine.ctx.cipher;
    let ep = Endpoint {
        id: new_id("ep"),
        org_id: auth.org_id,
        url: b.url,
        description: b.description,
        event_filter,
        secret: cipher.seal(Purpose::EndpointSecret, &secret),
        previous_secret: None,
        previous_secret_expires_at: None,
        signature_scheme: scheme.as_str().into(),
        status: EndpointStatus::Active,
        rate_limit_per_second: check_limit(b.rate_limit_per_second, "rate_limit_per_second", 100_000)?,
        max_in_flight: check_limit(b.max_in_flight, "max_in_flight", 1000)?,
        headers: cipher.seal(Purpose::EndpointHeaders, &headers),
        circuit_state: CircuitState::Closed,
        consecutive_failures: 0,
        circuit_open_until: None,
        last_success_at: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        version: 0,
        payload_filter,
        versions,
        ordering,
    };
    let mut view = EndpointView::new(&ep, cipher);
    view.secret = Some(secret);
    let max = state.settings.limits.max_endpoints;
    state.db.run(move |conn| endpoints::insert(conn, &ep, max)).await?;
    Ok(HttpResponse::Created().json(view))
}

pub async fn list(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let req = PageRequest::from_query(&query)?;
    let status = query.get("status").map(|s| check_status(s)).transpose()?;
    let range = super::list_filters::time_range(&query)?;
    let (after, fetch) = (req.after.clone(), req.fetch());
    let rows = state
        .db
        .run(move |conn| endpoints::list(conn, &auth.org_id, status, range, after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page(
        rows,
        &req,
        |e| e.id.clone(),
        |e| EndpointView::new(&e, &state.engine.ctx.cipher),
    )))
}

pub async fn get(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let this_node = state.engine.ctx.node_id.clone();
    let (ep, counts, owner, head) = state
        .db
        .run(move |conn| {
            let ep = endpoints::find(conn, &auth.org_id, &id)?;
            let counts = endpoints::delivery_counts(conn, &ep.id)?;
            let head = if ep.fifo() { crate::store::deliveries::queue_head(conn, &ep.id)? } else { None };
            let owner = match conn {
                DbConn::Pg(_) => owners::owner_of(conn, &ep.id, now_ms())?,
                // A single SQLite node owns every endpoint.
                DbConn::Sqlite(_) => Some(this_node),
            };
            Ok((ep, counts, owner, head))
        })
        .await?;
    let mut view = EndpointView::new(&ep, &state.engine.ctx.cipher);
    view.owner_node = Some(owner.filter(|_| ep.status == EndpointStatus::Active));
    if ep.fifo() {
        // Blocked: the head failed and waits for its next attempt; everything after waits too.
        view.queue = Some(json!({
            "head": head.as_ref().map(|d| &d.id),
            "blocked": head.as_ref().is_some_and(|d| d.attempt_count > 0),
            "blocked_by": head.as_ref().filter(|d| d.attempt_count > 0).map(|d| json!({
                "delivery_id": d.id,
                "attempts": d.attempt_count,
                "last_error": d.last_error,
                "last_status_code": d.last_status_code,
                "next_attempt_at": rfc3339_opt(d.next_attempt_at),
            })),
        }));
    }
    let count = |status| counts.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
    let (pending, succeeded) = (count(DeliveryStatus::Pending), count(DeliveryStatus::Succeeded));
    let finished = succeeded + count(DeliveryStatus::Failed) + count(DeliveryStatus::Dead);
    view.counts = Some(json!({
        "pending": pending,
        "succeeded": succeeded,
        "failed": count(DeliveryStatus::Failed),
        "dead": count(DeliveryStatus::Dead),
        "success_rate": if finished > 0 { Some(succeeded as f64 / finished as f64) } else { None },
    }));
    Ok(HttpResponse::Ok().json(view))
}

pub async fn update(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<UpdateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let changes = body.0.into_changes(&state)?;
    let ep = state.db.run(move |conn| endpoints::update(conn, &auth.org_id, &id, &changes, now_ms())).await?;
    state.engine.endpoint_updated(&ep);
    if ep.status == EndpointStatus::Active {
        state.engine.kick();
    }
    Ok(HttpResponse::Ok().json(EndpointView::new(&ep, &state.engine.ctx.cipher)))
}

pub async fn delete(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let gone = id.clone();
    let deleted = state.db.run(move |conn| endpoints::soft_delete(conn, &auth.org_id, &id, now_ms())).await?;
    if !deleted {
        return Err(ApiError::not_found("Endpoint"));
    }
    state.engine.endpoint_gone(&gone);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn rotate_secret(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let secret = generate_secret();
    let sealed = state.engine.ctx.cipher.seal(Purpose::EndpointSecret, &secret);
    let ep = state
        .db
        .run(move |conn| {
            let now = now_ms();
            endpoints::rotate_secret(conn, &auth.org_id, &id, &sealed, now + ROTATION_GRACE_MS, now)
        })
        .await?;
    state.engine.endpoint_updated(&ep);
    Ok(HttpResponse::Ok().json(json!({
        "secret": secret,
        "previous_secret_expires_at": rfc3339_opt(ep.previous_secret_expires_at),
    })))
}

/// `GET /v1/endpoints/{id}/secret`: the only read of a secret after create and rotate.
pub async fn secret(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let ep = state.db.run(move |conn| endpoints::find(conn, &auth.org_id, &id)).await?;
    let secret = state
        .engine
        .ctx
        .cipher
        .reveal(Purpose::EndpointSecret, &ep.secret)
        .map_err(|e| ApiError::internal(format!("endpoint {}: {e}", ep.id)))?;
    let expires = ep.previous_secret_expires_at.filter(|t| *t > now_ms());
    Ok(HttpResponse::Ok().json(json!({
        "secret": secret,
        "previous_secret_expires_at": rfc3339_opt(expires),
    })))
}

pub async fn send_test(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let org = auth.org_id.clone();
    let ep = state.db.run(move |conn| endpoints::find(conn, &org, &id)).await?;
    if ep.status != EndpointStatus::Active {
        return Err(ApiError::invalid_field(&["status"], "the endpoint is disabled"));
    }
    let now = now_ms();
    let event = NewEvent {
        id: new_id("evt"),
        org_id: auth.org_id,
        event_type: "webhook.test".into(),
        payload: json!({"endpoint_id": ep.id, "message": "A test event from herald"}).to_string(),
        correlation_id: None,
        source_id: None,
        created_at: now,
        version: 1,
        latest_version: None,
    };
    match state.engine.publish(event, Some(ep)).await? {
        Published::Created { event, deliveries } => Ok(HttpResponse::Accepted().json(json!({
            "delivery_id": deliveries.first().map(|(d, _)| d.id.clone()),
            "event_id": event.id,
        }))),
        Published::Existing { .. } => Err(ApiError::internal("test event id collided")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    since: String,
    until: Option<String>,
    status: Option<String>,
}

pub async fn replay(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Replay>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let since = super::time_field("since", Some(&b.since))?;
    let until = super::time_field("until", b.until.as_deref())?;
    let statuses = match b.status.as_deref() {
        None => vec![DeliveryStatus::Failed, DeliveryStatus::Dead],
        Some("failed") => vec![DeliveryStatus::Failed],
        Some("dead") => vec![DeliveryStatus::Dead],
        Some("all") => vec![DeliveryStatus::Failed, DeliveryStatus::Dead, DeliveryStatus::Succeeded],
        Some(_) => return Err(ApiError::invalid_field(&["status"], "must be failed, dead or all")),
    };
    let id = path.into_inner();
    let org = auth.org_id.clone();
    let lookup = id.clone();
    state.db.run(move |conn| endpoints::find(conn, &org, &lookup)).await?;
    let sel = ReplaySelectionOwned {
        org_id: auth.org_id,
        ids: None,
        endpoint_id: Some(id),
        statuses,
        since,
        until,
    };
    let replayed = requeue(&state, sel).await?;
    Ok(HttpResponse::Accepted().json(json!({"replayed": replayed})))
}

pub async fn deliveries(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let org = auth.org_id.clone();
    let lookup = id.clone();
    state.db.run(move |conn| endpoints::find(conn, &org, &lookup)).await?;
    list_page(&state, auth.org_id, Some(id), Vec::new(), &query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterTest {
    /// A sample envelope: `{"type": …, "data": {…}}` (as webhooks carry it).
    payload: serde_json::Value,
    /// A filter to try instead of the endpoint's own.
    #[serde(default, deserialize_with = "present")]
    filter: Option<serde_json::Value>,
}

/// Evaluates a filter (the endpoint's, or one given) against a sample payload, and names
/// the condition that failed.
pub async fn filter_test(
    auth: OrgAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<FilterTest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let id = path.into_inner();
    let ep = state.db.run(move |conn| endpoints::find(conn, &auth.org_id, &id)).await?;
    let filter = match b.filter {
        Some(given) => given,
        None => ep.payload_filter.as_deref().map_or(serde_json::Value::Null, |stored| {
            serde_json::from_str(stored).expect("stored filters are JSON")
        }),
    };
    let Some((_, compiled)) = check_payload_filter("filter", &filter)? else {
        return Ok(HttpResponse::Ok().json(json!({"matches": true, "failed": null, "filter": null})));
    };
    let failed = compiled.explain(&b.payload);
    Ok(HttpResponse::Ok().json(json!({"matches": failed.is_none(), "failed": failed, "filter": filter})))
}
