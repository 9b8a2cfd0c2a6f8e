CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    rate_limit_per_minute INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE event_types (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    json_schema TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    id TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    correlation_id TEXT,
    source_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, id)
);
CREATE INDEX events_org_seq ON events (org_id, seq);
CREATE INDEX events_org_type_seq ON events (org_id, event_type, seq);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    url TEXT NOT NULL,
    description TEXT,
    event_filter TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at BIGINT,
    signature_scheme TEXT NOT NULL,
    status TEXT NOT NULL,
    rate_limit_per_second INTEGER,
    max_in_flight INTEGER,
    headers TEXT NOT NULL,
    circuit_state TEXT NOT NULL DEFAULT 'closed',
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_open_until BIGINT,
    last_success_at BIGINT,
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX endpoints_org ON endpoints (org_id, id);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    event_seq BIGINT NOT NULL REFERENCES events (seq),
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id),
    status TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    -- attempt_count when the delivery was last replayed: the retry schedule restarts there.
    retry_base INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_status_code INTEGER,
    last_error TEXT,
    first_attempt_at BIGINT,
    last_attempt_at BIGINT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_event ON deliveries (event_seq);
CREATE INDEX deliveries_org_status ON deliveries (org_id, status, id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    response_body TEXT,
    error TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);

CREATE TABLE sources (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at BIGINT,
    event_type_prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE receipts (
    id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    received_at BIGINT NOT NULL,
    provider_event_id TEXT,
    verified BOOLEAN NOT NULL,
    duplicate BOOLEAN NOT NULL,
    error TEXT,
    event_id TEXT
);
CREATE INDEX receipts_source ON receipts (source_id, id);
-- One accepted receipt per provider event: the database, not only the actor, collapses duplicates.
CREATE UNIQUE INDEX receipts_unique_event ON receipts (source_id, provider_event_id)
    WHERE verified AND NOT duplicate;

CREATE TABLE idempotency_keys (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response_body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, idem_key)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    api_key_id TEXT NOT NULL REFERENCES api_keys (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Short-lived tokens for EventSource clients (which cannot send headers).
CREATE TABLE stream_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    types TEXT,
    expires_at BIGINT NOT NULL
);

-- Cluster members: each node's heartbeat.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
