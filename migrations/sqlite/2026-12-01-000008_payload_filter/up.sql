-- A condition on the envelope (JSON, MongoDB-style) an event must meet to reach the endpoint.
ALTER TABLE endpoints ADD COLUMN payload_filter TEXT;
