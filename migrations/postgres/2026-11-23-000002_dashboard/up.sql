-- The dashboard's charts read the last hour of attempts; sessions are looked up by hash
-- (the primary key) and swept by expiry.
CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
