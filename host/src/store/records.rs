//! `objects`, `events`, `blocks`: what plugins produce, keyed by
//! (integration, kind, external id) so re-syncing upserts instead of duplicating.

use super::jobs::JobLease;
use super::{Backend, Connection, Store, raw_batches};
use crate::domain::records::{RecordClass, Records};
use anyhow::Result;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecordCounts {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
}

impl RecordCounts {
    pub fn add(&mut self, other: RecordCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.deleted += other.deleted;
    }

    /// An upsert returns the row's version when it wrote (1 = created), or no
    /// row when the stored record was already identical.
    fn count(&mut self, written_version: Option<i64>) {
        match written_version {
            Some(1) => self.created += 1,
            Some(_) => self.updated += 1,
            None => self.unchanged += 1,
        }
    }
}

/// An integration's records of every class.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationRecords {
    pub objects: Vec<StoredObject>,
    pub events: Vec<StoredEvent>,
    pub blocks: Vec<StoredBlock>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredObject {
    pub external_id: String,
    pub kind: String,
    pub name: Option<String>,
    pub data: serde_json::Value,
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub external_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Which records a page holds: each filter applies when set.
pub struct RecordFilter<'a> {
    pub integration_id: Option<i64>,
    /// Records of every integration of this group.
    pub group_id: Option<i64>,
    /// Records a task of this group may read: its group's and those of the
    /// groups granted to it (`record_grants`).
    pub reader_group: Option<i64>,
    pub kind: Option<&'a str>,
    /// Events: occurred at or after; objects: changed at or after (ms).
    pub since: Option<i64>,
    /// Events: occurred before; objects: changed before (ms).
    pub until: Option<i64>,
    /// Rows to read at most.
    pub limit: i64,
    /// Events newest first (objects: highest id first); a page's cursor is
    /// then where the older ones start.
    pub newest_first: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    pub id: i64,
    pub integration_id: i64,
    /// Deleted upstream, or with its integration; only the change feed
    /// (`order=change`) lists deleted events. One deleted with its
    /// integration keeps what identifies it (kind, external id, time), and
    /// its data reads `{}`.
    pub deleted: bool,
    #[serde(flatten)]
    pub event: StoredEvent,
}

/// A place in the events' change feed: the transaction that wrote the
/// change (0 on SQLite), then its change number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangePosition {
    pub xact: i64,
    pub seq: i64,
}

impl ChangePosition {
    /// Before every change.
    pub const START: ChangePosition = ChangePosition { xact: -1, seq: 0 };
}

/// Where a reader of the change feed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedCursor {
    /// The last change it read, or the place it read through.
    pub position: ChangePosition,
    /// How many prunes of deleted events its reads had seen (see
    /// [`Store::prune_deleted_events`]).
    pub prunes: i64,
    /// Where the feed had got to when its reader started from the start: a
    /// deletion up to there was of an event it never read, so a prune of it
    /// expires nothing of the reader's, however long it takes to catch up.
    pub started_at: ChangePosition,
}

impl FeedCursor {
    /// A place, with no prunes seen: every prune is checked against it.
    pub fn at(position: ChangePosition) -> FeedCursor {
        FeedCursor { position, prunes: 0, started_at: ChangePosition::START }
    }
}

/// A page of the change feed, and where its reader is after it.
#[derive(Debug)]
pub struct ChangesPage {
    pub changes: Vec<(EventRow, ChangePosition)>,
    pub next: FeedCursor,
}

/// A change feed cursor from before a deleted event that was pruned since
/// it was given out: its reader missed the deletion, and must read the feed
/// from its start again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorExpired {
    /// The last change that prune deleted.
    pub pruned_through: ChangePosition,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ObjectRow {
    pub id: i64,
    pub integration_id: i64,
    pub external_id: String,
    pub kind: String,
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub updated_at: i64,
}

/// A block as the records API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BlockRow {
    pub id: i64,
    pub integration_id: i64,
    pub external_id: String,
    pub kind: String,
    /// The external id of the event it belongs to.
    pub event_id: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredBlock {
    pub external_id: String,
    pub kind: String,
    pub event_id: String,
    pub data: serde_json::Value,
}

