//! `GET /v1/stats`: what the dashboard charts: attempts per minute by outcome and their
//! latency, over the last `?minutes=` (default 60).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::api::auth::OrgAuth;
use crate::error::ApiError;
use crate::ids::now_ms;
use crate::state::AppState;
use crate::store::stats::{self, LATENCY_BUCKETS_MS};
use crate::timefmt::rfc3339;

const MAX_MINUTES: i64 = 24 * 60;

pub async fn get(
    auth: OrgAuth,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let minutes = match query.get("minutes") {
        None => 60,
        Some(v) => v.parse::<i64>().ok().filter(|m| (1..=MAX_MINUTES).contains(m)).ok_or_else(|| {
            ApiError::invalid_field(&["minutes"], format!("must be a number from 1 to {MAX_MINUTES}"))
        })?,
    };
    let now = now_ms();
    // Whole minutes, so the first bar is not a partial one.
    let since = (now / 60_000 - (minutes - 1)) * 60_000;
    let org = auth.org_id;
    let (rows, buckets) = state.db.run(move |conn| stats::attempts_since(conn, &org, since)).await?;
    let minutes: Vec<_> = rows
        .iter()
        .map(|r| {
            let attempts = (r.succeeded + r.http_error + r.transport_error).max(1);
            json!({
                "minute": rfc3339(r.minute * 60_000),
                "succeeded": r.succeeded,
                "http_error": r.http_error,
                "transport_error": r.transport_error,
                "latency_avg_ms": (r.total_ms as f64 / attempts as f64 * 10.0).round() / 10.0,
                "latency_max_ms": r.max_ms,
            })
        })
        .collect();
    let mut counts = vec![0i64; LATENCY_BUCKETS_MS.len() + 1];
    for b in buckets {
        if let Some(slot) = usize::try_from(b.bucket).ok().and_then(|i| counts.get_mut(i)) {
            *slot += b.count;
        }
    }
    let histogram: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(i, count)| json!({"le_ms": LATENCY_BUCKETS_MS.get(i), "count": count}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "from": rfc3339(since),
        "to": rfc3339(now),
        "minutes": minutes,
        "latency_histogram": histogram,
    })))
}
