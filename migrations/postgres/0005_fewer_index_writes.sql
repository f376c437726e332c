-- Fewer index entries and row locks per run (measured per run on PostgreSQL:
-- the foreign key 3.5 µs, each index 1 µs, more under concurrent writers).

-- A run's foreign key to its integration made every run insert look the
-- integration up and lock its row (FOR KEY SHARE: a write to the integration's
-- page). Deleting an integration still deletes its runs, by a trigger. A run
-- inserted while its integration is being deleted can outlive it; pruning
-- removes it with the other old runs.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_integration_id_fkey;
CREATE FUNCTION delete_integration_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sync_runs WHERE integration_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER integrations_delete_runs AFTER DELETE ON integrations
    FOR EACH ROW EXECUTE FUNCTION delete_integration_runs();

-- The run an operator's request created is named on its job (written by the
-- request, which writes the job anyway), so a claim need not look up each
-- job's runs; a job's latest run is found through its integration's runs,
-- off the job path, and `sync_runs_job` is one index fewer to write per run.
ALTER TABLE jobs ADD COLUMN pending_run_id BIGINT;
UPDATE jobs SET pending_run_id = r.id FROM sync_runs r WHERE r.job_id = jobs.id AND r.status = 'pending';
DROP INDEX sync_runs_job;

-- Expired leases are found among the running jobs through `jobs_one_running`
-- (there are at most as many as workers' slots); a second index on them was
-- written by every claim.
DROP INDEX jobs_leases;
