//! The web page at `/`, its files embedded in the binary.

use actix_web::HttpResponse;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// No inline scripts, nothing from elsewhere: the page talks only to this herald.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

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
    file("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}