// Each upsert only writes when something differs, and bumps `version` when it
// does, so `RETURNING version` tells created (1), updated (>1) and unchanged (no row).
// None writes over a record that a newer batch holds (its `batch_id`; see [`Written`]).
const UPSERT_OBJECT: &str = "
    INSERT INTO objects (integration_id, kind, external_id, name, data, created_at, updated_at, batch_id)
    VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
    ON CONFLICT (integration_id, kind, external_id) DO UPDATE
       SET name = excluded.name, data = excluded.data, updated_at = excluded.updated_at,
           deleted_at = NULL, version = objects.version + 1, batch_id = excluded.batch_id
     WHERE objects.batch_id <= excluded.batch_id
       AND (objects.name IS DISTINCT FROM excluded.name
            OR objects.data IS DISTINCT FROM excluded.data
            OR objects.deleted_at IS NOT NULL)
    RETURNING version";

/// An event's place in the change feed, as SQL for its two columns: the
/// writing transaction and the next change number. PostgreSQL's writers
/// overlap, so the feed orders by transaction first and reads only up to the
/// oldest one still open (see [`Store::event_changes_page`]); SQLite's take
/// turns, so its numbers commit in order and the transaction is always 0.
fn change_stamp(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Postgres => ("CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)", "nextval('events_change_seq')"),
        // The counter's triggers move it on as each write lands (migration 0011).
        Backend::Sqlite => ("0", "(SELECT last + 1 FROM event_change_counter)"),
    }
}

/// The oldest transaction still open: every change below it has committed.
fn change_horizon(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)",
        Backend::Sqlite => "1",
    }
}

/// SQL: the prunes of deleted events done, and the change position every
/// change up to which has committed (below the horizon; on SQLite, the last
/// change number).
fn feed_bounds(backend: Backend) -> String {
    let prunes = "(SELECT COALESCE(MAX(prune), 0) FROM event_feed_prunes)";
    match backend {
        Backend::Postgres => format!("SELECT {prunes}, {} - 1, CAST({} AS BIGINT)", change_horizon(backend), i64::MAX),
        Backend::Sqlite => format!("SELECT {prunes}, 0, (SELECT last FROM event_change_counter)"),
    }
}

/// Insert an event, stamped (see [`change_stamp`]) when it is new or differs,
/// its span of times widened to the time it has now.
fn upsert_event(backend: Backend) -> String {
    let (xact, seq) = change_stamp(backend);
    let (least, greatest) = match backend {
        Backend::Postgres => ("LEAST", "GREATEST"),
        Backend::Sqlite => ("MIN", "MAX"),
    };
    format!(
        "INSERT INTO events (integration_id, kind, external_id, occurred_at, actor, target, value, unit, data, created_at, updated_at,
                             change_xact, change_seq, batch_id, earliest_occurred_at, latest_occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, {xact}, {seq}, $11, $4, $4)
         ON CONFLICT (integration_id, kind, external_id) DO UPDATE
            SET occurred_at = excluded.occurred_at, actor = excluded.actor, target = excluded.target,
                earliest_occurred_at = {least}(events.earliest_occurred_at, excluded.occurred_at),
                latest_occurred_at = {greatest}(events.latest_occurred_at, excluded.occurred_at),
                value = excluded.value, unit = excluded.unit, data = excluded.data,
                updated_at = excluded.updated_at, deleted_at = NULL, version = events.version + 1,
                change_xact = {xact}, change_seq = {seq}, batch_id = excluded.batch_id
          WHERE events.batch_id <= excluded.batch_id
            AND (events.occurred_at IS DISTINCT FROM excluded.occurred_at
                 OR events.actor IS DISTINCT FROM excluded.actor
                 OR events.target IS DISTINCT FROM excluded.target
                 OR events.value IS DISTINCT FROM excluded.value
                 OR events.unit IS DISTINCT FROM excluded.unit
                 OR events.data IS DISTINCT FROM excluded.data
                 OR events.deleted_at IS NOT NULL)
         RETURNING version"
    )
}

const UPSERT_BLOCK: &str = "
    INSERT INTO blocks (integration_id, kind, external_id, event_id, data, created_at, updated_at, batch_id)
    VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
    ON CONFLICT (integration_id, kind, external_id) DO UPDATE
       SET event_id = excluded.event_id, data = excluded.data, updated_at = excluded.updated_at,
           deleted_at = NULL, version = blocks.version + 1, batch_id = excluded.batch_id
     WHERE blocks.batch_id <= excluded.batch_id
       AND (blocks.event_id IS DISTINCT FROM excluded.event_id
            OR blocks.data IS DISTINCT FROM excluded.data
            OR blocks.deleted_at IS NOT NULL)
    RETURNING version";

