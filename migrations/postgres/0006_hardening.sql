-- A batch whose processing failed for a passing reason stays pending and
-- counts its attempts; one that failed for good is listed for an operator.
ALTER TABLE raw_batches ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX raw_batches_failed ON raw_batches (id) WHERE status = 'failed';

-- What the operator approved for a group's plugin: the file it was connected
-- with and the hosts that file declared. Hosts a later file adds are refused
-- for the group until the operator approves them (`inlet groups approve`).
-- Groups from before this migration record theirs at their next run.
ALTER TABLE groups ADD COLUMN plugin_sha256 TEXT;
ALTER TABLE groups ADD COLUMN approved_hosts TEXT;
