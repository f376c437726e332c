-- Why the next run is later than the schedule says: a plugin's schedule hint
-- (the upstream asked for a pause, a quota resets then). Cleared whenever
-- next_due_at is written for any other reason.
ALTER TABLE integrations ADD COLUMN next_due_reason TEXT;
