//! Server functions behind the environments page.

use leptos::prelude::*;

use super::error::ApiError;
use crate::domain::views::{BackendCheckView, EnvironmentOverview, PoolOverview};

#[server]
pub async fn environment_overviews() -> Result<Vec<EnvironmentOverview>, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.environments(&me).await.map_err(super::ctx::fail)
}

#[server]
pub async fn check_backends() -> Result<Vec<BackendCheckView>, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.check_backends(&me).await.map_err(super::ctx::fail)
}

/// Rewrites the record of `pool` in `environment` from what its router and provider really have
/// (operators; audited). Differences that need fixing (an unhealthy or drained member) remain.
#[server]
pub async fn accept_live_state(
    environment: String,
    pool: String,
) -> Result<PoolOverview, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?
        .campaigns
        .accept_live_state(&me, &environment, &pool)
        .await
        .map_err(super::ctx::fail)
}
