-- The earliest and latest time each event has had. The change feed filters
-- on this span, not on the event's time now: a change that moves an event
-- out of a reader's time window is still listed to that reader, with the
-- new time, so the reader can drop the event instead of keeping it for ever.
ALTER TABLE events ADD COLUMN earliest_occurred_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN latest_occurred_at BIGINT NOT NULL DEFAULT 0;
UPDATE events SET earliest_occurred_at = occurred_at, latest_occurred_at = occurred_at;
ALTER TABLE event_deletions ADD COLUMN earliest_occurred_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_deletions ADD COLUMN latest_occurred_at BIGINT NOT NULL DEFAULT 0;
UPDATE event_deletions SET earliest_occurred_at = occurred_at, latest_occurred_at = occurred_at;
