DROP INDEX stream_tokens_expires;
DROP INDEX idempotency_keys_created;
DROP INDEX receipts_received;
ALTER TABLE organizations DROP COLUMN purged_through_seq;
ALTER TABLE organizations DROP COLUMN retention_events_ms;
ALTER TABLE organizations DROP COLUMN max_streams;
ALTER TABLE organizations DROP COLUMN max_endpoints;
ALTER TABLE api_keys DROP COLUMN last_used_at;
