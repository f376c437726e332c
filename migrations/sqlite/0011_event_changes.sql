-- The events' change feed: every write of an event (insert, update,
-- deletion) takes the next change number. SQLite's writers take turns, so
-- changes commit in number order and `change_xact` stays 0 (PostgreSQL
-- stamps the writing transaction there). Rows written before the feed
-- existed sort first, in id order.
ALTER TABLE events ADD COLUMN change_xact INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
UPDATE events SET change_seq = id;
CREATE INDEX events_changes ON events (change_xact, change_seq);
CREATE INDEX events_integration_changes ON events (integration_id, change_xact, change_seq);
