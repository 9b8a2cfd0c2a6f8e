-- When a key was last used (written at most once a minute per key), for the key list.
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;

-- Per-organisation overrides of the quotas and the event retention in the settings
-- (NULL: the setting's value).
ALTER TABLE organizations ADD COLUMN max_endpoints INTEGER;
ALTER TABLE organizations ADD COLUMN max_streams INTEGER;
ALTER TABLE organizations ADD COLUMN retention_events_ms BIGINT;
-- The newest event seq the Janitor purged for the organisation: a stream resuming from
-- before it is told that what it missed is no longer kept.
ALTER TABLE organizations ADD COLUMN purged_through_seq BIGINT NOT NULL DEFAULT 0;

-- What the Janitor purges, oldest first, without reading what it keeps.
CREATE INDEX receipts_received ON receipts (received_at);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX stream_tokens_expires ON stream_tokens (expires_at);
