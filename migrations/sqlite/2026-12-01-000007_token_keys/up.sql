-- The API key a stream token was made with: revoking the key ends its tokens too.
ALTER TABLE stream_tokens ADD COLUMN api_key_id TEXT;
