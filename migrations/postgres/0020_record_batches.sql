-- The newest batch (raw_batches.id, in fetch order) that wrote, confirmed or
-- deleted each record. A batch processed late, such as a failed one an
-- operator retries after newer ones were processed, writes a record only
-- where no newer batch holds it: older upstream data never replaces newer.
ALTER TABLE objects ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE blocks ADD COLUMN batch_id BIGINT NOT NULL DEFAULT 0;
-- Records stored before: held by their integration's newest processed
-- batch, so that a batch that failed before the upgrade, retried after it,
-- writes over none of them (it may hold older data than they do).
UPDATE objects SET batch_id = COALESCE((SELECT MAX(b.id) FROM raw_batches AS b
    WHERE b.integration_id = objects.integration_id AND b.status = 'processed'), 0);
UPDATE events SET batch_id = COALESCE((SELECT MAX(b.id) FROM raw_batches AS b
    WHERE b.integration_id = events.integration_id AND b.status = 'processed'), 0);
UPDATE blocks SET batch_id = COALESCE((SELECT MAX(b.id) FROM raw_batches AS b
    WHERE b.integration_id = blocks.integration_id AND b.status = 'processed'), 0);
