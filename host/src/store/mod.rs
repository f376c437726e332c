//! Database access. One file per table holds all of that table's SQL; queries
//! are written once in the `$N` placeholder dialect that both SQLite and
//! PostgreSQL accept, and run through sqlx's `Any` driver. Every write takes its
//! time from the injected clock.

pub mod api_tokens;
pub mod groups;
pub mod integrations;
pub mod jobs;
pub mod leases;
pub mod oauth_authorizations;
pub mod oauth_start_links;
pub mod raw_batches;
pub mod records;
pub mod run_batches;
pub mod state;
pub mod sync_runs;
pub mod webhook_deliveries;

use crate::auth::secrets::SecretKey;
use crate::clock::{Millis, SharedClock};
use anyhow::{Context, Result, bail};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;

pub use sqlx::AnyConnection as Connection;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one writer at a time: the embedded default.
    Sqlite,
    /// Shared by several processes.
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clock: SharedClock,
    /// Seals credentials before they are written.
    secrets: Arc<SecretKey>,
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
        let mut pool = AnyPoolOptions::new().max_connections(16);
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers proceed during a write; busy_timeout makes
                    // writers queue instead of failing under contention.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool =
            pool.connect_with(options).await.with_context(|| format!("cannot open database {}", redact_url(url)))?;
        let migrations = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrations.run(&pool).await.context("migrating the database")?;
        Ok(Store { pool, backend, clock, secrets })
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

    pub fn open_sealed_text(&self, sealed: &str) -> Result<String> {
        Ok(String::from_utf8(self.secrets.open(sealed)?)?)
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Begin a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// cannot upgrade its lock while another connection writes, and fails with
    /// SQLITE_BUSY instead of waiting its turn.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
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

/// `$start, $start+1, ...` for an `IN (...)` list of `count` values.
pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// `($start, ...), (...), ...`: `rows` rows of `columns` placeholders, for a
/// multi-row `VALUES` list. Both databases name its columns column1, column2, ...
pub(crate) fn value_rows(start: usize, rows: usize, columns: usize) -> String {
    (0..rows).map(|row| format!("({})", placeholders(start + row * columns, columns))).collect::<Vec<_>>().join(", ")
}
