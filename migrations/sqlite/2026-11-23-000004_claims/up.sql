-- Claims look for unleased due work through an index of exactly that, so they never read
-- the (possibly very many) deliveries nodes hold; held rows are not in it, which also makes
-- inserting new, held deliveries cheaper.
CREATE INDEX deliveries_unleased_due ON deliveries (next_attempt_at)
    WHERE status = 'pending' AND lease_owner IS NULL;
DROP INDEX deliveries_due;
