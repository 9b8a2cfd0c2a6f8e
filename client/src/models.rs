//! What herald's API takes and answers, typed.
//!
//! Requests (`New…`, `…Update`, …) serialise to the bodies the routes take; queries
//! (`…Query`) hold a list's filters; answers deserialise from the bodies herald sends.
//! Times are RFC 3339 strings as herald writes them; free-form JSON (event data, schemas,
//! payload filters) stays [`serde_json::Value`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

/// One page of a list: `{data, next_cursor}`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Page<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// The cursor of the next page; `None` on the last one.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The time filters of lists that have no others (API keys, event types, sources).
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RangeQuery {
    /// Rows created at or after this time (RFC 3339 or a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub from: Option<String>,
    /// Rows created at or before this time (a date takes in its whole day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub to: Option<String>,
}

/// Filters of `GET /v1/events`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventQuery {
    /// An event type, or a prefix like `order.*` (sent as `type`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("maxLength" = 130)))]
    pub event_type: Option<String>,
    /// Events created at or after this time (RFC 3339 or a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub from: Option<String>,
    /// Events created at or before this time (a date takes in its whole day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub to: Option<String>,
}

/// Filters of `GET /v1/endpoints`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointQuery {
    /// `active` or `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["active", "disabled"])))]
    pub status: Option<String>,
    /// Endpoints created at or after this time (RFC 3339 or a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub from: Option<String>,
    /// Endpoints created at or before this time (a date takes in its whole day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub to: Option<String>,
}

/// Filters of an endpoint's delivery log, `GET /v1/endpoints/{id}/deliveries`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryQuery {
    /// Statuses to show, comma-separated: `pending`, `succeeded`, `failed`, `dead`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^((pending|succeeded|failed|dead)(,(pending|succeeded|failed|dead))*)?$")))]
    pub status: Option<String>,
    /// Deliveries created at or after this time (RFC 3339 or a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub from: Option<String>,
    /// Deliveries created at or before this time (a date takes in its whole day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub to: Option<String>,
}

/// Filters of `GET /v1/dead-letters`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLetterQuery {
    /// Only this endpoint's dead letters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// Deliveries created at or after this time (RFC 3339 or a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub from: Option<String>,
    /// Deliveries created at or before this time (a date takes in its whole day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub to: Option<String>,
}

/// Filters of a source's receipts, `GET /v1/sources/{id}/receipts`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReceiptQuery {
    /// Outcomes to show, comma-separated: `accepted`, `duplicate`, `rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^((accepted|duplicate|rejected)(,(accepted|duplicate|rejected))*)?$")))]
    pub outcome: Option<String>,
    /// Receipts received at or after this time (RFC 3339 or a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub from: Option<String>,
    /// Receipts received at or before this time (a date takes in its whole day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"format": "date-time"}, {"maxLength": 0}])))]
    pub to: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Organisations and API keys
// ---------------------------------------------------------------------------------------

/// Body of `POST /v1/orgs` (admin).
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewOrg {
    /// The organisation's name (1 to 100 characters).
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[!-~][ -~]{0,99}$")))]
    pub name: String,
    /// Requests per minute (default: the server's setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub rate_limit_per_minute: Option<u32>,
}

impl NewOrg {
    /// An organisation with the server's default rate limit.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), rate_limit_per_minute: None }
    }
}

/// Body of `PATCH /v1/orgs/{org_id}` (admin): only the fields given change.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct OrgUpdate {
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub rate_limit_per_minute: Option<u32>,
    /// Endpoints the organisation may have.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub max_endpoints: Option<u32>,
    /// Event streams it may hold open at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub max_streams: Option<u32>,
    /// How long finished events are kept, like `30d`, `12h` (1s to 36500d).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[1-9][0-9]{0,3}(s|m|h|d)$")))]
    pub retention_events: Option<String>,
}

