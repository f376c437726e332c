-- Events deleted with their integration (or its group): their rows go with
-- it, and this keeps each one's place in the change feed, so a reader of the
-- feed learns they are gone. What they identify, not what they held: no
-- foreign keys (the integration and group are gone), and the group kept so
-- that a group's feed still lists them.
CREATE TABLE event_deletions (
    event_id       INTEGER PRIMARY KEY,
    integration_id INTEGER NOT NULL,
    group_id       INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    external_id    TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    deleted_at     INTEGER NOT NULL,
    change_xact    INTEGER NOT NULL,
    change_seq     INTEGER NOT NULL
);
CREATE INDEX event_deletions_changes ON event_deletions (change_xact, change_seq);
-- Their change numbers come from the events' counter (migration 0011).
CREATE TRIGGER event_deletions_change_counted AFTER INSERT ON event_deletions
BEGIN
    UPDATE event_change_counter SET last = MAX(last, NEW.change_seq);
END;
