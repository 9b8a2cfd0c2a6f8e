//! Pure delivery logic: signatures, retry policy, circuit breaker and SSRF guard.
pub mod circuit;
pub mod retry;
pub mod signing;
pub mod ssrf;
