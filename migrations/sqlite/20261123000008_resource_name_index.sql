-- Returning users are found by name among tombstones (find_tombstone_by_name) on every create:
-- the live-name index is partial (tombstone = 0) and cannot serve that lookup, which scanned
-- the whole table.
CREATE INDEX resources_name_any_state ON resources (resource_type, user_name_lower, tombstone);
