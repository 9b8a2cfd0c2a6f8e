//! Delivery rules: signing, retries, the circuit breaker, the SSRF guard, the envelope, the
//! event type patterns and one HTTP attempt. Pure logic apart from `sender` and `tls`; the actors put them to work.

pub mod circuit;
pub mod envelope;
pub mod payload_filter;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod ssrf;
pub mod tls;
pub mod type_patterns;
