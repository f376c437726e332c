-- A fetch commits its batches and ends; a job of the process queue turns them
-- into records. An integration may run one fetching job and one processing
-- job (of the process or webhook queue) at once, never two of either: two
-- fetches would race on its cursor, two processing jobs on its batches.
DROP INDEX jobs_one_running;
CREATE UNIQUE INDEX jobs_one_running ON jobs (integration_id, (queue = 'fetch')) WHERE state = 'running';

-- Which half a run was: the queue of its job. Runs before this fetched and
-- processed in one, except a delivery's and a reprocess.
ALTER TABLE sync_runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'fetch';
UPDATE sync_runs SET queue = 'webhook' WHERE trigger = 'webhook';
UPDATE sync_runs SET queue = 'process' WHERE trigger = 'reprocess';