/// An organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Org {
    /// Its id (`org_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Requests per minute.
    pub rate_limit_per_minute: u32,
    /// Endpoints it may have (its own quota, or the server's).
    #[serde(default)]
    pub max_endpoints: u32,
    /// Streams it may hold open (its own quota, or the server's).
    #[serde(default)]
    pub max_streams: u32,
    /// How long its finished events are kept, like `30d`.
    #[serde(default)]
    pub retention_events: String,
    /// When it was created.
    pub created_at: String,
}

/// An API key as lists show it (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiKey {
    /// Its id (`key_…`).
    pub id: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: String,
    /// When it last authenticated a request.
    #[serde(default)]
    pub last_used_at: Option<String>,
}

/// A new API key: the only answer that shows the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewApiKey {
    /// Its id (`key_…`).
    pub id: String,
    /// The key itself (`hk_…`); keep it, herald stores only its hash.
    pub key: String,
    /// The key's first characters.
    pub prefix: String,
    /// The organisation it belongs to.
    #[serde(default)]
    pub org_id: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: String,
}

// ---------------------------------------------------------------------------------------
// Event types
// ---------------------------------------------------------------------------------------

/// Body of `POST /v1/event-types`: registers a type, or a new version of one.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewEventType {
    /// Dotted name, like `payment.completed`.
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", "maxLength" = 128)))]
    pub name: String,
    /// What the type means.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[ -~\\n]{0,1000}$")))]
    pub description: Option<String>,
    /// A JSON Schema that publishes' `data` must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("type" = ["object", "null"], "additionalProperties" = true)))]
    pub schema: Option<Value>,
    /// The version this schema is (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub version: Option<u32>,
}

impl NewEventType {
    /// A type with no description or schema, version 1.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// A registered event type with its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventType {
    /// Its id (`et_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it means.
    #[serde(default)]
    pub description: Option<String>,
    /// The latest version's schema.
    #[serde(default)]
    pub schema: Option<Value>,
    /// The latest registered version.
    #[serde(default)]
    pub latest_version: u32,
    /// Every registered version, oldest first.
    #[serde(default)]
    pub versions: Vec<EventTypeVersion>,
    /// When it was registered.
    pub created_at: String,
}

/// One version of an event type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventTypeVersion {
    /// The version number.
    pub version: u32,
    /// Its schema, if any.
    #[serde(default)]
    pub schema: Option<Value>,
    /// When it was registered.
    pub created_at: String,
}

// ---------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------

/// Body of `POST /v1/endpoints`: subscribes a URL to event types.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewEndpoint {
    /// Where webhooks are sent.
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^https://[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){1,3}(/[A-Za-z0-9._~-]{0,20}){0,3}$")))]
    pub url: String,
    /// Event types, prefixes like `order.*`, or `*` for every type.
    #[cfg_attr(feature = "schema", schemars(extend("minItems" = 1, "maxItems" = 100, "items" = {"type": "string", "pattern": "^(\\*|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*(\\.\\*)?)$", "maxLength": 130})))]
    pub events: Vec<String>,
    /// What the endpoint is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[ -~\\n]{0,1000}$")))]
    pub description: Option<String>,
    /// Its signing secret (default: a generated `whsec_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[^\\u0000-\\u0020\\u007f]{8,256}$")))]
    pub secret: Option<String>,
    /// `standard-webhooks` (default) or `hmac-sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["standard-webhooks", "hmac-sha256", null])))]
    pub signature_scheme: Option<String>,
    /// At most this many requests per second to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100000)))]
    pub rate_limit_per_second: Option<u32>,
    /// At most this many requests to it at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub max_in_flight: Option<u32>,
    /// Extra headers sent with each webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("propertyNames" = {"pattern": "^X-Custom-[A-Za-z0-9-]{1,40}$"}, "additionalProperties" = {"type": "string", "pattern": "^[ -~]{0,200}$"})))]
    pub headers: Option<BTreeMap<String, String>>,
    /// `fifo` (one at a time, in event order) or `none` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["none", "fifo", null])))]
    pub ordering: Option<String>,
    /// A payload filter: only events whose envelope matches are sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("type" = ["object", "null"], "maxProperties" = 8, "propertyNames" = {"pattern": "^[a-z_]{1,20}(\\.[a-z_]{1,20}){0,3}$"}, "additionalProperties" = {"type": ["string", "number", "boolean"]})))]
    pub filter: Option<Value>,
    /// The version to receive per event type (others get each type's latest).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", "maxLength": 128}, "additionalProperties" = {"type": "integer", "minimum": 1, "maximum": 1000})))]
    pub versions: Option<BTreeMap<String, u32>>,
}