impl Store {
    /// Upsert one processed batch's records and mark the batch processed, in
    /// one transaction, while the processing run's `lease` is held.
    pub async fn store_records(
        &self,
        integration_id: i64,
        batch_id: i64,
        records: &Records,
        lease: Option<&JobLease>,
    ) -> Result<RecordCounts> {
        let now = self.now();
        let mut tx = self.begin().await?;
        super::jobs::ensure_held(&mut tx, lease).await?;
        let late = raw_batches::newest_older_unprocessed(&mut tx, integration_id, batch_id).await?;
        let mut written = Written { integration_id, batch_id, late, counts: RecordCounts::default() };
        for object in &records.objects {
            let version = sqlx::query_scalar(UPSERT_OBJECT)
                .bind(integration_id)
                .bind(&object.kind)
                .bind(&object.external_id)
                .bind(&object.name)
                .bind(&object.data)
                .bind(now)
                .bind(batch_id)
                .fetch_optional(&mut *tx)
                .await?;
            written.upserted(&mut tx, RecordClass::Object, &object.kind, &object.external_id, version).await?;
        }
        let upsert_event = upsert_event(self.backend());
        for event in &records.events {
            let version = sqlx::query_scalar(sqlx::AssertSqlSafe(upsert_event.as_str()))
                .bind(integration_id)
                .bind(&event.kind)
                .bind(&event.external_id)
                .bind(event.occurred_at)
                .bind(&event.actor)
                .bind(&event.target)
                .bind(event.value)
                .bind(&event.unit)
                .bind(&event.data)
                .bind(now)
                .bind(batch_id)
                .fetch_optional(&mut *tx)
                .await?;
            written.upserted(&mut tx, RecordClass::Event, &event.kind, &event.external_id, version).await?;
        }
        for block in &records.blocks {
            let version = sqlx::query_scalar(UPSERT_BLOCK)
                .bind(integration_id)
                .bind(&block.kind)
                .bind(&block.external_id)
                .bind(&block.event_id)
                .bind(&block.data)
                .bind(now)
                .bind(batch_id)
                .fetch_optional(&mut *tx)
                .await?;
            written.upserted(&mut tx, RecordClass::Block, &block.kind, &block.external_id, version).await?;
        }
        for tombstone in &records.deleted {
            let (class, kind, id) = (tombstone.class, &tombstone.kind, &tombstone.external_id);
            let deleted = mark_deleted(&mut tx, integration_id, class, kind, id, batch_id, now).await?;
            written.counts.deleted += deleted;
            if deleted == 0 {
                written.confirm_deletion(&mut tx, class, kind, id, now).await?;
            }
        }
        raw_batches::mark_processed(&mut tx, batch_id, now).await?;
        tx.commit().await?;
        Ok(written.counts)
    }

    /// Everything an integration has stored, as `inlet records` prints it.
    pub async fn integration_records(&self, integration_id: i64) -> Result<IntegrationRecords> {
        Ok(IntegrationRecords {
            objects: self.objects(integration_id).await?,
            events: self.events(integration_id).await?,
            blocks: self.blocks(integration_id).await?,
        })
    }

