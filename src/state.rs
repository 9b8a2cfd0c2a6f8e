//! What every handler shares.

use std::sync::Arc;

use crate::actors::Engine;
use crate::actors::inbound::Inbound;
use crate::api::auth::KeyCache;
use crate::api::event_types::SchemaCache;
use crate::api::rate_limit::RateLimiter;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::Db;

pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub keys: KeyCache,
    pub schemas: SchemaCache,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    pub engine: Engine,
    pub inbound: actix::Addr<Inbound>,
}
