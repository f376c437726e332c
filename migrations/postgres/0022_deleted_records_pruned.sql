-- Deleted objects and blocks (and the deleted placeholders a late batch's
-- guard leaves) are pruned after the deleted-record retention, as deleted
-- events are: pruning finds the few deleted among all of them.
CREATE INDEX objects_deleted ON objects (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX blocks_deleted ON blocks (deleted_at) WHERE deleted_at IS NOT NULL;
