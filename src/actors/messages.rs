//! Messages that cross between the engine's actors.

use std::sync::Arc;

use actix::prelude::*;

use super::{EndpointSnapshot, Job};
use crate::domain::DeliveryStatus;
use crate::store::deliveries::DeliveryUpdate;
use crate::store::endpoints::CircuitUpdate;

/// Deliveries for one endpoint, to be attempted now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch {
    pub endpoint: Arc<EndpointSnapshot>,
    pub jobs: Vec<Job>,
}

/// An endpoint's settings changed (URL, secret, limits, filters).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndpointUpdated(pub Arc<EndpointSnapshot>);

/// An endpoint was deleted or disabled: stop its actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndpointGone(pub String);

/// Another node changed this endpoint: its owner reloads the row.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndpointChanged(pub String);

/// The Scheduler renewed this node's endpoints: `owned` now, and `give_up` (rows this node
/// still has but that belong on another node now) to hand over once their actors finish.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Owned {
    pub owned: std::collections::HashSet<String>,
    pub give_up: Vec<String>,
}

/// Something becomes due at this unix-ms time: claim then.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct WakeAt(pub i64);

/// Results to write, with the endpoint's circuit as it stands after them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Record {
    pub updates: Vec<DeliveryUpdate>,
    pub circuit: Option<CircuitUpdate>,
    /// Once written, the Scheduler claims what is due (a FIFO endpoint's next delivery).
    pub wake_scheduler: bool,
}

/// The first attempt's outcome, for a publisher waiting on it.
#[derive(Debug, Clone)]
pub struct AttemptSummary {
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// The Scheduler has answered an endpoint actor's refill (its deliveries, if any, were
/// handed to the Registry first).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RefillDone(pub String);

/// Test builds only: the actor that receives it panics, as a bug would, so tests can prove
/// its supervisor replaces it.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct Panic;
