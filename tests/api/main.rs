//! Integration tests: the real server on port 0, real HTTP, real SQLite files and a real
//! PostgreSQL (`TEST_DATABASE_URL`). Every test runs on both backends.

mod helpers;

mod at_rest;
mod cli;
mod client_cli;
mod client_library;
mod cluster;
mod dashboard;
mod delivery;
mod fifo;
mod foundation;
mod inbound;
mod integrity;
mod list_filters;
mod node;
mod outage;
mod payload_filters;
mod receiver;
mod sessions;
mod shutdown;
mod sse_client;
mod stream;
mod supervision;
mod tenant;
mod versions;