    /// Objects of an integration by kind then external id; deleted ones are flagged.
    pub async fn objects(&self, integration_id: i64) -> Result<Vec<StoredObject>> {
        sqlx::query(
            "SELECT external_id, kind, name, data, deleted_at FROM objects
             WHERE integration_id = $1 ORDER BY kind, external_id",
        )
        .bind(integration_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| {
            Ok(StoredObject {
                external_id: row.try_get("external_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                data: json(&row)?,
                deleted: row.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
            })
        })
        .collect()
    }

    /// Events of an integration in time order.
    pub async fn events(&self, integration_id: i64) -> Result<Vec<StoredEvent>> {
        sqlx::query(
            "SELECT external_id, kind, occurred_at, actor, target, value, unit, data FROM events
             WHERE integration_id = $1 AND deleted_at IS NULL ORDER BY occurred_at, external_id",
        )
        .bind(integration_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(stored_event)
        .collect()
    }

    /// A page of events in (time, id) order after `after`, filtered.
    pub async fn events_page(&self, filter: &RecordFilter<'_>, after: Option<(i64, i64)>) -> Result<Vec<EventRow>> {
        let (beyond, order) = if filter.newest_first { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT {EVENT_ROW} FROM events
             WHERE deleted_at IS NULL AND {ROW_FILTERS} AND {TIME_FILTERS} AND {EVENT_GROUP_FILTERS}
               AND ($5 IS NULL OR occurred_at {beyond} $5 OR (occurred_at = $5 AND id {beyond} $6))
             ORDER BY occurred_at {order}, id {order} LIMIT $7"
        );
        let (after_time, after_id) = after.unzip();
        let query = bind_event_page(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, (after_time, after_id.unwrap_or(0)));
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(event_row).collect()
    }

    /// A page of the events' change feed after `after`, filtered: each
    /// event written (created, changed or deleted) since, once, at its latest
    /// change, in the order the changes committed. An event that arrives late
    /// with an older time still comes after the cursor, unlike in time order.
    /// `since` and `until` select events any of whose times fell in the
    /// window: one moved out of it is listed with its new time.
    /// An event deleted with its integration is listed from
    /// `event_deletions`, by what identifies it (its data is `{}`). Deleted
    /// events are kept until [`Store::prune_deleted_events`]; a cursor from
    /// before one pruned since it was given out has expired. `filter.limit`
    /// is one more than the page's size.
    pub async fn event_changes_page(
        &self,
        filter: &RecordFilter<'_>,
        cursor: Option<FeedCursor>,
    ) -> Result<Result<ChangesPage, CursorExpired>> {
        let after = cursor.map_or(ChangePosition::START, |c| c.position);
        // Read before the page, so the page reflects them: the prunes it
        // need not be told of again, and a place it reads through.
        let (prunes, xact, seq) =
            sqlx::query_as(sqlx::AssertSqlSafe(feed_bounds(self.backend()))).fetch_one(self.pool()).await?;
        let read_through = ChangePosition { xact, seq };
        let unread = format!(
            "(change_xact > $5 OR (change_xact = $5 AND change_seq > $6)) AND change_xact < {}",
            change_horizon(self.backend())
        );
        let sql = format!(
            "SELECT {EVENT_ROW}, change_xact, change_seq FROM events
             WHERE {ROW_FILTERS} AND {SPAN_FILTERS} AND {EVENT_GROUP_FILTERS} AND {unread}
             UNION ALL
             SELECT event_id, integration_id, external_id, kind, occurred_at, NULL, NULL, NULL, NULL, '{{}}',
                    deleted_at, change_xact, change_seq
             FROM event_deletions
             WHERE {ROW_FILTERS} AND {SPAN_FILTERS} AND {DELETION_GROUP_FILTERS} AND {unread}
             ORDER BY change_xact, change_seq LIMIT $7"
        );
        let query = bind_event_page(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, (Some(after.xact), after.seq));
        let rows = query.fetch_all(self.pool()).await?;
        // Looked at after the page: a prune that the page's read did not
        // see listed what it pruned; one it saw is seen here too.
        if let Some(cursor) = cursor
            && let Some(pruned_through) = self.pruned_after(cursor).await?
        {
            return Ok(Err(CursorExpired { pruned_through }));
        }
        let mut changes = rows
            .iter()
            .map(|row| {
                let position = ChangePosition { xact: row.try_get("change_xact")?, seq: row.try_get("change_seq")? };
                Ok((event_row(row)?, position))
            })
            .collect::<Result<Vec<_>>>()?;
        let position = match super::next_page(&mut changes, filter.limit) {
            Some((_, last)) => last,
            // The page holds every change up to where it read through: a
            // reader of a quiet filter moves on, past prunes of others' changes.
            None => changes.last().map_or(after, |(_, last)| *last).max(read_through),
        };
        let started_at = cursor.map_or(read_through, |c| c.started_at);
        Ok(Ok(ChangesPage { changes, next: FeedCursor { position, prunes, started_at } }))
    }

    /// The last change deleted by a prune that `cursor`'s reader has not
    /// seen and that deleted a change it may have missed: after both its
    /// position and where it started.
    async fn pruned_after(&self, cursor: FeedCursor) -> Result<Option<ChangePosition>> {
        let missed_after = cursor.position.max(cursor.started_at);
        let pruned: Option<(i64, i64)> = sqlx::query_as(
            "SELECT change_xact, change_seq FROM event_feed_prunes
             WHERE prune > $1 AND (change_xact > $2 OR (change_xact = $2 AND change_seq > $3))
             ORDER BY change_xact DESC, change_seq DESC LIMIT 1",
        )
        .bind(cursor.prunes)
        .bind(missed_after.xact)
        .bind(missed_after.seq)
        .fetch_optional(self.pool())
        .await?;
        Ok(pruned.map(|(xact, seq)| ChangePosition { xact, seq }))
    }

    /// Delete the events deleted before `before` (upstream, or with their
    /// integration), which only the change feed still listed, as the next
    /// prune: a cursor given out before it, from before the last change it
    /// deleted, has expired. Returns how many were deleted.
    pub async fn prune_deleted_events(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        if self.backend() == Backend::Postgres {
            // Prunes take turns, so their numbers commit in order: a reader
            // that saw prune n saw every one before it. Readers go on.
            sqlx::query("LOCK TABLE event_feed_prunes IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        }
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT change_xact, change_seq FROM events WHERE deleted_at < $1
             UNION ALL SELECT change_xact, change_seq FROM event_deletions WHERE deleted_at < $1
             ORDER BY change_xact DESC, change_seq DESC LIMIT 1",
        )
        .bind(before)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((xact, seq)) = last else {
            return Ok(0);
        };
        // Up to the change recorded, whatever commits meanwhile. A deleted
        // event stays while a batch older than its deletion may still be
        // processed: it keeps that batch from bringing the event back. (Not
        // while a processed one is kept: the feed's readers are promised a
        // retention, and a reprocess may then bring one back.)
        let mut pruned = 0;
        let kept_for_late = older_batch_stored("events", "AND b.status IN ('pending', 'failed')");
        for (table, kept) in [("events", kept_for_late), ("event_deletions", "FALSE".into())] {
            let sql = format!(
                "DELETE FROM {table}
                 WHERE deleted_at < $1 AND (change_xact < $2 OR (change_xact = $2 AND change_seq <= $3)) AND NOT {kept}"
            );
            let deleted = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).bind(xact).bind(seq).execute(&mut *tx);
            pruned += deleted.await?.rows_affected();
        }
        if pruned > 0 {
            sqlx::query(
                "INSERT INTO event_feed_prunes (prune, change_xact, change_seq)
                 SELECT COALESCE(MAX(prune), 0) + 1, $1, $2 FROM event_feed_prunes",
            )
            .bind(xact)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(pruned)
    }

    /// Delete the objects and blocks deleted before `before`, deleted
    /// placeholders included (see `Written::confirm_deletion`). Nothing lists
    /// them; each is kept only so that a batch processed late, or processed
    /// again by `inlet reprocess`, cannot bring back what a newer one
    /// deleted, and so not while a batch older than its deletion is stored.
    /// Returns how many were deleted.
    pub async fn prune_deleted_objects_and_blocks(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut pruned = 0;
        for table in ["objects", "blocks"] {
            let sql = format!("DELETE FROM {table} WHERE deleted_at < $1 AND NOT {}", older_batch_stored(table, ""));
            pruned += sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(pruned)
    }

    /// A page of live objects in id order after `after`, filtered on kind and
    /// on when they last changed.
    pub async fn objects_page(&self, filter: &RecordFilter<'_>, after: Option<i64>) -> Result<Vec<ObjectRow>> {
        let sql = id_page_sql("objects", "name", filter, "");
        bind_id_page(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, after)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(ObjectRow {
                    id: row.try_get("id")?,
                    integration_id: row.try_get("integration_id")?,
                    external_id: row.try_get("external_id")?,
                    kind: row.try_get("kind")?,
                    name: row.try_get("name")?,
                    data: json(row)?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// A page of blocks by id after `after` (before it when newest first),
    /// filtered as objects are, and to those of the event `event_id` if given.
    pub async fn blocks_page(
        &self,
        filter: &RecordFilter<'_>,
        event_id: Option<&str>,
        after: Option<i64>,
    ) -> Result<Vec<BlockRow>> {
        let sql = id_page_sql("blocks", "event_id", filter, "AND ($9 IS NULL OR event_id = $9)");
        bind_id_page(sqlx::query(sqlx::AssertSqlSafe(sql)), filter, after)
            .bind(event_id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(BlockRow {
                    id: row.try_get("id")?,
                    integration_id: row.try_get("integration_id")?,
                    external_id: row.try_get("external_id")?,
                    kind: row.try_get("kind")?,
                    event_id: row.try_get("event_id")?,
                    data: json(row)?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn blocks(&self, integration_id: i64) -> Result<Vec<StoredBlock>> {
        sqlx::query(
            "SELECT external_id, kind, event_id, data FROM blocks
             WHERE integration_id = $1 AND deleted_at IS NULL ORDER BY kind, external_id",
        )
        .bind(integration_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| {
            Ok(StoredBlock {
                external_id: row.try_get("external_id")?,
                kind: row.try_get("kind")?,
                event_id: row.try_get("event_id")?,
                data: json(&row)?,
            })
        })
        .collect()
    }
}

fn stored_event(row: &AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        external_id: row.try_get("external_id")?,
        kind: row.try_get("kind")?,
        occurred_at: row.try_get("occurred_at")?,
        actor: row.try_get("actor")?,
        target: row.try_get("target")?,
        value: row.try_get("value")?,
        unit: row.try_get("unit")?,
        data: json(row)?,
    })
}

const EVENT_ROW: &str =
    "id, integration_id, external_id, kind, occurred_at, actor, target, value, unit, data, deleted_at";

/// The filters of a [`RecordFilter`] on events, as parameters 1 to 4, 8 and 9
/// (see [`bind_event_page`]); 5 to 7 are each page's cursor and limit. Those
/// on what an event row holds itself,
const ROW_FILTERS: &str = "($1 IS NULL OR integration_id = $1) AND ($2 IS NULL OR kind = $2)";
/// its time, in time order,
const TIME_FILTERS: &str = "($3 IS NULL OR occurred_at >= $3) AND ($4 IS NULL OR occurred_at < $4)";
/// or, in the change feed, any time it has had: a change that moved it out
/// of the window is listed to that window's reader,
const SPAN_FILTERS: &str = "($3 IS NULL OR latest_occurred_at >= $3) AND ($4 IS NULL OR earliest_occurred_at < $4)";
/// and those on its integration's group,
const EVENT_GROUP_FILTERS: &str = "($8 IS NULL OR integration_id IN (SELECT id FROM integrations WHERE group_id = $8))
    AND ($9 IS NULL OR integration_id IN (SELECT id FROM integrations WHERE group_id = $9
         OR group_id IN (SELECT source_group_id FROM record_grants WHERE reader_group_id = $9)))";
/// or on `event_deletions`, which keep the group.
const DELETION_GROUP_FILTERS: &str = "($8 IS NULL OR group_id = $8)
    AND ($9 IS NULL OR group_id = $9 OR group_id IN (SELECT source_group_id FROM record_grants WHERE reader_group_id = $9))";

/// Which integrations' events are being deleted with them.
#[derive(Debug, Clone, Copy)]
pub(super) enum DeletedWith {
    Integration(i64),
    Group(i64),
}

/// Keep the places in the change feed of the events about to be deleted
/// with their integrations (by the foreign key's cascade), each with a new
/// change after every other: a feed's reader learns they are gone.
pub(super) async fn record_event_deletions(conn: &mut Connection, with: DeletedWith, now: i64) -> Result<()> {
    let (which, id) = match with {
        DeletedWith::Integration(id) => ("id = $1", id),
        DeletedWith::Group(id) => ("group_id = $1", id),
    };
    let (xact, seq) = match Backend::of(conn) {
        Backend::Postgres => {
            // A write of events holds a key-share lock on their integration's
            // row until it commits: wait for those in flight, so that the copy
            // below sees their events (the cascade would delete them unseen),
            // and make later ones wait and then fail.
            // In id order, as every writer holds them (see `lock_order`).
            let lock = format!("SELECT id FROM integrations WHERE {which} ORDER BY id FOR UPDATE");
            sqlx::query(sqlx::AssertSqlSafe(lock)).bind(id).execute(&mut *conn).await?;
            // In id order: nextval() is taken after the sort.
            change_stamp(Backend::Postgres)
        }
        // One statement writes them all: number them past the last change
        // (the table's trigger moves the counter on). BEGIN IMMEDIATE
        // already keeps every other writer out.
        Backend::Sqlite => ("0", "(SELECT last FROM event_change_counter) + ROW_NUMBER() OVER (ORDER BY e.id)"),
    };
    let sql = format!(
        "INSERT INTO event_deletions
             (event_id, integration_id, group_id, kind, external_id, occurred_at, earliest_occurred_at, latest_occurred_at,
              deleted_at, change_xact, change_seq)
         SELECT e.id, e.integration_id, i.group_id, e.kind, e.external_id, e.occurred_at, e.earliest_occurred_at,
                e.latest_occurred_at, $2, {xact}, {seq}
         FROM events AS e JOIN integrations AS i ON i.id = e.integration_id
         WHERE i.{which} ORDER BY e.id"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(now).execute(conn).await?;
    Ok(())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Bind an events page's nine parameters: the filters' ([`ROW_FILTERS`], [`EVENT_GROUP_FILTERS`]), the page's
/// cursor (`after`, parameters 5 and 6) and its limit (7).
fn bind_event_page<'q>(query: Query<'q>, filter: &RecordFilter<'q>, after: (Option<i64>, i64)) -> Query<'q> {
    (query.bind(filter.integration_id).bind(filter.kind).bind(filter.since).bind(filter.until))
        .bind(after.0)
        .bind(after.1)
        .bind(filter.limit)
        .bind(filter.group_id)
        .bind(filter.reader_group)
}

fn event_row(row: &AnyRow) -> Result<EventRow> {
    Ok(EventRow {
        id: row.try_get("id")?,
        integration_id: row.try_get("integration_id")?,
        deleted: row.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
        event: stored_event(row)?,
    })
}

/// A page of objects or blocks (`table`, with its own `column` beside the
/// common ones) by id, filtered as [`RecordFilter`] says, and by `extra`
/// (parameters from `$9`).
fn id_page_sql(table: &str, column: &str, filter: &RecordFilter<'_>, extra: &str) -> String {
    let (beyond, order) = if filter.newest_first { ("<", "DESC") } else { (">", "ASC") };
    format!(
        "SELECT id, integration_id, external_id, kind, {column}, data, updated_at FROM {table}
         WHERE deleted_at IS NULL AND ($1 IS NULL OR integration_id = $1) AND ($2 IS NULL OR kind = $2)
           AND ($3 IS NULL OR updated_at >= $3) AND ($4 IS NULL OR updated_at < $4) AND id {beyond} $5
           AND ($7 IS NULL OR integration_id IN (SELECT id FROM integrations WHERE group_id = $7))
           AND ($8 IS NULL OR integration_id IN (SELECT id FROM integrations WHERE group_id = $8
                OR group_id IN (SELECT source_group_id FROM record_grants WHERE reader_group_id = $8)))
           {extra}
         ORDER BY id {order} LIMIT $6"
    )
}

/// Bind the eight parameters of [`id_page_sql`].
fn bind_id_page<'q>(query: Query<'q>, filter: &RecordFilter<'q>, after: Option<i64>) -> Query<'q> {
    let start = if filter.newest_first { i64::MAX } else { 0 };
    (query.bind(filter.integration_id).bind(filter.kind).bind(filter.since).bind(filter.until))
        .bind(after.unwrap_or(start))
        .bind(filter.limit)
        .bind(filter.group_id)
        .bind(filter.reader_group)
}

fn json(row: &AnyRow) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(row.try_get::<&str, _>("data")?)?)
}

/// One batch's writes, counted.
struct Written {
    integration_id: i64,
    batch_id: i64,
    /// The newest older batch of the integration still to be processed: it
    /// may be processed after this one, so every record this batch holds is
    /// marked as held by it, written or not.
    late: Option<i64>,
    counts: RecordCounts,
}

impl Written {
    /// Count an upsert that returned `version`; one that wrote nothing
    /// confirms the record as this batch's.
    async fn upserted(
        &mut self,
        conn: &mut Connection,
        class: RecordClass,
        kind: &str,
        external_id: &str,
        version: Option<i64>,
    ) -> Result<()> {
        self.counts.count(version);
        if version.is_none() {
            self.confirm(conn, class, kind, external_id).await?;
        }
        Ok(())
    }

    /// Mark a record this batch holds but did not write (unchanged) as held
    /// by it, when a late batch may follow and could write over it: this
    /// batch's word on it is newer than that one's. A record confirmed once
    /// is not written again by the next batches.
    async fn confirm(&self, conn: &mut Connection, class: RecordClass, kind: &str, external_id: &str) -> Result<()> {
        let Some(late) = self.late else { return Ok(()) };
        let sql = format!(
            "UPDATE {} SET batch_id = $4 WHERE integration_id = $1 AND kind = $2 AND external_id = $3 AND batch_id <= $5",
            table(class)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.integration_id)
            .bind(kind)
            .bind(external_id)
            .bind(self.batch_id)
            .bind(late)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// A deletion this batch holds that deleted nothing (the record was
    /// deleted already, never stored, or a newer batch holds it): when a
    /// late batch may follow, the record is marked deleted by this batch,
    /// one never stored by a deleted placeholder, so that the late batch
    /// does not bring it back.
    async fn confirm_deletion(
        &self,
        conn: &mut Connection,
        class: RecordClass,
        kind: &str,
        external_id: &str,
        now: i64,
    ) -> Result<()> {
        let Some(late) = self.late else { return Ok(()) };
        let (columns, values) = match class {
            RecordClass::Object => ("data".to_string(), "'{}'".to_string()),
            // Listed by the change feed as deleted, at no time of its own.
            RecordClass::Event => {
                let (xact, seq) = change_stamp(Backend::of(conn));
                let columns = "occurred_at, earliest_occurred_at, latest_occurred_at, data, change_xact, change_seq";
                (columns.to_string(), format!("0, 0, 0, '{{}}', {xact}, {seq}"))
            }
            RecordClass::Block => ("event_id, data".to_string(), "'', '{}'".to_string()),
        };
        let table = table(class);
        let sql = format!(
            "INSERT INTO {table} (integration_id, kind, external_id, {columns}, created_at, updated_at, deleted_at, batch_id)
             VALUES ($1, $2, $3, {values}, $4, $4, $4, $5)
             ON CONFLICT (integration_id, kind, external_id) DO UPDATE SET batch_id = excluded.batch_id
             WHERE {table}.batch_id <= $6 AND {table}.deleted_at IS NOT NULL"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.integration_id)
            .bind(kind)
            .bind(external_id)
            .bind(now)
            .bind(self.batch_id)
            .bind(late)
            .execute(conn)
            .await?;
        Ok(())
    }
}

fn table(class: RecordClass) -> &'static str {
    match class {
        RecordClass::Object => "objects",
        RecordClass::Event => "events",
        RecordClass::Block => "blocks",
    }
}

/// SQL: a batch of the record's integration older than the one that holds
/// the record (a row of `table`) is stored, `and` it.
fn older_batch_stored(table: &str, and: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM raw_batches AS b WHERE b.integration_id = {table}.integration_id
                 AND b.id < {table}.batch_id {and})"
    )
}

/// Mark a record deleted by batch `batch_id`, unless a newer batch holds it.
async fn mark_deleted(
    conn: &mut Connection,
    integration_id: i64,
    class: RecordClass,
    kind: &str,
    external_id: &str,
    batch_id: i64,
    now: i64,
) -> Result<i64> {
    let stamp = match class {
        // A deletion is a change: the feed tells its readers.
        RecordClass::Event => {
            let (xact, seq) = change_stamp(Backend::of(conn));
            format!(", change_xact = {xact}, change_seq = {seq}")
        }
        RecordClass::Object | RecordClass::Block => String::new(),
    };
    let sql = format!(
        "UPDATE {} SET deleted_at = $4, updated_at = $4, version = version + 1, batch_id = $5{stamp}
         WHERE integration_id = $1 AND kind = $2 AND external_id = $3 AND deleted_at IS NULL AND batch_id <= $5",
        table(class)
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(integration_id)
        .bind(kind)
        .bind(external_id)
        .bind(now)
        .bind(batch_id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() as i64)
}
