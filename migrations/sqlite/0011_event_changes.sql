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
-- The last change number given out. It never goes back, so a number is
-- never given twice, even after the events that held the newest ones are
-- deleted with their integration; the triggers keep it as events are written.
CREATE TABLE event_change_counter (last INTEGER NOT NULL);
INSERT INTO event_change_counter (last) SELECT COALESCE(MAX(change_seq), 0) FROM events;
CREATE TRIGGER events_change_counted_on_insert AFTER INSERT ON events
BEGIN
    UPDATE event_change_counter SET last = MAX(last, NEW.change_seq);
END;
CREATE TRIGGER events_change_counted_on_update AFTER UPDATE OF change_seq ON events
BEGIN
    UPDATE event_change_counter SET last = MAX(last, NEW.change_seq);
END;