impl NewEndpoint {
    /// An endpoint for `url` receiving `events`, with every other setting left default.
    pub fn new(url: impl Into<String>, events: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { url: url.into(), events: events.into_iter().map(Into::into).collect(), ..Self::default() }
    }
}

/// Body of `PATCH /v1/endpoints/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct EndpointUpdate {
    /// A new URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^https://[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){1,3}(/[A-Za-z0-9._~-]{0,20}){0,3}$")))]
    pub url: Option<String>,
    /// New event types.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("minItems" = 1, "maxItems" = 100, "items" = {"type": "string", "pattern": "^(\\*|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*(\\.\\*)?)$", "maxLength": 130})))]
    pub events: Option<Vec<String>>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[ -~\\n]{0,1000}$")))]
    pub description: Option<String>,
    /// `active` or `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["active", "disabled", null])))]
    pub status: Option<String>,
    /// `standard-webhooks` or `hmac-sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["standard-webhooks", "hmac-sha256", null])))]
    pub signature_scheme: Option<String>,
    /// At most this many requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100000)))]
    pub rate_limit_per_second: Option<u32>,
    /// At most this many requests at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub max_in_flight: Option<u32>,
    /// Replaces every extra header.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("propertyNames" = {"pattern": "^X-Custom-[A-Za-z0-9-]{1,40}$"}, "additionalProperties" = {"type": "string", "pattern": "^[ -~]{0,200}$"})))]
    pub headers: Option<BTreeMap<String, String>>,
    /// `fifo` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["none", "fifo", null])))]
    pub ordering: Option<String>,
    /// A new payload filter; `Some(Value::Null)` removes the filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("type" = ["object", "null"], "maxProperties" = 8, "propertyNames" = {"pattern": "^[a-z_]{1,20}(\\.[a-z_]{1,20}){0,3}$"}, "additionalProperties" = {"type": ["string", "number", "boolean"]})))]
    pub filter: Option<Value>,
    /// New version pins; an empty map removes every pin.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", "maxLength": 128}, "additionalProperties" = {"type": "integer", "minimum": 1, "maximum": 1000})))]
    pub versions: Option<BTreeMap<String, u32>>,
}

/// An endpoint, as herald shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Endpoint {
    /// Its id (`ep_…`).
    pub id: String,
    /// Where webhooks are sent.
    pub url: String,
    /// What it is.
    #[serde(default)]
    pub description: Option<String>,
    /// The event types it receives (`*`, names, prefixes like `order.*`).
    pub events: Vec<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// `standard-webhooks` or `hmac-sha256`.
    #[serde(default)]
    pub signature_scheme: String,
    /// At most this many requests per second.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// At most this many requests at once.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Extra header names, their values masked.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Its payload filter.
    #[serde(default)]
    pub filter: Option<Value>,
    /// The version pinned per event type.
    #[serde(default)]
    pub versions: BTreeMap<String, u32>,
    /// `fifo` or `none`.
    #[serde(default)]
    pub ordering: String,
    /// A FIFO endpoint's queue (`GET /v1/endpoints/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<FifoQueue>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    #[serde(default)]
    pub updated_at: String,
    /// Its signing secret: only in the answer that creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Its circuit breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<Circuit>,
    /// Its deliveries by status (`GET /v1/endpoints/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<DeliveryCounts>,
    /// The node that sends its deliveries (`GET /v1/endpoints/{id}` only; none while disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_node: Option<String>,
}

