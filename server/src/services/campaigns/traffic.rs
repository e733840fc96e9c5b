//! The pool of a campaign as its router reads it back, shared for a moment between viewers.

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::environment::Environment;
use app::domain::views::TrafficView;

use crate::services::access::require;

/// A router read-back shared by viewers: when it was read, the campaign's update time then.
pub(super) type SharedReadBack = (std::time::Instant, crate::store::Timestamp, TrafficView);

/// How long one router read-back serves every viewer of a campaign.
pub(super) const TRAFFIC_FRESH: std::time::Duration = std::time::Duration::from_millis(250);

use super::CampaignService;

impl CampaignService {
    /// What the pool's router really has now, read back, with each member's release.
    pub async fn traffic(&self, actor: &Principal, id: i64) -> Result<TrafficView, ApiError> {
        require(actor, Role::Viewer)?;
        // A read-back is shared for a moment, but never across a change of the campaign (its
        // row's update time): a change can come with a router change the page must show.
        let row = self.row(id).await?;
        let fresh = || {
            self.traffic_cache.lock().ok().and_then(|c| {
                c.get(&id)
                    .filter(|(at, seen, _)| at.elapsed() < TRAFFIC_FRESH && *seen == row.updated_at)
                    .map(|(_, _, t)| t.clone())
            })
        };
        if let Some(t) = fresh() {
            return Ok(t);
        }
        let _turn = self.flights.enter("traffic", id).await;
        if let Some(t) = fresh() {
            return Ok(t);
        }
        let env: Environment = match &row.env_snapshot {
            Some(e) => serde_json::from_str(e).map_err(|_| ApiError::internal())?,
            None => self.environment_named(&row.environment).await?,
        };
        let view = crate::engine::observe::pool_traffic(
            self.engine.adapters(),
            &env,
            &row.pool,
            &crate::engine::observe::created_targets(&row),
            crate::engine::observe::Probe::Members,
        )
        .await;
        if let Ok(mut c) = self.traffic_cache.lock() {
            c.retain(|_, (at, _, _)| at.elapsed() < TRAFFIC_FRESH);
            c.insert(id, (std::time::Instant::now(), row.updated_at, view.clone()));
        }
        Ok(view)
    }
}
