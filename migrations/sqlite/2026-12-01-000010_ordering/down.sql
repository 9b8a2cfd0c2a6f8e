DROP INDEX deliveries_queue_head;
ALTER TABLE endpoints DROP COLUMN ordering;