/// An endpoint's circuit breaker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Circuit {
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Failed attempts in a row.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Until when it stays open (none while closed).
    #[serde(default)]
    pub open_until: Option<String>,
}

/// An endpoint's deliveries counted by status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryCounts {
    /// Waiting for an attempt.
    #[serde(default)]
    pub pending: u64,
    /// Delivered.
    #[serde(default)]
    pub succeeded: u64,
    /// Refused with a non-retriable status, or cancelled.
    #[serde(default)]
    pub failed: u64,
    /// Retries exhausted.
    #[serde(default)]
    pub dead: u64,
    /// Succeeded over finished; none before any finished.
    #[serde(default)]
    pub success_rate: Option<f64>,
}

/// A FIFO endpoint's queue: its head, and whether it waits on that delivery's retries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FifoQueue {
    /// The delivery at the head of the queue.
    #[serde(default)]
    pub head: Option<String>,
    /// Whether the head failed and the queue waits for its next attempt.
    #[serde(default)]
    pub blocked: bool,
    /// The delivery the queue waits on.
    #[serde(default)]
    pub blocked_by: Option<QueueBlocker>,
}

/// The failed delivery at the head of a blocked FIFO queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueBlocker {
    /// Its id (`dlv_…`).
    pub delivery_id: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last attempt's error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The last attempt's HTTP status.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// When it is tried next.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
}

/// An endpoint's signing secret, `GET /v1/endpoints/{id}/secret`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointSecret {
    /// The secret.
    pub secret: String,
    /// Until when the previous secret still signs beside it.
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
}

/// The answer of `POST /v1/endpoints/{id}/rotate-secret`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RotatedSecret {
    /// The new secret.
    pub secret: String,
    /// Until when the old secret still signs beside it (24 h).
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
}

/// Body of `POST /v1/endpoints/{id}/filter-test`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct FilterTest {
    /// A sample envelope: `{"type": …, "data": {…}}`.
    #[cfg_attr(feature = "schema", schemars(extend("type" = "object", "additionalProperties" = true)))]
    pub payload: Value,
    /// A filter to try instead of the endpoint's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("type" = ["object", "null"], "maxProperties" = 8, "propertyNames" = {"pattern": "^[a-z_]{1,20}(\\.[a-z_]{1,20}){0,3}$"}, "additionalProperties" = {"type": ["string", "number", "boolean"]})))]
    pub filter: Option<Value>,
}

impl FilterTest {
    /// Tries the endpoint's own filter against `payload`.
    pub fn new(payload: Value) -> Self {
        Self { payload, filter: None }
    }
}

/// Whether a payload filter matches a sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FilterTestResult {
    /// Whether it matches.
    pub matches: bool,
    /// The condition that failed.
    #[serde(default)]
    pub failed: Option<String>,
    /// The filter that was evaluated (none: the endpoint has none, so everything matches).
    #[serde(default)]
    pub filter: Option<Value>,
}

/// The answer of `POST /v1/endpoints/{id}/test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TestDelivery {
    /// The delivery of the `webhook.test` event.
    #[serde(default)]
    pub delivery_id: Option<String>,
    /// The `webhook.test` event.
    #[serde(default)]
    pub event_id: Option<String>,
}

/// Body of `POST /v1/endpoints/{id}/replay`: re-deliver a time window.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Replay {
    /// From this time (RFC 3339 or a date).
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub since: String,
    /// Up to this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub until: Option<String>,
    /// `failed`, `dead` or `all` (default: failed and dead).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["failed", "dead", "all", null])))]
    pub status: Option<String>,
}

impl Replay {
    /// Failed and dead deliveries since `since`.
    pub fn new(since: impl Into<String>) -> Self {
        Self { since: since.into(), until: None, status: None }
    }
}

