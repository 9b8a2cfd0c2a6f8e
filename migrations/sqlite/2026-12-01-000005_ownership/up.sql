-- Every change to an endpoint bumps its version: actors on any node order the settings
-- they hear about by it, and take only newer ones.
ALTER TABLE endpoints ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- One owner node per endpoint in a cluster: only the owner's actor sends the endpoint's
-- deliveries, so its in-flight limit, rate limit and circuit breaker hold cluster-wide.
-- The owner renews its row while it lives; another node takes the row over only after
-- expires_at has passed. (A single SQLite node owns every endpoint and keeps no rows.)
CREATE TABLE endpoint_owners (
    endpoint_id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX endpoint_owners_owner ON endpoint_owners (owner);
