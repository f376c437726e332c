-- The process worker looks for stored batches that nothing is to process
-- (see `queue_unprocessed_batches`): an index of just the pending ones,
-- rather than a scan of every batch kept for reprocessing.
CREATE INDEX raw_batches_waiting ON raw_batches (integration_id) WHERE status = 'pending';
