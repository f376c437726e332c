-- Groups whose records a task's group may read, as the operator granted:
-- a task reads its own group's records and these (a daily digest of a bank
-- and a gym app), never anything else.
CREATE TABLE record_grants (
    reader_group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    source_group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (reader_group_id, source_group_id)
);
CREATE INDEX record_grants_by_source ON record_grants (source_group_id);

-- Why a group needs reconnecting (the provider's words), for the operator.
ALTER TABLE groups ADD COLUMN status_reason TEXT;
