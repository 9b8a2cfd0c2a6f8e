//! One method per route of herald's API, on [`Client`].
//!
//! Lists answer a [`Pages`] stream that follows `next_cursor`; ids put in a path are
//! percent-encoded; routes marked admin authenticate with the admin token.

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::http::{Client, Request, segment};
use crate::models::{
    ApiKey, DeadLetter, DeadLetterQuery, DeadLetterReplay, Delivery, DeliveryDetail, DeliveryQuery, Endpoint,
    EndpointQuery, EndpointSecret, EndpointUpdate, Event, EventDetail, EventQuery, EventType, FilterTest,
    FilterTestResult, Health, NewApiKey, NewEndpoint, NewEvent, NewEventType, NewOrg, NewSource,
    NewSourceSecret, Org, OrgUpdate, PublishOutcome, Published, RangeQuery, Readiness, Receipt, ReceiptQuery,
    Replay, Replayed, Retried, RotatedSecret, Source, Stats, StreamToken, StreamTokenRequest, TestDelivery,
};
use crate::pages::Pages;

/// How long a waiting publish may take: herald holds it until every delivery's first
/// attempt (at most about 30 s).
const PUBLISH_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    // -----------------------------------------------------------------------------------
    // Organisations and their keys (admin token)
    // -----------------------------------------------------------------------------------

    /// `POST /v1/orgs` (admin): creates an organisation.
    pub async fn create_org(&self, org: &NewOrg) -> Result<Org, Error> {
        self.send_json(Request::post("/v1/orgs").admin().json(org)).await
    }

    /// `PATCH /v1/orgs/{org_id}` (admin): changes its rate limit, quotas or retention.
    pub async fn update_org(&self, org_id: &str, update: &OrgUpdate) -> Result<Org, Error> {
        let path = format!("/v1/orgs/{}", segment(org_id));
        self.send_json(Request::patch(path).admin().json(update)).await
    }

    /// `POST /v1/orgs/{org_id}/api-keys` (admin): a new key for an organisation, shown only here.
    pub async fn create_org_api_key(&self, org_id: &str) -> Result<NewApiKey, Error> {
        let path = format!("/v1/orgs/{}/api-keys", segment(org_id));
        self.send_json(Request::post(path).admin()).await
    }

    /// `GET /v1/orgs/{org_id}/api-keys` (admin): an organisation's live keys.
    pub fn org_api_keys(&self, org_id: &str, query: &RangeQuery) -> Pages<ApiKey> {
        let path = format!("/v1/orgs/{}/api-keys", segment(org_id));
        self.paginate(Request::get(path).admin().filters(query))
    }

    /// `DELETE /v1/orgs/{org_id}/api-keys/{id}` (admin): revokes an organisation's key.
    pub async fn revoke_org_api_key(&self, org_id: &str, key_id: &str) -> Result<(), Error> {
        let path = format!("/v1/orgs/{}/api-keys/{}", segment(org_id), segment(key_id));
        self.send_empty(Request::delete(path).admin()).await
    }

    // -----------------------------------------------------------------------------------
    // The caller's API keys
    // -----------------------------------------------------------------------------------

    /// `GET /v1/api-keys`: this organisation's live keys (never the keys themselves).
    pub fn api_keys(&self, query: &RangeQuery) -> Pages<ApiKey> {
        self.paginate(Request::get("/v1/api-keys").filters(query))
    }

    /// `POST /v1/api-keys`: a new key for this organisation, shown only here.
    pub async fn create_api_key(&self) -> Result<NewApiKey, Error> {
        self.send_json(Request::post("/v1/api-keys")).await
    }

    /// `DELETE /v1/api-keys/{id}`: revokes a key and its dashboard sessions.
    pub async fn revoke_api_key(&self, key_id: &str) -> Result<(), Error> {
        let path = format!("/v1/api-keys/{}", segment(key_id));
        self.send_empty(Request::delete(path)).await
    }

    // -----------------------------------------------------------------------------------
    // Event types
    // -----------------------------------------------------------------------------------

    /// `POST /v1/event-types`: registers a type, or a new version of one.
    pub async fn create_event_type(&self, event_type: &NewEventType) -> Result<EventType, Error> {
        self.send_json(Request::post("/v1/event-types").json(event_type)).await
    }

    /// `GET /v1/event-types`: the registered types with their versions.
    pub fn event_types(&self, query: &RangeQuery) -> Pages<EventType> {
        self.paginate(Request::get("/v1/event-types").filters(query))
    }

    // -----------------------------------------------------------------------------------
    // Endpoints
    // -----------------------------------------------------------------------------------

    /// `POST /v1/endpoints`: subscribes an endpoint; the answer carries its secret.
    pub async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<Endpoint, Error> {
        self.send_json(Request::post("/v1/endpoints").json(endpoint)).await
    }

    /// `GET /v1/endpoints`: the endpoints.
    pub fn endpoints(&self, query: &EndpointQuery) -> Pages<Endpoint> {
        self.paginate(Request::get("/v1/endpoints").filters(query))
    }

    /// `GET /v1/endpoints/{id}`: one endpoint, with its circuit, counts and queue.
    pub async fn endpoint(&self, id: &str) -> Result<Endpoint, Error> {
        let path = format!("/v1/endpoints/{}", segment(id));
        self.send_json(Request::get(path)).await
    }

    /// `GET /v1/endpoints/{id}/secret`: its signing secret.
    pub async fn endpoint_secret(&self, id: &str) -> Result<EndpointSecret, Error> {
        let path = format!("/v1/endpoints/{}/secret", segment(id));
        self.send_json(Request::get(path)).await
    }

    /// `POST /v1/endpoints/{id}/filter-test`: whether its payload filter matches `payload`
    /// (an envelope `{"type": …, "data": {…}}`), and which condition failed.
    pub async fn test_filter(&self, id: &str, payload: &Value) -> Result<FilterTestResult, Error> {
        self.test_filter_with(id, &FilterTest::new(payload.clone())).await
    }

    /// `POST /v1/endpoints/{id}/filter-test` with a filter to try instead of the endpoint's.
    pub async fn test_filter_with(&self, id: &str, test: &FilterTest) -> Result<FilterTestResult, Error> {
        let path = format!("/v1/endpoints/{}/filter-test", segment(id));
        self.send_json(Request::post(path).json(test)).await
    }

    /// `PATCH /v1/endpoints/{id}`: changes an endpoint.
    pub async fn update_endpoint(&self, id: &str, update: &EndpointUpdate) -> Result<Endpoint, Error> {
        let path = format!("/v1/endpoints/{}", segment(id));
        self.send_json(Request::patch(path).json(update)).await
    }

    /// `DELETE /v1/endpoints/{id}`: unsubscribes; its pending deliveries stop.
    pub async fn delete_endpoint(&self, id: &str) -> Result<(), Error> {
        let path = format!("/v1/endpoints/{}", segment(id));
        self.send_empty(Request::delete(path)).await
    }

    /// `POST /v1/endpoints/{id}/rotate-secret`: a new secret; the old one signs beside it for 24 h.
    pub async fn rotate_secret(&self, id: &str) -> Result<RotatedSecret, Error> {
        let path = format!("/v1/endpoints/{}/rotate-secret", segment(id));
        self.send_json(Request::post(path)).await
    }

    /// `POST /v1/endpoints/{id}/test`: sends a `webhook.test` event to this endpoint only.
    pub async fn send_test(&self, id: &str) -> Result<TestDelivery, Error> {
        let path = format!("/v1/endpoints/{}/test", segment(id));
        self.send_json(Request::post(path)).await
    }

    /// `POST /v1/endpoints/{id}/replay`: re-delivers a time window's failed or dead deliveries.
    pub async fn replay(&self, id: &str, replay: &Replay) -> Result<Replayed, Error> {
        let path = format!("/v1/endpoints/{}/replay", segment(id));
        self.send_json(Request::post(path).json(replay)).await
    }

    /// `GET /v1/endpoints/{id}/deliveries`: an endpoint's delivery log.
    pub fn endpoint_deliveries(&self, id: &str, query: &DeliveryQuery) -> Pages<Delivery> {
        let path = format!("/v1/endpoints/{}/deliveries", segment(id));
        self.paginate(Request::get(path).filters(query))
    }

    // -----------------------------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------------------------

    /// `POST /v1/events`: publishes an event (one generated `Idempotency-Key` across retries).
    pub async fn publish(&self, event: &NewEvent) -> Result<Published, Error> {
        self.send_json(Request::post("/v1/events").json(event)).await
    }

    /// `POST /v1/events` with your own `Idempotency-Key`: repeating it within 24 h answers
    /// the first publish again.
    pub async fn publish_with_key(
        &self,
        event: &NewEvent,
        key: impl Into<String>,
    ) -> Result<Published, Error> {
        let req = Request::post("/v1/events").json(event).idempotency_key(Some(key.into()));
        self.send_json(req).await
    }

    /// `POST /v1/events?wait=true`: publishes and answers after each delivery's first attempt.
    pub async fn publish_and_wait(&self, event: &NewEvent) -> Result<PublishOutcome, Error> {
        self.publish_and_wait_with_key(event, None).await
    }

    /// [`Client::publish_and_wait`] with your own `Idempotency-Key` (generated when `None`).
    pub async fn publish_and_wait_with_key(
        &self,
        event: &NewEvent,
        key: Option<String>,
    ) -> Result<PublishOutcome, Error> {
        let req = Request::post("/v1/events")
            .query("wait", "true")
            .json(event)
            .timeout(PUBLISH_WAIT_TIMEOUT)
            .idempotency_key(key);
        self.send_json(req).await
    }

    /// `GET /v1/events`: the events, newest first.
    pub fn events(&self, query: &EventQuery) -> Pages<Event> {
        self.paginate(Request::get("/v1/events").filters(query))
    }

    /// `GET /v1/events/{id}`: one event with the status of each delivery.
    pub async fn event(&self, id: &str) -> Result<EventDetail, Error> {
        let path = format!("/v1/events/{}", segment(id));
        self.send_json(Request::get(path)).await
    }

    /// `POST /v1/stream-tokens`: a short-lived token for `?token=` on the event stream.
    pub async fn stream_token(&self, request: &StreamTokenRequest) -> Result<StreamToken, Error> {
        self.send_json(Request::post("/v1/stream-tokens").json(request)).await
    }

    // -----------------------------------------------------------------------------------
    // Deliveries and dead letters
    // -----------------------------------------------------------------------------------

    /// `GET /v1/deliveries/{id}`: one delivery with its attempts.
    pub async fn delivery(&self, id: &str) -> Result<DeliveryDetail, Error> {
        let path = format!("/v1/deliveries/{}", segment(id));
        self.send_json(Request::get(path)).await
    }

    /// `POST /v1/deliveries/{id}/retry`: tries a delivery again now (`409` while it is
    /// being attempted or its endpoint is deleted).
    pub async fn retry_delivery(&self, id: &str) -> Result<Retried, Error> {
        let path = format!("/v1/deliveries/{}/retry", segment(id));
        self.send_json(Request::post(path)).await
    }

    /// `POST /v1/deliveries/{id}/cancel`: marks a pending delivery failed, so a FIFO
    /// endpoint's queue moves on.
    pub async fn cancel_delivery(&self, id: &str) -> Result<Delivery, Error> {
        let path = format!("/v1/deliveries/{}/cancel", segment(id));
        self.send_json(Request::post(path)).await
    }

    /// `GET /v1/dead-letters`: deliveries whose retries ran out, with their events.
    pub fn dead_letters(&self, query: &DeadLetterQuery) -> Pages<DeadLetter> {
        self.paginate(Request::get("/v1/dead-letters").filters(query))
    }

    /// `POST /v1/dead-letters/replay`: queues dead letters again.
    pub async fn replay_dead_letters(&self, replay: &DeadLetterReplay) -> Result<Replayed, Error> {
        self.send_json(Request::post("/v1/dead-letters/replay").json(replay)).await
    }

    // -----------------------------------------------------------------------------------
    // Inbound sources
    // -----------------------------------------------------------------------------------

    /// `POST /v1/sources`: a source providers post their webhooks to.
    pub async fn create_source(&self, source: &NewSource) -> Result<Source, Error> {
        self.send_json(Request::post("/v1/sources").json(source)).await
    }

    /// `GET /v1/sources`: the inbound sources.
    pub fn sources(&self, query: &RangeQuery) -> Pages<Source> {
        self.paginate(Request::get("/v1/sources").filters(query))
    }

    /// `GET /v1/sources/{id}`: one inbound source.
    pub async fn source(&self, id: &str) -> Result<Source, Error> {
        let path = format!("/v1/sources/{}", segment(id));
        self.send_json(Request::get(path)).await
    }

    /// `DELETE /v1/sources/{id}`: deletes an inbound source.
    pub async fn delete_source(&self, id: &str) -> Result<(), Error> {
        let path = format!("/v1/sources/{}", segment(id));
        self.send_empty(Request::delete(path)).await
    }

    /// `POST /v1/sources/{id}/rotate-secret`: accepts the provider's new secret (the old
    /// one for 24 h).
    pub async fn rotate_source_secret(&self, id: &str, secret: impl Into<String>) -> Result<Source, Error> {
        let path = format!("/v1/sources/{}/rotate-secret", segment(id));
        let body = NewSourceSecret { secret: secret.into() };
        self.send_json(Request::post(path).json(&body)).await
    }

    /// `GET /v1/sources/{id}/receipts`: what arrived at a source.
    pub fn receipts(&self, source_id: &str, query: &ReceiptQuery) -> Pages<Receipt> {
        let path = format!("/v1/sources/{}/receipts", segment(source_id));
        self.paginate(Request::get(path).filters(query))
    }

    // -----------------------------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------------------------

    /// `GET /healthz`: liveness.
    pub async fn health(&self) -> Result<Health, Error> {
        self.send_json(Request::get("/healthz")).await
    }

    /// `GET /readyz`: readiness; not ready answers `503`, which is an error here.
    pub async fn ready(&self) -> Result<Readiness, Error> {
        self.send_json(Request::get("/readyz")).await
    }

    /// `GET /v1/stats?minutes=`: attempts per minute by outcome and their latency (1 to 1440 minutes).
    pub async fn stats(&self, minutes: u32) -> Result<Stats, Error> {
        self.send_json(Request::get("/v1/stats").query("minutes", minutes)).await
    }

    /// `GET /openapi.json`: the OpenAPI 3 description of every route.
    pub async fn openapi(&self) -> Result<Value, Error> {
        self.send_json(Request::get("/openapi.json")).await
    }
}
