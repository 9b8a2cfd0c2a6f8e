//! Liveness, readiness and metrics.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::api::auth::{bearer_token, constant_time_eq};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers. The body lists each check either way, with this
/// node's id and how many nodes share the database.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.db.backend.as_str();
    let alive_since = crate::ids::now_ms() - 3 * state.settings.delivery.lease.as_millis() as i64;
    let nodes = state.db.run(move |conn| crate::store::nodes::alive(conn, alive_since)).await;
    let open_circuits = state.metrics.open_circuits.get().max(0);
    let node = &state.engine.ctx.node_id;
    match nodes {
        Ok(nodes) => HttpResponse::Ok().json(json!({
            "status": "ready",
            "checks": {"database": "ok", "actors": "ok"},
            "open_circuits": open_circuits,
            "backend": backend,
            "node": node,
            "nodes_alive": nodes,
        })),
        Err(_) => HttpResponse::ServiceUnavailable().insert_header(("retry-after", "1")).json(json!({
            "code": "UNAVAILABLE",
            "message": "The database is unreachable",
            "status": "unavailable",
            "checks": {"database": "unreachable"},
            "backend": backend,
            "node": node,
        })),
    }
}

/// Prometheus text. Counted in memory (the Janitor refreshes what comes from the store), so a
/// scrape never reads a table. With `metrics.token` set, it wants that bearer token.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.settings.metrics.token {
        let given = bearer_token(&req).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
            return Err(ApiError::unauthorized("/metrics wants Authorization: Bearer <metrics.token>"));
        }
    }
    let mut out = String::with_capacity(4096);
    state.metrics.render(&mut out);
    Ok(HttpResponse::Ok().content_type(crate::metrics::CONTENT_TYPE).body(out))
}
