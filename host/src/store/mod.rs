//! Database access. One file per table holds all of that table's SQL; queries
//! are written once in the `$N` placeholder dialect that both SQLite and
//! PostgreSQL accept, and run through sqlx's `Any` driver. Where the two differ
//! (row locks, reading a batch's rows from JSON) a fragment is chosen per
//! [`Backend`]. Every write takes its time from the injected clock.

pub mod api_tokens;
pub mod groups;
pub mod integrations;
pub mod jobs;
pub mod leases;
mod listing;
mod lock_order;
pub mod oauth_authorizations;
pub mod oauth_start_links;
pub mod quota_spends;
pub mod raw_batches;
pub mod record_grants;
pub mod records;
pub mod run_batches;
pub mod state;
pub mod sync_runs;
pub mod webhook_deliveries;

use crate::clock::{Millis, SharedClock};
use crate::secrets::SecretKey;
use anyhow::{Context, Result, bail};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection as _, Executor};
use std::str::FromStr;
use std::sync::Arc;

pub use sqlx::AnyConnection as Connection;

/// Pages are read one row longer than asked, to learn whether another
/// follows: trim that row, and return the last row kept when one does.
pub fn next_page<T: Clone>(rows: &mut Vec<T>, fetched_limit: i64) -> Option<T> {
    if (rows.len() as i64) < fetched_limit {
        return None;
    }
    rows.truncate(fetched_limit as usize - 1);
    rows.last().cloned()
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one writer at a time: the embedded default.
    Sqlite,
    /// Shared by several processes.
    Postgres,
}

impl Backend {
    /// The database a connection talks to.
    pub(crate) fn of(conn: &Connection) -> Backend {
        match conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
            true => Backend::Postgres,
            false => Backend::Sqlite,
        }
    }
}

/// The longest wait for a connection, when all are busy or the database is
/// unreachable.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Whether `error` says the database cannot be used for now (down, cut off,
/// every connection stuck, its disk full), rather than that a statement
/// failed: the same request may succeed later.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|e| e.downcast_ref::<sqlx::Error>()).any(|e| match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(error) => cannot_write_now(error.as_ref()),
        _ => false,
    })
}

/// Whether the database refused for a reason of its own state that passes:
/// SQLite's file cannot be written (disk full, an I/O error, read-only,
/// cannot be opened); PostgreSQL out of resources (class 53: disk full, out
/// of memory, too many connections), shutting down or starting (57P01-03),
/// or its connection lost (class 08).
fn cannot_write_now(error: &dyn sqlx::error::DatabaseError) -> bool {
    const SQLITE_READONLY: i64 = 8;
    const SQLITE_IOERR: i64 = 10;
    const SQLITE_FULL: i64 = 13;
    const SQLITE_CANTOPEN: i64 = 14;
    let Some(code) = error.code() else { return false };
    if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended codes carry the primary code in their low byte.
        let primary = code.parse::<i64>().map_or(0, |code| code & 0xff);
        return [SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN].contains(&primary);
    }
    code.starts_with("53") || code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code.as_ref())
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clock: SharedClock,
    /// Seals credentials before they are written.
    secrets: Arc<SecretKey>,
    /// SQLite's single write lock, taken in this process first: see [`WriteTx`].
    write_turn: Arc<tokio::sync::Mutex<()>>,
    /// On a SQLite file, one connection that syncs the log at each commit:
    /// see [`Store::begin_durable`].
    durable: Option<AnyPool>,
    /// The SQLite database file.
    file: Option<std::path::PathBuf>,
}

