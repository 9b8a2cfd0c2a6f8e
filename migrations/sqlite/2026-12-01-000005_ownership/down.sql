DROP TABLE endpoint_owners;
ALTER TABLE endpoints DROP COLUMN version;
