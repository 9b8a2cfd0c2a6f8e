ALTER TABLE endpoints DROP COLUMN payload_filter;
