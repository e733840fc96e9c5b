//! The store: the only place with SQL. Every method is one unit of work; a method that
//! changes state takes the audit record of that change and writes both in one transaction.
//! Services hold a [`Store`] (`Arc<dyn Repository>`: one trait per aggregate, in `traits.rs`)
//! and see only those methods and plain row types; [`SqliteStore`] implements them, and another
//! engine (PostgreSQL) can be added behind the same traits without touching a service.

mod approvals;
mod audit;
mod campaigns;
pub mod chain;
mod comms;
mod drift;
mod lock;
mod retention;
mod samples;
mod sessions;
mod tokens;
mod traits;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use traits::*;

pub use audit::{AuditQuery, AuditRecord, AuditRow, ChainHead};
pub use campaigns::{
    CampaignEventRow, CampaignPatch, CampaignQuery, CampaignRow, DraftFields, EnvironmentRow,
    EnvironmentUpdate, StepRun, StepRunRow,
};
pub use comms::{
    CommsChange, DeliveryJob, DeliveryOutcome, DeliveryRow, FeedEntryRow, NewAlert, NewNotice,
    NoticeRow, SubscriberRow, WindowPublish, WindowRow,
};
pub use drift::{ExpectationRow, Expected};
pub use lock::EngineLock;
pub use retention::{Pruned, Retention};
pub use samples::{NewSample, SampleRow};
pub use sessions::SqlSessionStore;
pub use tokens::{
    DEFAULT_TOKEN_EXPIRY_DAYS, TOKEN_EXPIRY_SETTING, TokenRow, TokenWithOwner, TokenWithOwnerName,
};
pub use users::{NewUser, UserRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(#[from] sqlx::Error),
}

impl StoreError {
    /// A unique-constraint violation becomes `Conflict` with a human message.
    fn from_write(err: sqlx::Error, conflict_message: impl FnOnce() -> String) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(conflict_message())
            }
            _ => StoreError::Other(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The SQLite store: one file, WAL, migrations from `migrations/sqlite/` applied at open.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database and applies pending migrations.
    #[tracing::instrument(skip_all, err)]
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let options = SqliteConnectOptions::from_str(database_url)
            .with_context(|| format!("database_url '{database_url}' is not a SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).with_context(|| {
                format!("cannot create the database directory {}", parent.display())
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open database {database_url}"))?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&pool)
            .await
            .context("applying database migrations failed")?;
        Ok(Self { pool })
    }

    /// A write transaction that holds SQLite's write lock from its first statement, so a
    /// read-then-write (the audit chain's head) cannot race another writer.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Every aggregate's store, as the services hold it.
pub type Store = std::sync::Arc<dyn Repository>;

/// All of the store: each aggregate's trait, and what concerns the database as a whole.
#[async_trait::async_trait]
pub trait Repository:
    ApprovalStore
    + AuditStore
    + CampaignStore
    + DriftStore
    + EnvironmentStore
    + OutboxStore
    + RetentionStore
    + SampleStore
    + SessionRecordStore
    + TokenStore
    + UserStore
    + std::fmt::Debug
{
    /// A trivial query, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// Writes a consistent copy of the whole database to `path`. Refuses to overwrite a file.
    async fn backup_to(&self, path: &std::path::Path) -> StoreResult<()>;

    /// Closes every connection (at shutdown).
    async fn close(&self);
}

/// Opens the store `database_url` names, creating it if missing and applying pending
/// migrations.
pub async fn connect(database_url: &str) -> anyhow::Result<Store> {
    Ok(std::sync::Arc::new(SqliteStore::connect(database_url).await?))
}

#[async_trait::async_trait]
impl Repository for SqliteStore {
    /// `SELECT 1`, for readiness checks.
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes a consistent copy of the whole database to `path` (SQLite's `VACUUM INTO`, one
    /// read transaction, so it is safe while the server runs). Refuses to overwrite a file.
    async fn backup_to(&self, path: &std::path::Path) -> StoreResult<()> {
        if path.exists() {
            return Err(StoreError::Conflict(format!(
                "{} already exists; choose a new file name",
                path.display()
            )));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_string_lossy().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file behind a SQLite URL; `None` for an in-memory database or another engine.
pub fn sqlite_file(database_url: &str) -> Option<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(database_url).ok()?;
    let f = options.get_filename();
    let s = f.to_string_lossy();
    if s.is_empty() || s == ":memory:" || database_url.contains(":memory:") {
        return None;
    }
    Some(f.to_path_buf())
}

/// A moment as the store hands it out and takes it in: every row and every method of the
/// store traits carries time as this type, never as text. SQLite keeps it as RFC 3339 text in
/// UTC with microseconds (`2026-12-03T17:52:52.123456Z`, written by [`format_ts`]), so that
/// comparing and ordering the text in SQL is comparing the moments; sqlx reads it back.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Now, in the store's text form (for SQL parameters).
pub(crate) fn now_ts() -> String {
    format_ts(chrono::Utc::now())
}

/// A moment in the store's text form; also the form the API and the feeds show.
pub fn format_ts(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Reads a stored moment back: RFC 3339 (the form [`format_ts`] writes).
pub(crate) fn parse_ts(s: &str) -> Result<Timestamp, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.to_utc())
}

/// How a moment is read out of SQLite: the text form, parsed; a column that does not parse is a
/// decode error, never a silent default. sqlx's own chrono support is not compiled in, so a
/// `DateTime` cannot be bound or read any other way: parameters are [`format_ts`] text, rows
/// read through `#[sqlx(try_from = "TsText")]` (or [`OptTsText`] for a nullable column).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TsText(Timestamp);

/// [`TsText`] for a nullable column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptTsText(Option<Timestamp>);

impl From<TsText> for Timestamp {
    fn from(t: TsText) -> Self {
        t.0
    }
}

impl From<OptTsText> for Option<Timestamp> {
    fn from(t: OptTsText) -> Self {
        t.0
    }
}

impl sqlx::Type<Sqlite> for TsText {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<Sqlite>>::type_info()
    }
}

impl sqlx::Type<Sqlite> for OptTsText {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<Sqlite>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, Sqlite> for TsText {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<Sqlite>>::decode(value)?;
        Ok(Self(parse_ts(text).map_err(|e| format!("stored time {text:?}: {e}"))?))
    }
}

impl<'r> sqlx::Decode<'r, Sqlite> for OptTsText {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::ValueRef as _;
        if value.is_null() {
            return Ok(Self(None));
        }
        Ok(Self(Some(<TsText as sqlx::Decode<Sqlite>>::decode(value)?.0)))
    }
}

/// Serializes a [`Timestamp`] (or an optional one) in the store's text form, for rows that are
/// answered as they are (`#[serde(with = "ts_text")]`).
pub mod ts_text {
    use super::{Timestamp, format_ts};

    pub fn serialize<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_ts(*t))
    }

    pub mod option {
        use super::{Timestamp, format_ts};

        pub fn serialize<S: serde::Serializer>(
            t: &Option<Timestamp>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&format_ts(*t)),
                None => s.serialize_none(),
            }
        }
    }
}
