//! Bounded growth: what the server keeps for a while only (health samples, finished campaigns'
//! event streams, delivery attempts, subscribers who never confirmed) is deleted in small
//! batches once older than its retention. The audit trail is never pruned.

use super::traits::*;
use super::{SqliteStore, StoreResult, format_ts};

/// How many rows of each kind one pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub samples: u64,
    pub events: u64,
    pub delivery_attempts: u64,
    pub unconfirmed_subscribers: u64,
}

/// Ages (in days) past which rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub samples_days: i64,
    pub events_days: i64,
    pub deliveries_days: i64,
    pub unconfirmed_subscribers_days: i64,
}

/// Rows per delete, so a pruning never holds the write lock for long.
const BATCH: i64 = 5000;

#[async_trait::async_trait]
impl RetentionStore for SqliteStore {
    async fn prune(
        &self,
        keep: Retention,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Pruned> {
        let cutoff = |days: i64| format_ts(now - chrono::Duration::days(days.clamp(1, 36_500)));
        let samples = self
            .delete_batches(
                "DELETE FROM health_samples WHERE id IN (SELECT id FROM health_samples WHERE at < ? LIMIT ?)",
                &cutoff(keep.samples_days),
            )
            .await?;
        let events = self
            .delete_batches(
                "DELETE FROM campaign_events WHERE id IN (SELECT e.id FROM campaign_events e \
                 JOIN campaigns c ON c.id = e.campaign_id \
                 WHERE c.finished_at IS NOT NULL AND c.finished_at < ? LIMIT ?)",
                &cutoff(keep.events_days),
            )
            .await?;
        let delivery_attempts = self
            .delete_batches(
                "DELETE FROM delivery_attempts WHERE id IN (SELECT id FROM delivery_attempts WHERE started_at < ? LIMIT ?)",
                &cutoff(keep.deliveries_days),
            )
            .await?;
        let unconfirmed_subscribers = self
            .delete_batches(
                "DELETE FROM subscribers WHERE id IN (SELECT id FROM subscribers \
                 WHERE confirmed_at IS NULL AND created_at < ? LIMIT ?)",
                &cutoff(keep.unconfirmed_subscribers_days),
            )
            .await?;
        Ok(Pruned { samples, events, delivery_attempts, unconfirmed_subscribers })
    }
}

impl SqliteStore {
    async fn delete_batches(&self, sql: &str, cutoff: &str) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let n = sqlx::query(sql)
                .bind(cutoff)
                .bind(BATCH)
                .execute(&self.pool)
                .await?
                .rows_affected();
            total += n;
            if n < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
