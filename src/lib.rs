//! herald: an actor-model event broker. `startup::Application` builds the whole server;
//! `main.rs` and the integration tests both start it from here.

pub mod actors;
pub mod api;
pub mod client_commands;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod ids;
pub mod json_schema;
pub mod metrics;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod store;
pub mod timefmt;

pub use config::Settings;
pub use startup::Application;
