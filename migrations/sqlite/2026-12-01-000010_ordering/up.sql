-- 'fifo': the endpoint gets its deliveries one at a time in event order; 'none': in parallel.
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
-- The head of a FIFO endpoint's queue: its pending delivery with the lowest event seq.
CREATE INDEX deliveries_queue_head ON deliveries (endpoint_id, event_seq) WHERE status = 'pending';
-- Whether any other delivery of a FIFO endpoint is held (being attempted).
CREATE INDEX deliveries_held_by_endpoint ON deliveries (endpoint_id) WHERE status = 'pending' AND lease_owner IS NOT NULL;
