CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_unleased_due;
