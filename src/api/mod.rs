//! HTTP routes. `ROUTES` is the one list of every route: the app registers it and
//! `/openapi.json` describes it, so the description cannot drift from what is served.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod events;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod health;
pub mod idempotency;
pub mod inbound;
pub mod json;
pub mod list_filters;
pub mod middleware;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod sessions;
pub mod sources;
pub mod stats;
pub mod stream;

use actix_web::http::Method;
use actix_web::{HttpResponse, Route, web};

use crate::error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    ApiKey,
    Admin,
    /// A provider's signature over the body (inbound webhooks).
    Signature,
}

pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    pub success: u16,
    pub route: fn() -> Route,
}

macro_rules! route {
    ($method:ident $path:literal => $handler:path, $success:literal, $access:ident, $summary:literal) => {
        RouteSpec {
            method: stringify!($method),
            path: $path,
            summary: $summary,
            access: Access::$access,
            success: $success,
            route: || web::method(Method::$method).to($handler),
        }
    };
}

pub const ROUTES: &[RouteSpec] = &[
    route!(GET "/" => crate::dashboard::index, 200, Public, "The web page"),
    route!(GET "/dashboard/app.js" => crate::dashboard::script, 200, Public, "The web page's script (the entry module)"),
    // After /dashboard/app.js, which it would otherwise match.
    route!(GET "/dashboard/{name}.js" => crate::dashboard::module, 200, Public, "A module of the web page's script"),
    route!(GET "/dashboard/app.css" => crate::dashboard::style, 200, Public, "The web page's style sheet"),
    route!(GET "/healthz" => health::healthz, 200, Public, "Liveness"),
    route!(GET "/readyz" => health::readyz, 200, Public, "Readiness: database reachable"),
    route!(GET "/metrics" => health::metrics, 200, Public, "Prometheus metrics"),
    route!(GET "/openapi.json" => openapi::serve, 200, Public, "This OpenAPI description"),
    route!(POST "/v1/orgs" => admin::create_org, 201, Admin, "Create an organisation"),
    route!(PATCH "/v1/orgs/{org_id}" => admin::update_org, 200, Admin, "Change an organisation's rate limit, quotas (max_endpoints, max_streams) and retention_events"),
    route!(POST "/v1/orgs/{org_id}/api-keys" => admin::create_api_key, 201, Admin, "Create an API key (shown only here)"),
    route!(GET "/v1/orgs/{org_id}/api-keys" => api_keys::admin_list, 200, Admin, "An organisation's live API keys (never the keys themselves)"),
    route!(DELETE "/v1/orgs/{org_id}/api-keys/{id}" => api_keys::admin_revoke, 204, Admin, "Revoke an organisation's API key (and its dashboard sessions)"),
    route!(GET "/v1/api-keys" => api_keys::list, 200, ApiKey, "This organisation's live API keys (id, prefix, created_at, last_used_at; ?from=&to=)"),
    route!(POST "/v1/api-keys" => api_keys::create, 201, ApiKey, "A new API key for this organisation (shown only here)"),
    route!(DELETE "/v1/api-keys/{id}" => api_keys::revoke, 204, ApiKey, "Revoke an API key (and its dashboard sessions) on every node within 1 s"),
    route!(POST "/v1/event-types" => event_types::create, 201, ApiKey, "Register an event type"),
    route!(GET "/v1/event-types" => event_types::list, 200, ApiKey, "List event types (?from=&to=)"),
    route!(POST "/v1/endpoints" => endpoints::create, 201, ApiKey, "Subscribe an endpoint"),
    route!(GET "/v1/endpoints" => endpoints::list, 200, ApiKey, "List endpoints (?status=&from=&to=)"),
    route!(GET "/v1/endpoints/{id}" => endpoints::get, 200, ApiKey, "One endpoint, with its circuit and delivery counts"),
    route!(PATCH "/v1/endpoints/{id}" => endpoints::update, 200, ApiKey, "Change an endpoint"),
    route!(DELETE "/v1/endpoints/{id}" => endpoints::delete, 204, ApiKey, "Unsubscribe; its pending deliveries stop"),
    route!(POST "/v1/endpoints/{id}/rotate-secret" => endpoints::rotate_secret, 200, ApiKey, "New secret; the old one signs beside it for 24 h"),
    route!(GET "/v1/endpoints/{id}/secret" => endpoints::secret, 200, ApiKey, "The endpoint's signing secret (the only read of it after create and rotate)"),
    route!(POST "/v1/endpoints/{id}/test" => endpoints::send_test, 202, ApiKey, "Send a webhook.test event to this endpoint"),
    route!(POST "/v1/endpoints/{id}/replay" => endpoints::replay, 202, ApiKey, "Re-deliver {since, until?, status?}"),
    route!(POST "/v1/endpoints/{id}/filter-test" => endpoints::filter_test, 200, ApiKey, "Evaluate a payload filter {payload, filter?} against a sample; names the condition that failed"),
    route!(GET "/v1/endpoints/{id}/deliveries" => endpoints::deliveries, 200, ApiKey, "An endpoint's delivery log (?status=pending,failed&from=&to=)"),
    route!(POST "/v1/events" => events::publish, 202, ApiKey, "Publish an event (?wait=true answers after the first attempts)"),
    route!(GET "/v1/events" => events::list, 200, ApiKey, "List events (?type=&from=&to=)"),
    // Before /v1/events/{id}, which would otherwise match "stream".
    route!(GET "/v1/events/stream" => stream::stream, 200, ApiKey, "Server-Sent Events (?types=a,b.*; ?filter= a payload filter; Last-Event-ID resumes; ?token=; ?unnamed=true omits event: lines)"),
    route!(POST "/v1/stream-tokens" => stream::create_token, 201, ApiKey, "A short-lived token for ?token= on the stream"),
    route!(GET "/v1/events/{id}" => events::get, 200, ApiKey, "One event with the status of each delivery"),
    route!(GET "/v1/deliveries/{id}" => deliveries::get, 200, ApiKey, "One delivery with its attempts"),
    route!(POST "/v1/deliveries/{id}/retry" => deliveries::retry, 202, ApiKey, "Try a delivery again now"),
    route!(POST "/v1/deliveries/{id}/cancel" => deliveries::cancel, 200, ApiKey, "Mark a pending delivery failed (cancelled): a FIFO endpoint's queue moves on"),
    route!(GET "/v1/dead-letters" => deliveries::dead_letters, 200, ApiKey, "Deliveries that exhausted their retries (?endpoint_id=&from=&to=)"),
    route!(POST "/v1/sources" => sources::create, 201, ApiKey, "Create an inbound source {name, kind, secret, event_type_prefix?}"),
    route!(GET "/v1/sources" => sources::list, 200, ApiKey, "List inbound sources (?from=&to=)"),
    route!(GET "/v1/sources/{id}" => sources::get, 200, ApiKey, "One inbound source"),
    route!(DELETE "/v1/sources/{id}" => sources::delete, 204, ApiKey, "Delete an inbound source"),
    route!(POST "/v1/sources/{id}/rotate-secret" => sources::rotate_secret, 200, ApiKey, "Accept a new provider secret (the old one for 24 h)"),
    route!(GET "/v1/sources/{id}/receipts" => sources::receipts, 200, ApiKey, "What arrived at a source (?outcome=accepted,duplicate,rejected&from=&to=)"),
    route!(POST "/v1/inbound/{source_id}" => inbound::ingest, 200, Signature, "A provider's webhook, authenticated by its signature"),
    route!(POST "/v1/dead-letters/replay" => deliveries::replay_dead_letters, 202, ApiKey, "Re-queue dead letters {ids?, endpoint_id?}"),
    route!(POST "/v1/sessions" => sessions::create, 201, Public, "Sign in {key}: sets an HttpOnly session cookie for the dashboard"),
    route!(GET "/v1/sessions" => sessions::current, 200, Public, "The session the cookie stands for (401 when signed out)"),
    route!(DELETE "/v1/sessions" => sessions::delete, 204, Public, "Sign out: the cookie stops working"),
    route!(GET "/v1/stats" => stats::get, 200, ApiKey, "Attempts per minute by outcome and their latency (?minutes=60)"),
];

