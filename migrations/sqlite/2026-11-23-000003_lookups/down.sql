DROP INDEX deliveries_lease_owner;
DROP INDEX receipts_provider_event;
