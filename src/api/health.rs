//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, web};
use serde_json::json;

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
    let open_circuits = state.metrics.open_circuits.load(std::sync::atomic::Ordering::Relaxed).max(0);
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

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let alive_since = crate::ids::now_ms() - 3 * state.settings.delivery.lease.as_millis() as i64;
    let gauges = state
        .db
        .run(move |conn| {
            Ok(crate::metrics::Gauges {
                pending_deliveries: crate::store::deliveries::count_pending(conn)?,
                nodes_alive: crate::store::nodes::alive(conn, alive_since)?,
            })
        })
        .await
        .ok();
    let mut out = String::with_capacity(4096);
    state.metrics.render(gauges.as_ref(), &mut out);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}