/// How many deliveries were queued again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Replayed {
    /// Their number.
    pub replayed: u64,
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// Body of `POST /v1/events`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewEvent {
    /// The event type.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", "maxLength" = 128)))]
    pub event_type: String,
    /// The payload: a JSON object.
    #[cfg_attr(feature = "schema", schemars(extend("type" = "object", "additionalProperties" = true)))]
    pub data: Value,
    /// Your own id: publishing it again returns the existing event.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[A-Za-z0-9_.:-]{1,255}$")))]
    pub id: Option<String>,
    /// Ties related events together.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[ -~]{0,255}$")))]
    pub correlation_id: Option<String>,
    /// The version of its type (default: the latest registered).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub version: Option<u32>,
}

impl NewEvent {
    /// An event of `event_type` carrying `data`.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self { event_type: event_type.into(), data, ..Self::default() }
    }
}

/// The answer of a publish (`202`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Published {
    /// The event's id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was published.
    pub created_at: String,
    /// Its sequence number (the stream's event id).
    pub seq: i64,
    /// The version of its type.
    #[serde(default)]
    pub version: u32,
    /// Deliveries it made.
    pub delivery_count: u64,
}

/// The answer of `POST /v1/events?wait=true`: the event and each delivery's first attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PublishOutcome {
    /// The event's id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was published.
    pub created_at: String,
    /// Its sequence number.
    pub seq: i64,
    /// The version of its type.
    #[serde(default)]
    pub version: u32,
    /// Deliveries it made.
    pub delivery_count: u64,
    /// Each delivery after its first attempt (or `pending` when it had no answer in time).
    #[serde(default)]
    pub deliveries: Vec<DeliveryOutcome>,
}

/// A delivery's state after its first attempt, in a waiting publish's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryOutcome {
    /// The delivery's id.
    pub id: String,
    /// Its endpoint.
    pub endpoint_id: String,
    /// `pending`, `succeeded`, `failed` or `dead`.
    pub status: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempt_count: u32,
    /// The HTTP status the endpoint answered.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// What went wrong.
    #[serde(default)]
    pub error: Option<String>,
}

/// An event (list row, and the event of a delivery).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    /// Its id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was published.
    pub created_at: String,
    /// Its sequence number.
    pub seq: i64,
    /// The version of its type.
    #[serde(default)]
    pub version: u32,
    /// Ties related events together.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Its payload.
    #[serde(default)]
    pub data: Value,
}

/// One event with the status of each of its deliveries, `GET /v1/events/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventDetail {
    /// Its id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was published.
    pub created_at: String,
    /// Its sequence number.
    pub seq: i64,
    /// The version of its type.
    #[serde(default)]
    pub version: u32,
    /// Ties related events together.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Its payload.
    #[serde(default)]
    pub data: Value,
    /// Its deliveries.
    #[serde(default)]
    pub deliveries: Vec<EventDelivery>,
}

/// A delivery as an event's tracking view shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventDelivery {
    /// The delivery's id.
    pub id: String,
    /// Its endpoint.
    pub endpoint_id: String,
    /// `pending`, `succeeded`, `failed` or `dead`.
    pub status: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempt_count: u32,
    /// The last attempt's HTTP status.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// When a pending delivery is tried next.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
}

/// Body of `POST /v1/stream-tokens`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct StreamTokenRequest {
    /// The types the token may stream (names, prefixes like `order.*`); all when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("maxItems" = 50, "items" = {"type": "string", "pattern": "^(\\*|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*(\\.\\*)?)$", "maxLength": 130})))]
    pub types: Option<Vec<String>>,
}

/// A short-lived token for `?token=` on the event stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StreamToken {
    /// The token (`st_…`).
    pub token: String,
    /// When it stops working.
    pub expires_at: String,
    /// The types it may stream (empty: all).
    #[serde(default)]
    pub types: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Deliveries and dead letters
// ---------------------------------------------------------------------------------------

