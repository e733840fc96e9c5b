//! Who took part in a campaign, read from the audit trail (append-only and hash-chained, so it
//! is the record nobody can quietly edit): four eyes means none of them may approve it.

use super::traits::*;
use super::{SqliteStore, StoreResult};

/// The actions that make someone a participant: they wrote, changed or started the campaign.
pub const PARTICIPATING_ACTIONS: [&str; 4] =
    ["campaign.create", "campaign.update", "campaign.reschedule", "campaign.start"];

#[async_trait::async_trait]
impl ApprovalStore for SqliteStore {
    async fn campaign_participants(&self, id: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT actor FROM audit_events WHERE object = ? AND outcome = 'success' \
             AND action IN (?, ?, ?, ?) ORDER BY actor",
        )
        .bind(format!("campaign:{id}"))
        .bind(PARTICIPATING_ACTIONS[0])
        .bind(PARTICIPATING_ACTIONS[1])
        .bind(PARTICIPATING_ACTIONS[2])
        .bind(PARTICIPATING_ACTIONS[3])
        .fetch_all(&self.pool)
        .await?)
    }
}
