ALTER TABLE stream_tokens DROP COLUMN api_key_id;
