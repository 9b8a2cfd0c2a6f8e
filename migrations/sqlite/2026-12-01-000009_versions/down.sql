ALTER TABLE endpoints DROP COLUMN versions;
ALTER TABLE events DROP COLUMN version;
DROP TABLE event_type_versions;
