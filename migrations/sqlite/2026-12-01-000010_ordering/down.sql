DROP INDEX deliveries_held_by_endpoint;
DROP INDEX deliveries_queue_head;
ALTER TABLE endpoints DROP COLUMN ordering;
