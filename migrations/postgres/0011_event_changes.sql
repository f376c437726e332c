-- The events' change feed: every write of an event (insert, update,
-- deletion) stamps it with its transaction and a change number, and the feed
-- reads in (change_xact, change_seq) order up to the oldest transaction still
-- open, so a change that commits late is never behind a reader's cursor.
-- Rows written before the feed existed sort first, in id order.
CREATE SEQUENCE events_change_seq;
ALTER TABLE events ADD COLUMN change_xact BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
UPDATE events SET change_seq = id;
SELECT setval('events_change_seq', GREATEST((SELECT MAX(id) FROM events), 1));
CREATE INDEX events_changes ON events (change_xact, change_seq);
CREATE INDEX events_integration_changes ON events (integration_id, change_xact, change_seq);
