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
    if db_ok {
        HttpResponse::Ok().json(json!({"status": "ready", "checks": {"database": "ok"}, "backend": backend}))
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
    let mut out = String::with_capacity(4096);
    state.metrics.render(&mut out);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}
