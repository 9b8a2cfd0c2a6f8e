//! Test builds only (the `fault-injection` feature): `POST /v1/admin/faults/panic` makes
//! actors panic, as a bug would, so the test suite can prove their supervisors replace
//! them. Release builds have no such route.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::actors::registry::PanicEndpoint;
use crate::actors::stream_hub::PanicStreams;
use crate::api::auth::AdminAuth;
use crate::api::json::Json;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanicRequest {
    /// This endpoint's actor panics.
    endpoint_id: Option<String>,
    /// Every stream actor of this organisation panics.
    streams_of_org: Option<String>,
}

pub async fn panic(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: Json<PanicRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut endpoint = false;
    if let Some(id) = body.0.endpoint_id {
        endpoint =
            state.engine.registry.send(PanicEndpoint(id)).await.map_err(|_| ApiError::unavailable())?;
    }
    if let Some(org) = body.0.streams_of_org {
        state.engine.hub.do_send(PanicStreams(org));
    }
    Ok(HttpResponse::Ok().json(json!({"endpoint_actor_found": endpoint})))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/faults/panic", web::post().to(panic));
}