/// A delivery as lists show it (with its event), and the answer of a cancel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Delivery {
    /// Its id (`dlv_…`).
    pub id: String,
    /// Its event (none in a cancel's answer).
    #[serde(default)]
    pub event_id: Option<String>,
    /// Its endpoint.
    pub endpoint_id: String,
    /// `pending`, `succeeded`, `failed` or `dead`.
    pub status: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempt_count: u32,
    /// When a pending delivery is tried next.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// The last attempt's HTTP status.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// The last attempt's error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When it was first attempted.
    #[serde(default)]
    pub first_attempt_at: Option<String>,
    /// When it was last attempted.
    #[serde(default)]
    pub last_attempt_at: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// Its event (in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// A dead letter: a delivery whose retries ran out (its id is the delivery's).
pub type DeadLetter = Delivery;

/// One delivery with its attempts, `GET /v1/deliveries/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryDetail {
    /// Its id (`dlv_…`).
    pub id: String,
    /// Its event.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Its endpoint.
    pub endpoint_id: String,
    /// `pending`, `succeeded`, `failed` or `dead`.
    pub status: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempt_count: u32,
    /// When a pending delivery is tried next.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// The last attempt's HTTP status.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// The last attempt's error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When it was first attempted.
    #[serde(default)]
    pub first_attempt_at: Option<String>,
    /// When it was last attempted.
    #[serde(default)]
    pub last_attempt_at: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// Its attempts, in order.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Attempt {
    /// Its number, from 1.
    pub attempt: u32,
    /// When it started.
    pub started_at: String,
    /// How long it took.
    #[serde(default)]
    pub duration_ms: u64,
    /// The HTTP status the endpoint answered.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// The first 1 KiB of the endpoint's answer.
    #[serde(default)]
    pub response_body: Option<String>,
    /// What went wrong.
    #[serde(default)]
    pub error: Option<String>,
}

/// The answer of `POST /v1/deliveries/{id}/retry`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Retried {
    /// The delivery's id.
    pub id: String,
    /// `pending`: it is tried again now.
    pub status: String,
}

/// Body of `POST /v1/dead-letters/replay`: give `ids`, `endpoint_id`, or both.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
#[cfg_attr(feature = "schema", schemars(extend("anyOf" = [{"required": ["ids"], "properties": {"ids": {"type": "array"}}}, {"required": ["endpoint_id"], "properties": {"endpoint_id": {"type": "string"}}}])))]
pub struct DeadLetterReplay {
    /// These dead letters (delivery ids, at most 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("minItems" = 1, "maxItems" = 1000, "items" = {"type": "string", "pattern": "^dlv_[0-9A-Za-z]{1,40}$"})))]
    pub ids: Option<Vec<String>>,
    /// This endpoint's dead letters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^ep_[0-9A-Za-z]{1,40}$")))]
    pub endpoint_id: Option<String>,
}

impl DeadLetterReplay {
    /// These dead letters.
    pub fn ids(ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { ids: Some(ids.into_iter().map(Into::into).collect()), endpoint_id: None }
    }

    /// Every dead letter of one endpoint.
    pub fn endpoint(endpoint_id: impl Into<String>) -> Self {
        Self { ids: None, endpoint_id: Some(endpoint_id.into()) }
    }
}

// ---------------------------------------------------------------------------------------
// Inbound sources
// ---------------------------------------------------------------------------------------

/// Body of `POST /v1/sources`: where a provider sends its webhooks.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewSource {
    /// Its name.
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[!-~][ -~]{0,99}$")))]
    pub name: String,
    /// `stripe`, `github`, `standard-webhooks` or `hmac-sha256`.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["stripe", "github", "standard-webhooks", "hmac-sha256"])))]
    pub kind: String,
    /// The provider's signing secret.
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[^\\u0000-\\u001f\\u007f]{8,512}$")))]
    pub secret: String,
    /// Put in front of the provider's event types (default `stripe.`/`github.` for those).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^([A-Za-z0-9_-]+\\.){1,3}$")))]
    pub event_type_prefix: Option<String>,
}

impl NewSource {
    /// A source of `kind` verified with `secret`.
    pub fn new(name: impl Into<String>, kind: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { name: name.into(), kind: kind.into(), secret: secret.into(), event_type_prefix: None }
    }
}