/// Registers every route, one resource per path, each answering 405 to other methods.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    for spec in ROUTES {
        if !paths.contains(&spec.path) {
            paths.push(spec.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        let mut allow = Vec::new();
        for spec in ROUTES.iter().filter(|s| s.path == path) {
            resource = resource.route((spec.route)());
            allow.push(spec.method);
        }
        let allow = allow.join(", ");
        cfg.service(resource.default_service(web::to(move || method_not_allowed(allow.clone()))));
    }
    #[cfg(feature = "fault-injection")]
    faults::configure(cfg);
}

/// A time given by a client (RFC 3339 or a date) as unix ms, or a validation error naming
/// the field.
pub fn time_field(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            crate::timefmt::parse_time(v)
                .ok_or_else(|| ApiError::invalid_field(&[field], "must be an RFC 3339 time or a date"))
        })
        .transpose()
}

/// A resource's `description`: at most 1000 bytes, no control characters but line breaks.
pub fn check_description(description: Option<&str>) -> Result<(), ApiError> {
    if description.is_some_and(|d| d.len() > 1000 || d.chars().any(|c| c.is_control() && c != '\n')) {
        return Err(ApiError::invalid_field(
            &["description"],
            "at most 1000 characters, no control characters",
        ));
    }
    Ok(())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("Route"))
}

/// RFC 9110: a 405 names the methods the resource has.
async fn method_not_allowed(allow: String) -> HttpResponse {
    use actix_web::ResponseError;
    let mut response = ApiError::method_not_allowed().error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(actix_web::http::header::ALLOW, value);
    }
    response
}
