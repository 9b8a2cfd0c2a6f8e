//! # herald-client
//!
//! The client library of [herald](https://github.com/herald-broker/herald), an event
//! broker that delivers events as signed webhooks and streams them over Server-Sent
//! Events. It is built on `awc` and actix-web, for services in the actix ecosystem:
//!
//! - **API calls** ([`Client`]): a typed method per route, with the error JSON as
//!   [`Error::Api`]. Connection errors, timeouts, `429` and `5xx` are retried with
//!   exponential backoff and jitter (honouring `Retry-After`); other `4xx` never are. Every
//!   try of one `POST` carries the same `Idempotency-Key`, so a retry after a lost answer
//!   cannot publish twice. Each try has a timeout (10 s by default). The `RateLimit-*`
//!   headers are tracked: when the allowance is spent the client waits for the reset rather
//!   than send a request herald will refuse. After 5 consecutive failures a circuit
//!   breaker fails calls fast for 30 s, then lets one probe through.
//! - **Lists** ([`Pages`]) are `Stream`s that follow `next_cursor`.
//! - **The event stream** ([`Client::subscribe`]): resumes with `Last-Event-ID` across
//!   disconnects and herald restarts, reconnects with backoff, and hands each event to the
//!   application once, in order.
//! - **Receiving webhooks** ([`webhook`], [`receiver`]): verification of both of herald's
//!   signature schemes, and [`VerifiedWebhook`], an actix-web extractor that verifies the
//!   raw body, refuses stale or forged requests with `401`, and collapses redeliveries.
//!
//! ## Publishing
//!
//! ```no_run
//! use herald_client::{Client, NewEvent};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), herald_client::Error> {
//! let herald = Client::new("http://127.0.0.1:8080", std::env::var("HERALD_API_KEY").unwrap());
//! let event = herald.publish(&NewEvent::new("order.created", json!({"order_id": 42}))).await?;
//! println!("published {} (seq {})", event.id, event.seq);
//! # Ok(()) }
//! ```
//!
//! ## Errors
//!
//! ```no_run
//! # async fn run(herald: herald_client::Client) {
//! use herald_client::{Error, NewEvent};
//!
//! match herald.publish(&NewEvent::new("Not A Type", serde_json::json!({}))).await {
//!     Err(Error::Api(e)) if e.code == "VALIDATION_ERROR" => {
//!         for issue in &e.issues {
//!             eprintln!("{issue}");
//!         }
//!     }
//!     Err(e) if e.is_retriable() => eprintln!("herald is unreachable for now: {e}"),
//!     Err(e) => eprintln!("{e}"),
//!     Ok(_) => {}
//! }
//! # }
//! ```
#![warn(missing_docs)]

mod api;
mod backoff;
mod breaker;
mod error;
mod http;
mod models;
mod pages;
mod rate_limit;
pub mod receiver;
mod sse;
mod stream;
pub mod webhook;

pub use error::{ApiError, Error, Issue, PathSegment};
pub use http::{Client, ClientBuilder};
pub use models::*;
pub use pages::Pages;
pub use receiver::{
    DedupeStore, MemoryDedupe, Seen, VerifiedWebhook, WebhookConfig, WebhookEvent, WebhookRejection,
};
pub use stream::{EventStream, StreamEvent, StreamOptions};