/// Body of `POST /v1/sources/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewSourceSecret {
    /// The provider's new secret (the old one is accepted for 24 h).
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[^\\u0000-\\u001f\\u007f]{8,512}$")))]
    pub secret: String,
}

/// An inbound source (its secret is never shown).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Source {
    /// Its id (`src_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `stripe`, `github`, `standard-webhooks` or `hmac-sha256`.
    pub kind: String,
    /// Put in front of the provider's event types.
    #[serde(default)]
    pub event_type_prefix: String,
    /// Where the provider posts: `/v1/inbound/{id}`.
    pub ingest_path: String,
    /// When it was created.
    pub created_at: String,
    /// Until when the previous secret is still accepted.
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
}

/// What arrived at a source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Receipt {
    /// Its id.
    pub id: String,
    /// When it arrived.
    pub received_at: String,
    /// The provider's own id for the event.
    #[serde(default)]
    pub provider_event_id: Option<String>,
    /// Whether its signature verified.
    pub verified: bool,
    /// Whether it repeated one already received.
    #[serde(default)]
    pub duplicate: bool,
    /// Why it was rejected.
    #[serde(default)]
    pub error: Option<String>,
    /// The event it became.
    #[serde(default)]
    pub event_id: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// The `/healthz` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The `/readyz` body when ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// Each check and its result, like `database: ok`.
    #[serde(default)]
    pub checks: BTreeMap<String, String>,
    /// Endpoints whose circuit is open.
    #[serde(default)]
    pub open_circuits: u64,
    /// `postgres` or `sqlite`.
    #[serde(default)]
    pub backend: String,
    /// This node's id.
    #[serde(default)]
    pub node: String,
    /// Nodes sharing the database.
    #[serde(default)]
    pub nodes_alive: u64,
}

/// Delivery attempts per minute and their latency, `GET /v1/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Stats {
    /// Start of the window.
    pub from: String,
    /// End of the window.
    pub to: String,
    /// Per minute, the minutes with attempts.
    #[serde(default)]
    pub minutes: Vec<StatsMinute>,
    /// Attempts by latency bucket.
    #[serde(default)]
    pub latency_histogram: Vec<LatencyBucket>,
}

/// Attempts in one minute, by outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatsMinute {
    /// The minute's start.
    pub minute: String,
    /// Attempts answered with 2xx.
    #[serde(default)]
    pub succeeded: u64,
    /// Attempts answered with another status.
    #[serde(default)]
    pub http_error: u64,
    /// Attempts that got no answer.
    #[serde(default)]
    pub transport_error: u64,
    /// Mean latency.
    #[serde(default)]
    pub latency_avg_ms: f64,
    /// Longest latency.
    #[serde(default)]
    pub latency_max_ms: u64,
}

/// One bucket of the latency histogram.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LatencyBucket {
    /// Its upper bound; none for the last, unbounded one.
    #[serde(default)]
    pub le_ms: Option<u64>,
    /// Attempts in it.
    #[serde(default)]
    pub count: u64,
}

// ---------------------------------------------------------------------------------------
// Dashboard sessions and inbound webhooks
// ---------------------------------------------------------------------------------------

/// The body of `POST /v1/sessions`: an API key to exchange for a session cookie.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct NewSession {
    /// An API key of the organisation.
    pub key: String,
}

/// A dashboard session (`GET /v1/sessions`, `POST /v1/sessions`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Session {
    /// The organisation the session acts for.
    pub org_id: String,
    /// When the cookie stops working.
    pub expires_at: String,
}

/// herald's answer to a provider's webhook (`POST /v1/inbound/{source_id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InboundAnswer {
    /// Always `true`: the request was verified and stored.
    pub received: bool,
    /// Whether this provider event id had arrived before (nothing else was done).
    pub duplicate: bool,
    /// The herald event it became, when known.
    #[serde(default)]
    pub event_id: Option<String>,
}
