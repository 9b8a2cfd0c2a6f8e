-- Inbound looks up a provider event's accepted receipt on every request: the partial unique
-- index cannot serve a generic prepared plan (its condition is bound as parameters).
CREATE INDEX receipts_provider_event ON receipts (source_id, provider_event_id);
-- Lease renewal and release find a node's held deliveries.
CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner) WHERE status = 'pending';
