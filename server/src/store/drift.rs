//! Router expectations: each pool's members as Switchyard last set and read them back.

use sqlx::FromRow;

use super::traits::*;
use super::{AuditRecord, SqliteStore, StoreResult, now_ts};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ExpectationRow {
    pub environment: String,
    pub backend: String,
    pub pool: String,
    pub target: String,
    pub address: String,
    pub weight_bp: i64,
    pub state: String,
    pub campaign_id: Option<i64>,
    #[sqlx(try_from = "super::TsText")]
    pub set_at: super::Timestamp,
}

const COLUMNS: &str =
    "environment, backend, pool, target, address, weight_bp, state, campaign_id, set_at";

/// One member as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub target: String,
    pub address: String,
    pub weight_bp: i64,
    pub state: String,
}

#[async_trait::async_trait]
impl DriftStore for SqliteStore {
    async fn set_expectations(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
        campaign_id: Option<i64>,
        members: &[Expected],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM router_expectations WHERE environment = ? AND backend = ? AND pool = ?",
        )
        .bind(environment)
        .bind(backend)
        .bind(pool)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM router_pending WHERE environment = ? AND backend = ? AND pool = ?",
        )
        .bind(environment)
        .bind(backend)
        .bind(pool)
        .execute(&mut *tx)
        .await?;
        let now = now_ts();
        for m in members {
            sqlx::query(
                "INSERT INTO router_expectations (environment, backend, pool, target, address, weight_bp, state, campaign_id, set_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(environment)
            .bind(backend)
            .bind(pool)
            .bind(&m.target)
            .bind(&m.address)
            .bind(m.weight_bp)
            .bind(&m.state)
            .bind(campaign_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_router_change(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
        campaign_id: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO router_pending (environment, backend, pool, campaign_id, since) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (environment, backend, pool) DO UPDATE SET campaign_id = excluded.campaign_id, since = excluded.since",
        )
        .bind(environment)
        .bind(backend)
        .bind(pool)
        .bind(campaign_id)
        .bind(now_ts())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pending_router_change(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
    ) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT campaign_id FROM router_pending WHERE environment = ? AND backend = ? AND pool = ?",
        )
        .bind(environment)
        .bind(backend)
        .bind(pool)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn expectations(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
    ) -> StoreResult<Vec<ExpectationRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM router_expectations WHERE environment = ? AND backend = ? AND pool = ? ORDER BY target"
        );
        Ok(sqlx::query_as(&sql)
            .bind(environment)
            .bind(backend)
            .bind(pool)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn watched_pools(&self) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT environment, backend, pool FROM router_expectations ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn accept_router_state(
        &self,
        environment: &str,
        pool: &str,
        audit: AuditRecord,
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("DELETE FROM router_expectations WHERE environment = ? AND pool = ?")
            .bind(environment)
            .bind(pool)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            Self::append_audit_in(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}
