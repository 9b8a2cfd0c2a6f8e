//! The web page at `/`, embedded in the binary.

use actix_web::HttpResponse;

const INDEX: &str = include_str!("index.html");

pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("content-security-policy", "default-src 'self'; style-src 'unsafe-inline'"))
        .body(INDEX)
}
