-- Deleted events (upstream, or with their integration) are listed by the
-- change feed until they are pruned, after a retention. Each prune that
-- deleted any is numbered here with the last change position it deleted. A
-- feed cursor carries the number of prunes its reader had seen: a later
-- prune that deleted a change the reader may have read the event of (after
-- its position, and after where it started) expires it, and its reader
-- reads the feed again from the start.
CREATE TABLE event_feed_prunes (
    prune       BIGINT PRIMARY KEY,
    change_xact BIGINT NOT NULL,
    change_seq  BIGINT NOT NULL
);
-- Pruning finds the few deleted events among all of them.
CREATE INDEX events_deleted ON events (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX event_deletions_deleted ON event_deletions (deleted_at);
