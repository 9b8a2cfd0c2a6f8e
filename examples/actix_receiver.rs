//! Receiving herald's webhooks in an actix-web app, with `herald_client`'s `VerifiedWebhook`
//! extractor.
//!
//! ```text
//! HERALD_WEBHOOK_SECRET=whsec_… cargo run --example actix_receiver
//! ```
//!
//! It listens on `0.0.0.0:$PORT` (3000 unless set) and takes `POST /webhooks`, signed with the
//! endpoint's Standard Webhooks secret. For each new event it prints one JSON line,
//! `{"id":…,"type":…}`, and answers `204`; a redelivery of an event it has handled answers
//! `204` and prints nothing; a bad signature, or a timestamp more than 5 minutes away,
//! answers `401`. `RUST_LOG=warn` shows why a request was refused.
//!
//! To try it without an endpoint, forward a stream of events to it:
//! `herald listen --forward-to http://127.0.0.1:3000/webhooks --secret whsec_…`.

use std::io::Write;

use actix_web::{App, HttpResponse, HttpServer, web};
use herald_client::receiver::{VerifiedWebhook, WebhookConfig};

async fn receive(event: VerifiedWebhook) -> actix_web::Result<HttpResponse> {
    // Printing is this app's work. Should it fail, `event` is dropped unhandled and herald's
    // retry is processed again.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::json!({ "id": event.id, "type": event.event_type }))?;
    stdout.flush()?;
    drop(stdout);
    event.handled();
    Ok(HttpResponse::NoContent().finish())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::init();
    let secret = match std::env::var("HERALD_WEBHOOK_SECRET") {
        Ok(secret) if !secret.trim().is_empty() => secret,
        _ => exit("HERALD_WEBHOOK_SECRET is not set: give the endpoint's whsec_… secret"),
    };
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().unwrap_or_else(|_| exit(&format!("PORT is not a port number: {port}"))),
        Err(_) => 3000,
    };

    // Built once, so that every worker shares the record of handled events.
    let config = WebhookConfig::new(secret);
    let server = HttpServer::new(move || {
        App::new().app_data(config.clone()).route("/webhooks", web::post().to(receive))
    })
    .bind(("0.0.0.0", port))?;
    eprintln!("listening on http://0.0.0.0:{port}/webhooks");
    server.run().await
}

fn exit(message: &str) -> ! {
    eprintln!("actix_receiver: {message}");
    std::process::exit(2)
}
