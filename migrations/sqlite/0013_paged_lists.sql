-- The Updates view reads the runs in flight of one page of integrations at a
-- time: a small index of just those, rather than every run of each.
CREATE INDEX sync_runs_active ON sync_runs (integration_id) WHERE status IN ('pending', 'running');
