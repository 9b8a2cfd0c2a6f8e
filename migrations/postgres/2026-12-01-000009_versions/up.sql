-- Versioned event types: every registered version of a type, with its own schema. The
-- versions of types registered before this migration are their version 1.
CREATE TABLE event_type_versions (
    type_id TEXT NOT NULL REFERENCES event_types (id),
    version INTEGER NOT NULL,
    json_schema TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (type_id, version)
);
INSERT INTO event_type_versions (type_id, version, json_schema, created_at)
    SELECT id, 1, json_schema, created_at FROM event_types;
-- The version of its type an event was published as (the envelope carries it).
ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- An endpoint's pinned version per event type (JSON object), or NULL.
ALTER TABLE endpoints ADD COLUMN versions TEXT;
