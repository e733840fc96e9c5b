//! Server functions behind the environments page.

use leptos::prelude::*;

use super::error::ApiError;
use crate::domain::views::{BackendCheckView, EnvironmentOverview};

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
