//! The web page at `/`, its files embedded in the binary: the page, its style sheet, and its
//! script as JavaScript modules, `app.js` the entry that imports the others.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The modules `app.js` imports, each served at `/dashboard/{name}.js`.
const MODULES: &[(&str, &str)] = &[
    ("api", include_str!("api.js")),
    ("charts", include_str!("charts.js")),
    ("dead_letters", include_str!("dead_letters.js")),
    ("endpoint_cache", include_str!("endpoint_cache.js")),
    ("endpoint_log", include_str!("endpoint_log.js")),
    ("endpoints", include_str!("endpoints.js")),
    ("events", include_str!("events.js")),
    ("live", include_str!("live.js")),
    ("messages", include_str!("messages.js")),
    ("poller", include_str!("poller.js")),
    ("session", include_str!("session.js")),
    ("sources", include_str!("sources.js")),
    ("state", include_str!("state.js")),
    ("util", include_str!("util.js")),
];

/// No inline scripts, nothing from elsewhere: the page talks only to this herald.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

fn file(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("content-security-policy", CSP))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "no-referrer"))
        .body(body)
}

pub async fn index() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> HttpResponse {
    file(JAVASCRIPT, SCRIPT)
}

/// One of the modules; any other name is an unknown route.
pub async fn module(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    MODULES
        .iter()
        .find(|(known, _)| *known == name.as_str())
        .map(|(_, body)| file(JAVASCRIPT, body))
        .ok_or_else(|| ApiError::not_found("Route"))
}

pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}
