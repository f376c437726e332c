-- Fewer index entries per run.
--
-- (PostgreSQL also drops the runs' foreign key to their integration, which
-- locked the integration's row on every run insert. SQLite takes no row
-- locks, its check is one primary-key lookup, and dropping a foreign key
-- means rebuilding the table: it keeps it.)

-- The run an operator's request created is named on its job (written by the
-- request, which writes the job anyway), so a claim need not look up each
-- job's runs; a job's latest run is found through its integration's runs,
-- off the job path, and `sync_runs_job` is one index fewer to write per run.
ALTER TABLE jobs ADD COLUMN pending_run_id INTEGER;
UPDATE jobs SET pending_run_id = (SELECT r.id FROM sync_runs r WHERE r.job_id = jobs.id AND r.status = 'pending');
DROP INDEX sync_runs_job;

-- Expired leases are found among the running jobs through `jobs_one_running`
-- (there are at most as many as workers' slots); a second index on them was
-- written by every claim.
DROP INDEX jobs_leases;
