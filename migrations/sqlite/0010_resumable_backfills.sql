-- Checkpoints a job's attempts have committed: a later attempt of a backfill
-- that checkpointed continues from the plugin's progress instead of from
-- the start.
ALTER TABLE jobs ADD COLUMN checkpoints BIGINT NOT NULL DEFAULT 0;
