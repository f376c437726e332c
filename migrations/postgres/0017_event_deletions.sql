-- Events deleted with their integration (or its group): their rows go with
-- it, and this keeps each one's place in the change feed, so a reader of the
-- feed learns they are gone. What they identify, not what they held: no
-- foreign keys (the integration and group are gone), and the group kept so
-- that a group's feed still lists them.
CREATE TABLE event_deletions (
    event_id       BIGINT PRIMARY KEY,
    integration_id BIGINT NOT NULL,
    group_id       BIGINT NOT NULL,
    kind           TEXT   NOT NULL,
    external_id    TEXT   NOT NULL,
    occurred_at    BIGINT NOT NULL,
    deleted_at     BIGINT NOT NULL,
    change_xact    BIGINT NOT NULL,
    change_seq     BIGINT NOT NULL
);
CREATE INDEX event_deletions_changes ON event_deletions (change_xact, change_seq);
