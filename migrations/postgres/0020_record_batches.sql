-- The newest batch (raw_batches.id, in fetch order) that wrote, confirmed or
-- deleted each record. A batch processed late, such as a failed one an
-- operator retries after newer ones were processed, writes a record only
-- where no newer batch holds it: older upstream data never replaces newer.
-- 0: stored before this was kept.
ALTER TABLE objects ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE blocks ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
