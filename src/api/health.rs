//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers. The body lists each check either way.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.db.backend.as_str();
    let db_ok = state
        .db
        .run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1").map_err(Into::into)
        })
        .await
        .is_ok();
    let open_circuits = state.metrics.open_circuits.load(std::sync::atomic::Ordering::Relaxed).max(0);
    if db_ok {
        HttpResponse::Ok().json(json!({
            "status": "ready",
            "checks": {"database": "ok", "actors": "ok"},
            "open_circuits": open_circuits,
            "backend": backend,
        }))
    } else {
        HttpResponse::ServiceUnavailable().insert_header(("retry-after", "1")).json(json!({
            "code": "UNAVAILABLE",
            "message": "The database is unreachable",
            "status": "unavailable",
            "checks": {"database": "unreachable"},
            "backend": backend,
        }))
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pending = state.db.run(crate::store::deliveries::count_pending).await.ok();
    let gauges = pending.map(|pending_deliveries| crate::metrics::Gauges { pending_deliveries });
    let mut out = String::with_capacity(4096);
    state.metrics.render(gauges.as_ref(), &mut out);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}
