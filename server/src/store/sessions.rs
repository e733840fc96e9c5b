//! tower-sessions store on the same database, so sessions survive a restart. The records
//! themselves go through [`SessionRecordStore`]; this adapter only encodes them.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::traits::SessionRecordStore;
use super::{SqliteStore, Store, StoreResult};

#[derive(Clone, Debug)]
pub struct SqlSessionStore {
    store: Store,
}

impl SqlSessionStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Deletes expired sessions; run periodically.
    pub async fn delete_expired(&self) -> StoreResult<u64> {
        self.store.delete_expired_sessions(time_now()).await
    }
}

fn time_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // A random 128-bit id colliding is astronomically unlikely, but never overwrite one.
        loop {
            let id = record.id.to_string();
            let expiry = record.expiry_date.unix_timestamp();
            if self.store.insert_new_session(&id, &data, expiry).await.map_err(backend)? {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        self.store
            .save_session(&record.id.to_string(), &data, record.expiry_date.unix_timestamp())
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row = self.store.load_session(&id.to_string(), time_now()).await.map_err(backend)?;
        let Some((data, expiry)) = row else { return Ok(None) };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = tower_sessions::cookie::time::OffsetDateTime::from_unix_timestamp(expiry)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete_session(&id.to_string()).await.map_err(backend)
    }
}

#[async_trait]
impl SessionRecordStore for SqliteStore {
    async fn insert_new_session(&self, id: &str, data: &str, expiry: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO sessions (id, data, expiry_date) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING",
        )
        .bind(id)
        .bind(data)
        .bind(expiry)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn save_session(&self, id: &str, data: &str, expiry: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, data, expiry_date) VALUES (?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
        )
        .bind(id)
        .bind(data)
        .bind(expiry)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn load_session(&self, id: &str, now: i64) -> StoreResult<Option<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT data, expiry_date FROM sessions WHERE id = ? AND expiry_date > ?",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expiry_date < ?")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
