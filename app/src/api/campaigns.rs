//! Server functions behind the campaign pages.

use leptos::prelude::*;

use super::error::ApiError;
use crate::domain::views::{CampaignDetail, CampaignPage, CampaignSummary, ChartView, TrafficView};

#[server]
pub async fn list_campaigns(
    status: String,
    search: String,
    page: u32,
    #[server(default)] environment: String,
) -> Result<CampaignPage, ApiError> {
    let me = super::ctx::principal()?;
    let opt = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    super::ctx::ports()?
        .campaigns
        .list(&me, opt(status), opt(environment), opt(search), page)
        .await
        .map_err(super::ctx::fail)
}

#[server]
pub async fn get_campaign(id: i64) -> Result<CampaignDetail, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.get(&me, id).await.map_err(super::ctx::fail)
}

#[server]
pub async fn campaign_traffic(id: i64) -> Result<TrafficView, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.traffic(&me, id).await.map_err(super::ctx::fail)
}

/// Runs a command (`start`, `pause`, `resume`, `approve`, `reject`, `skip`, `abort`).
#[server]
pub async fn campaign_command(
    id: i64,
    command: String,
    #[server(default)] reason: String,
) -> Result<CampaignSummary, ApiError> {
    let me = super::ctx::principal()?;
    let command: crate::domain::lifecycle::Command =
        serde_json::from_value(serde_json::Value::String(command.clone())).map_err(|_| {
            super::ctx::fail(ApiError::field("command", format!("unknown command '{command}'")))
        })?;
    super::ctx::ports()?
        .campaigns
        .command(&me, id, command, &reason)
        .await
        .map_err(super::ctx::fail)
}

/// The campaign's health chart, drawn on the server from stored samples: one target or the
/// pool (empty `target`), time labelled in `tz` (IANA). An empty `tz` means the zone the
/// browser reported in the `tz` cookie, else UTC.
#[server]
pub async fn campaign_chart(
    id: i64,
    #[server(default)] target: String,
    #[server(default)] tz: String,
    #[server(default)] width: u32,
) -> Result<ChartView, ApiError> {
    let me = super::ctx::principal()?;
    let tz = if tz.trim().is_empty() {
        super::ctx::cookie(crate::domain::views::TZ_COOKIE)
            .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
            .unwrap_or_default()
    } else {
        tz
    };
    let target = (!target.trim().is_empty()).then_some(target);
    let width = if width == 0 { 760 } else { width };
    super::ctx::ports()?.campaigns.chart(&me, id, target, tz, width).await.map_err(super::ctx::fail)
}

/// The campaign's impact report (what it did to its users, measured).
#[server]
pub async fn campaign_impact(id: i64) -> Result<crate::domain::views::ImpactReport, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.impact(&me, id).await.map_err(super::ctx::fail)
}