impl Store {
    /// Open (creating and migrating if needed) the database at `url`.
    pub async fn open(url: &str, clock: SharedClock, secrets: Arc<SecretKey>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            bail!("the database URL must start with sqlite: or postgres: (got {})", redact_url(url))
        };
        let options = AnyConnectOptions::from_str(&with_create_mode(url))
            .with_context(|| format!("invalid database URL {}", redact_url(url)))?;
        let pool = pool_options(backend, 16, Synchronous::Normal)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open database {}", redact_url(url)))?;
        let migrations = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrations.run(&pool).await.context("migrating the database")?;
        let file = sqlite_file(url);
        // Only a file is shared by two pools (each connection to `:memory:`
        // is a database of its own).
        let durable = file.as_ref().map(|_| pool_options(backend, 1, Synchronous::Full).connect_lazy_with(options));
        Ok(Store { pool, backend, clock, secrets, write_turn: Arc::default(), durable, file })
    }

    /// The database file, on SQLite (not in memory).
    pub fn database_file(&self) -> Option<std::path::PathBuf> {
        self.file.clone()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Seal `text` with the secret key: only this host can read it, or make one.
    pub fn seal_text(&self, text: &str) -> String {
        self.secrets.seal(text.as_bytes())
    }

    /// A tag of `text` for `purpose` that only this host can make.
    pub fn tag_text(&self, purpose: &str, text: &str) -> String {
        self.secrets.tag(purpose, text)
    }

    pub fn open_sealed_text(&self, sealed: &str) -> Result<String> {
        Ok(String::from_utf8(self.secrets.open(sealed)?)?)
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn clock(&self) -> SharedClock {
        Arc::clone(&self.clock)
    }

    /// Begin a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// cannot upgrade its lock while another connection writes, and fails with
    /// SQLITE_BUSY instead of waiting its turn.
    pub async fn begin(&self) -> Result<WriteTx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn().await;
                WriteTx { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _turn: turn }
            }
            Backend::Postgres => WriteTx { tx: self.pool.begin().await?, _turn: None },
        })
    }

    /// Begin a write transaction whose commit survives a power loss, for
    /// what is acknowledged outside once written: a webhook delivery answered
    /// 202, tokens a provider issued (it may have spent the old ones).
    /// PostgreSQL's commits all do. SQLite's, in WAL mode with `synchronous =
    /// NORMAL`, survive the process's crash but not the machine's; this one
    /// commits through a connection with `synchronous = FULL`, which syncs
    /// the log, and with it every commit before.
    pub async fn begin_durable(&self) -> Result<WriteTx> {
        match &self.durable {
            Some(durable) => {
                let turn = self.write_turn().await;
                Ok(WriteTx { tx: durable.begin_with("BEGIN IMMEDIATE").await?, _turn: turn })
            }
            None => self.begin().await,
        }
    }

    /// On SQLite, this process's turn to write, for a write outside
    /// [`Store::begin`]; nothing on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(Arc::clone(&self.write_turn).lock_owned().await),
            Backend::Postgres => None,
        }
    }
}

/// A write transaction; derefs to its connection. On SQLite it also holds
/// this process's write turn: writers wait for each other here, woken as soon
/// as the turn is free, rather than in SQLite's busy handler, which sleeps
/// 1 to 100 ms between tries (the queue sat idle 40% of the time).
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.tx
    }
}

/// When SQLite syncs its log to disk: at checkpoints only (a commit survives
/// the process's crash), or at every commit too (and the machine's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    Normal,
    Full,
}

/// How the store's pools connect and hand out connections.
fn pool_options(backend: Backend, connections: u32, synchronous: Synchronous) -> AnyPoolOptions {
    // No ping before handing out a connection: it is a round trip per
    // acquire (and on SQLite a hop to its thread), paid on every query of
    // the job path; a connection that did break fails its query and is
    // closed, as it would have failed the ping.
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        // While the database is down, a caller learns it in this long
        // (the API answers 503) instead of waiting the default 30 s.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A transaction whose end failed can leave its connection inside
        // it for good: after an I/O error (a full disk) SQLite has rolled
        // it back itself, so the driver's ROLLBACK fails and the driver
        // still counts the transaction, refusing every later BEGIN on that
        // connection. Such a connection is closed rather than pooled. A
        // rollback still queued (a dropped transaction) is waited for: the
        // ping runs after it.
        .after_release(|conn, _| {
            Box::pin(async move {
                if conn.is_in_transaction() {
                    conn.ping().await?;
                }
                Ok(!conn.is_in_transaction())
            })
        });
    if backend == Backend::Postgres {
        return pool;
    }
    let synchronous = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    pool.after_connect(move |conn, _| {
        Box::pin(async move {
            // WAL lets readers proceed during a write; busy_timeout makes
            // writers queue instead of failing under contention.
            let pragmas = format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456;"
            );
            conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
            Ok(())
        })
    })
}

