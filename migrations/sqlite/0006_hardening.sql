-- A batch whose processing failed for a passing reason stays pending and
-- counts its attempts; one that failed for good is listed for an operator.
ALTER TABLE raw_batches ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX raw_batches_failed ON raw_batches (id) WHERE status = 'failed';
