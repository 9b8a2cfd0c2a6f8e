//! `GET /v1/events/stream`: Server-Sent Events, one `StreamActor` per connection, started
//! by the `StreamHub` on the worker thread that serves the connection.
//! `POST /v1/stream-tokens`: short-lived tokens for clients that cannot send headers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ContentEncoding;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::actors::stream_actor::{ConnSocket, Outbox, StreamBody, StreamSpec};
use crate::actors::stream_frames::comment;
use crate::actors::stream_hub::{Refused, Subscribe};
use crate::api::auth::{OrgAuth, authenticate};
use crate::api::json::Json;
use crate::delivery::payload_filter::PayloadFilter;
use crate::delivery::type_patterns::is_type_pattern;
use crate::error::ApiError;
use crate::ids::{now_ms, secret_token, sha256_hex};
use crate::state::AppState;
use crate::store::{orgs, stream_tokens};
use crate::timefmt::rfc3339;

/// What a client is told to wait before reconnecting.
const RETRY_HINT: Duration = Duration::from_secs(2);
const TOKEN_TTL_MS: i64 = 15 * 60 * 1000;
const MAX_TYPES: usize = 50;

/// Parses a type filter list: exact names, `prefix.*`, or `*`.
fn parse_types(field: &str, items: Vec<String>) -> Result<Vec<String>, ApiError> {
    if items.len() > MAX_TYPES {
        return Err(ApiError::invalid_field(&[field], format!("at most {MAX_TYPES} types")));
    }
    for t in &items {
        if !is_type_pattern(t) {
            return Err(ApiError::invalid_field(
                &[field],
                format!("{t:?} is not an event type or a prefix like order.*"),
            ));
        }
    }
    Ok(items)
}

fn split_types(query: &HashMap<String, String>) -> Result<Vec<String>, ApiError> {
    let items = query
        .get("types")
        .map(|s| s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default();
    parse_types("types", items)
}

fn last_event_id(req: &HttpRequest, query: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    let raw = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query.get("last_event_id").cloned());
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid_field(&["Last-Event-ID"], "must be an event sequence number")),
    }
}

/// Whose stream this is: a stream token's organisation (with the types it is bound to, if
/// any, in place of the asked ones), or else the API key's or session's.
async fn stream_owner(
    req: &HttpRequest,
    state: &AppState,
    query: &HashMap<String, String>,
    types: &mut Vec<String>,
) -> Result<String, ApiError> {
    let Some(token) = query.get("token") else { return Ok(authenticate(req).await?.org_id) };
    let hash = sha256_hex(token.as_bytes());
    let found = state.db.run(move |conn| stream_tokens::find_valid(conn, &hash, now_ms())).await?;
    let (org_id, bound) = found.ok_or_else(|| ApiError::unauthorized("Invalid or expired stream token"))?;
    let bound: Vec<String> = bound.and_then(|b| serde_json::from_str(&b).ok()).unwrap_or_default();
    if !bound.is_empty() {
        if !types.is_empty() && *types != bound {
            return Err(ApiError::forbidden("This token is bound to other event types"));
        }
        *types = bound;
    }
    Ok(org_id)
}

/// `unnamed`: frames without the `event:` line (for `EventSource.onmessage`).
fn named_frames(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("unnamed").map(String::as_str) {
        None | Some("false" | "0") => Ok(true),
        Some("true" | "1" | "") => Ok(false),
        Some(_) => Err(ApiError::invalid_field(&["unnamed"], "must be true or false")),
    }
}

/// `filter`: a payload filter (JSON, as endpoints take it), compiled.
fn payload_filter(query: &HashMap<String, String>) -> Result<Option<PayloadFilter>, ApiError> {
    let Some(text) = query.get("filter").filter(|f| !f.is_empty()) else { return Ok(None) };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_field(&["filter"], format!("not JSON: {e}")))?;
    let checked = crate::api::endpoints::check_payload_filter("filter", &value)?;
    let (_, compiled) =
        checked.ok_or_else(|| ApiError::invalid_field(&["filter"], "must be an object of conditions"))?;
    Ok(Some(compiled))
}

fn too_many_streams(max_streams: u32) -> ApiError {
    ApiError::rate_limited_because(
        format!("This organisation holds its max_streams ({max_streams}) open streams already"),
        1,
    )
}

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut types = split_types(&query)?;
    let by_token = query.contains_key("token");
    let org_id = stream_owner(&req, &state, &query, &mut types).await?;
    let lookup = org_id.clone();
    let org = state
        .db
        .run(move |conn| orgs::find(conn, &lookup))
        .await?
        .ok_or_else(|| ApiError::unauthorized("Invalid or expired stream token"))?;
    if by_token {
        // A token stands for its organisation's key: its streams spend the same allowance.
        let status = state.limiter.check(&org.id, org.rate_limit_per_minute.max(1) as u32);
        if !status.allowed {
            state.metrics.rate_limited.inc();
            return Err(ApiError::rate_limited(status.retry_after_secs));
        }
    }
    let max_streams = orgs::quota(org.max_streams, state.settings.limits.max_streams);
    let resume_after = last_event_id(&req, &query)?;
    let named = named_frames(&query)?;
    // A resume from before what retention kept starts at the oldest kept event, and says so.
    let purged_note = resume_after.filter(|after| *after < org.purged_through_seq).map(|after| {
        comment(&format!(
            "events after {after} up to {} are no longer kept (retention); resuming from the oldest kept one",
            org.purged_through_seq
        ))
    });
    let retry_hint = format!("retry: {}\n\n", RETRY_HINT.as_millis());
    let sse = &state.settings.sse;
    let socket = req.conn_data::<ConnSocket>().copied();
    let outbox = Outbox::new(sse.mailbox, sse.mailbox_bytes, retry_hint.as_bytes(), socket);
    if let Some(note) = purged_note {
        outbox.comment(&note);
    }
    let filter = payload_filter(&query)?;
    let spec = Arc::new(StreamSpec::new(org_id, types, named, filter));
    let engine = &state.engine;
    let body = StreamBody::new(outbox.clone(), spec.id, engine.hub.clone(), engine.ctx.clone());
    let subscribe = Subscribe {
        spec,
        outbox,
        arbiter: actix::Arbiter::current(),
        resume_after,
        max: max_streams as usize,
    };
    engine.hub.send(subscribe).await.map_err(|_| ApiError::unavailable())?.map_err(
        |refused| match refused {
            Refused::Closing => ApiError::unavailable(),
            Refused::Quota => too_many_streams(max_streams),
        },
    )?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(ContentEncoding::Identity)
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .body(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    types: Option<Vec<String>>,
}

pub async fn create_token(
    auth: OrgAuth,
    state: web::Data<AppState>,
    body: Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let types = parse_types("types", body.0.types.unwrap_or_default())?;
    let token = secret_token::<24>("st");
    let expires_at = now_ms() + TOKEN_TTL_MS;
    let (hash, org, key_id) = (sha256_hex(token.as_bytes()), auth.org_id, auth.key_id);
    let stored_types = (!types.is_empty()).then(|| serde_json::to_string(&types).expect("strings serialise"));
    state
        .db
        .run(move |conn| {
            stream_tokens::insert(conn, &hash, &org, &key_id, stored_types.as_deref(), expires_at)
        })
        .await?;
    Ok(HttpResponse::Created()
        .json(json!({"token": token, "expires_at": rfc3339(expires_at), "types": types})))
}
