//! Health samples for charts: what each target did in each sampling round of a campaign.

use sqlx::FromRow;

use super::traits::*;
use super::{SqliteStore, StoreResult, format_ts};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct SampleRow {
    pub id: i64,
    pub campaign_id: i64,
    #[sqlx(try_from = "super::TsText")]
    pub at: super::Timestamp,
    pub secs: f64,
    pub target: String,
    pub release: Option<String>,
    pub weight_bp: Option<i64>,
    pub state: Option<String>,
    pub requests: Option<i64>,
    pub errors: Option<i64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub probe_ok: Option<bool>,
    pub probe_ms: Option<f64>,
}

/// One target's figures for one round, to be stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSample {
    pub target: String,
    pub release: Option<String>,
    pub weight_bp: Option<i64>,
    pub state: Option<String>,
    pub requests: Option<u64>,
    pub errors: Option<u64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub probe_ok: Option<bool>,
    pub probe_ms: Option<f64>,
}

const COLUMNS: &str = "id, campaign_id, at, secs, target, release, weight_bp, state, requests, \
                       errors, p50_ms, p99_ms, probe_ok, probe_ms";

#[async_trait::async_trait]
impl SampleStore for SqliteStore {
    async fn insert_samples(
        &self,
        campaign_id: i64,
        at: chrono::DateTime<chrono::Utc>,
        secs: f64,
        samples: &[NewSample],
    ) -> StoreResult<i64> {
        let at = format_ts(at);
        let mut tx = self.write_tx().await?;
        let mut last = 0;
        for s in samples {
            let to_i64 = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
            last = sqlx::query(
                "INSERT INTO health_samples (campaign_id, at, secs, target, release, weight_bp, \
                 state, requests, errors, p50_ms, p99_ms, probe_ok, probe_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(campaign_id)
            .bind(&at)
            .bind(secs)
            .bind(&s.target)
            .bind(&s.release)
            .bind(s.weight_bp)
            .bind(&s.state)
            .bind(to_i64(s.requests))
            .bind(to_i64(s.errors))
            .bind(s.p50_ms)
            .bind(s.p99_ms)
            .bind(s.probe_ok)
            .bind(s.probe_ms)
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        }
        tx.commit().await?;
        Ok(last)
    }

    async fn samples_since(
        &self,
        campaign_id: i64,
        since: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<SampleRow>> {
        let mut rows: Vec<SampleRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM health_samples WHERE campaign_id = ? AND at >= ? \
             ORDER BY at DESC, id DESC LIMIT ?"
        ))
        .bind(campaign_id)
        .bind(format_ts(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.reverse();
        Ok(rows)
    }

    async fn latest_sample(
        &self,
        campaign_id: i64,
    ) -> StoreResult<Option<(i64, super::Timestamp)>> {
        let last: Option<(i64, super::TsText)> = sqlx::query_as(
            "SELECT id, at FROM health_samples WHERE campaign_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(last.map(|(id, at)| (id, at.into())))
    }

    async fn campaigns_to_sample(&self, grace_secs: i64, watch_secs: i64) -> StoreResult<Vec<i64>> {
        let now = chrono::Utc::now();
        let grace = format_ts(now - chrono::Duration::seconds(grace_secs));
        let watch = format_ts(now - chrono::Duration::seconds(watch_secs));
        let active: Vec<String> = app::domain::lifecycle::CampaignState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        Ok(sqlx::query_scalar(&format!(
            "SELECT id FROM campaigns WHERE status IN ({}) OR (finished_at IS NOT NULL AND finished_at >= ?) \
             OR (status = 'succeeded' AND finished_at >= ?) ORDER BY id",
            active.join(", ")
        ))
        .bind(grace)
        .bind(watch)
        .fetch_all(&self.pool)
        .await?)
    }
}
