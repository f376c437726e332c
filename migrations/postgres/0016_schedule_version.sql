-- Counts the saves of an integration's sync settings (schedule, enabled): a
-- fetch's end sets the next due time from the schedule it started on only
-- while that is still the integration's, so an edit made during the fetch
-- holds (see `integrations::finish_successes`).
ALTER TABLE integrations ADD COLUMN schedule_version BIGINT NOT NULL DEFAULT 0;
