//! The heavy tests: memory (a real herald process each, 300 MB of payloads published at it)
//! and the Janitor's purge rate (20,000 events). A test
//! binary of their own, so that they never run beside the timing-sensitive tests in
//! `tests/api` (cargo runs test binaries one after another).

#![allow(dead_code)]

#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/memory.rs"]
mod memory;
#[path = "api/node.rs"]
mod node;
#[path = "api/purge.rs"]
mod purge;
#[path = "api/receiver.rs"]
mod receiver;
#[path = "api/sse_client.rs"]
mod sse_client;