/// The file a `sqlite:` URL names, unless it is in memory.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// SQLite creates the file only when asked to.
fn with_create_mode(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains("mode=") || url.contains(":memory:") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// Database URLs may carry a password; never print it.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

// Batch statements take their rows as one JSON parameter, not a placeholder
// per value: the SQL text (and so the prepared statement) is the same for any
// batch size, and SQLite does not look up thousands of `$N` names, each a
// linear search (a batch of 256 runs spent a third of its time there).
// PostgreSQL reads them as `jsonb`: parsed once, where each `->>` on `json`
// parses the row's text again (7.7 µs against 1.1 µs per 12-column row).

/// A subquery over the rows in parameter `$param`, a JSON array of arrays:
/// element `i` of each becomes column `columns[i].0`. `columns[i].1` is its
/// PostgreSQL type (SQLite keeps JSON's own types).
pub(crate) fn json_rows(backend: Backend, param: usize, columns: &[(&str, &str)]) -> String {
    let selected = columns
        .iter()
        .enumerate()
        .map(|(i, (name, pg_type))| match backend {
            Backend::Postgres => format!("(r.value ->> {i})::{pg_type} AS {name}"),
            Backend::Sqlite => format!("r.value ->> {i} AS {name}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    match backend {
        Backend::Postgres => format!("(SELECT {selected} FROM jsonb_array_elements(${param}::jsonb) AS r(value))"),
        Backend::Sqlite => format!("(SELECT {selected} FROM json_each(${param}) AS r)"),
    }
}

/// Rows of `integration_id` and `error_message` as a map; of several rows of
/// one integration, the last is kept.
pub(crate) fn errors_by_integration(rows: Vec<sqlx::any::AnyRow>) -> Result<std::collections::BTreeMap<i64, String>> {
    use sqlx::Row;
    let mut errors = std::collections::BTreeMap::new();
    for row in rows {
        let message: Option<String> = row.try_get("error_message")?;
        errors.insert(row.try_get("integration_id")?, message.unwrap_or_default());
    }
    Ok(errors)
}

/// `column` is one of the integers in parameter `$param`, a JSON array.
pub(crate) fn json_ids_match(backend: Backend, column: &str, param: usize) -> String {
    match backend {
        Backend::Postgres => any_of(column, &format!("value::bigint FROM jsonb_array_elements_text(${param}::jsonb)")),
        Backend::Sqlite => format!("{column} IN (SELECT value FROM json_each(${param}))"),
    }
}

/// `UPDATE {table} SET {set} FROM` the rows in parameter `$param` (as for
/// [`json_rows`], named `v`), matched on `id`, their first column. On
/// PostgreSQL the rows are read once into a CTE, and the match is also written
/// as `id = ANY(...)`, which is always an index lookup (see [`any_of`]); SQLite
/// already looks each row up by key.
pub(crate) fn json_update(backend: Backend, table: &str, set: &str, param: usize, columns: &[(&str, &str)]) -> String {
    assert_eq!(columns.first().map(|c| c.0), Some("id"), "rows are matched on their first column, id");
    let rows = json_rows(backend, param, columns);
    match backend {
        Backend::Postgres => format!(
            "WITH v AS MATERIALIZED {rows} UPDATE {table} SET {set} FROM v WHERE {table}.id = v.id AND {}",
            any_of(&format!("{table}.id"), "id FROM v")
        ),
        Backend::Sqlite => format!("UPDATE {table} SET {set} FROM {rows} AS v WHERE {table}.id = v.id"),
    }
}

/// PostgreSQL cannot tell how many rows a JSON function yields (it assumes
/// 100) and, with the stale statistics of a growing table, joins them by
/// scanning the whole table; `= ANY(array)` is always an index lookup.
fn any_of(column: &str, select: &str) -> String {
    format!("{column} = ANY(ARRAY(SELECT {select}))")
}

/// The JSON a [`json_rows`] or [`json_ids_match`] parameter takes: tuples become arrays.
pub(crate) fn json_param(rows: &impl serde::Serialize) -> String {
    serde_json::to_string(rows).expect("rows of numbers and strings always serialize")
}
