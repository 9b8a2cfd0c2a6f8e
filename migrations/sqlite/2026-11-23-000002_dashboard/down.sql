DROP INDEX sessions_expires;
DROP INDEX delivery_attempts_started;
