//! The campaign service: campaigns validated and authorised, every change one transaction with
//! its audit event, and commands that change the desired state for the engine (which is woken,
//! never raced). Split by concern: [`drafts`] (preview, create, edit, derive), [`commands`]
//! (start, pause, resume, approve, skip, abort), [`schedule`] (windows and their notices),
//! [`traffic`] (the pool as its router reads it back).

mod commands;
mod drafts;
mod events;
mod schedule;
mod traffic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use drafts::DraftFrom;
pub use events::{EventFeed, FeedItem};

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::lifecycle::{self, CampaignState, Command};
use app::domain::plan::Plan;
use app::domain::views::{CampaignDetail, CampaignPage, CampaignSummary, StepRunView};

use crate::services::access::require;
use crate::store::{CampaignQuery, CampaignRow, format_ts};

use crate::engine::Engine;
use crate::notify::Notifier;
use crate::services::environments::EnvironmentService;
use crate::store::Store;

#[derive(Clone)]
pub struct CampaignService {
    pub(crate) store: Store,
    engine: Engine,
    environments: EnvironmentService,
    notifier: Option<Notifier>,
    /// The newest router read-back per campaign: viewers share it for
    /// [`traffic::TRAFFIC_FRESH`], so a thousand open pages do not read the router a thousand
    /// times a second.
    traffic_cache: Arc<Mutex<HashMap<i64, traffic::SharedReadBack>>>,
    /// One router read at a time per campaign (see [`crate::services::flights`]).
    flights: crate::services::flights::Flights,
}

fn state_of(row: &CampaignRow) -> CampaignState {
    row.status
}

fn transition(row: &CampaignRow, command: Command) -> Result<CampaignState, ApiError> {
    lifecycle::transition(state_of(row), command).map_err(|e| ApiError::conflict(e.to_string()))
}

pub fn summary(row: &CampaignRow) -> CampaignSummary {
    let spec: Option<CampaignSpec> = serde_json::from_str(&row.spec).ok();
    let steps_total = row
        .plan
        .as_deref()
        .and_then(|p| serde_json::from_str::<Plan>(p).ok())
        .map(|p| p.steps.len())
        .unwrap_or(0);
    CampaignSummary {
        id: row.id,
        name: row.name.clone(),
        environment: row.environment.clone(),
        pool: row.pool.clone(),
        strategy: row.strategy.clone(),
        status: state_of(row),
        step_index: row.step_index,
        steps_total,
        created_by: row.created_by.clone(),
        created_at: format_ts(row.created_at),
        started_at: row.started_at.map(format_ts),
        finished_at: row.finished_at.map(format_ts),
        window_start: spec
            .as_ref()
            .map(|s| {
                s.window.start_utc().map_or_else(|| s.window.start.to_string(), |t| t.to_rfc3339())
            })
            .unwrap_or_default(),
        window_end: spec
            .as_ref()
            .map(|s| {
                s.window.end_utc().map_or_else(|| s.window.end.to_string(), |t| t.to_rfc3339())
            })
            .unwrap_or_default(),
        last_error: row.last_error.clone(),
        abort_reason: row.abort_reason.clone(),
        rollback_secs: row.rollback_secs,
    }
}

impl CampaignService {
    pub fn new(store: Store, engine: Engine) -> Self {
        Self {
            environments: EnvironmentService::new(store.clone(), engine.clone()),
            store,
            engine,
            notifier: None,
            traffic_cache: Default::default(),
            flights: Default::default(),
        }
    }

    /// Wakes `notifier` after every change that queued notices.
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn wake_notifier(&self) {
        if let Some(n) = &self.notifier {
            n.wake();
        }
    }

    /// The environments this service validates campaigns against.
    pub fn environments(&self) -> &EnvironmentService {
        &self.environments
    }

    /// What the campaign did to its users so far (see [`crate::engine::impact`]).
    pub async fn impact(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::domain::views::ImpactReport, ApiError> {
        require(actor, Role::Viewer)?;
        let row = self.row(id).await?;
        Ok(crate::engine::impact::report(&self.store, &row).await?)
    }

    async fn environment_named(&self, name: &str) -> Result<Environment, ApiError> {
        self.environments.named(name).await
    }

    pub async fn list(
        &self,
        actor: &Principal,
        q: CampaignQuery,
        page: u32,
        per_page: u32,
    ) -> Result<CampaignPage, ApiError> {
        require(actor, Role::Viewer)?;
        let per_page = per_page.clamp(1, 200);
        let (rows, total) =
            self.store.list_campaigns(&q, per_page, u64::from(page) * u64::from(per_page)).await?;
        let environments = self.store.environment_names().await?;
        Ok(CampaignPage {
            campaigns: rows.iter().map(summary).collect(),
            total,
            page,
            per_page,
            environments,
        })
    }

    pub(crate) async fn row(&self, id: i64) -> Result<CampaignRow, ApiError> {
        self.store
            .find_campaign(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("campaign {id}")))
    }

    pub async fn get(&self, actor: &Principal, id: i64) -> Result<CampaignDetail, ApiError> {
        require(actor, Role::Viewer)?;
        let row = self.row(id).await?;
        let spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let (plan, plan_frozen) = match &row.plan {
            Some(p) => (serde_json::from_str(p).ok(), true),
            None => (self.preview_for(actor, &spec, Some(id)).await.ok(), false),
        };
        let watch = match (state_of(&row), row.finished_at) {
            (CampaignState::Succeeded, Some(f)) if spec.rollback.watch_secs > 0 => {
                let until = Some(
                    f + chrono::Duration::seconds(
                        i64::try_from(spec.rollback.watch_secs).unwrap_or(0),
                    ),
                );
                let breach = self
                    .store
                    .latest_event(id, "watch_breach")
                    .await?
                    .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
                    .and_then(|d| d["message"].as_str().map(str::to_string));
                until.map(|u| app::domain::views::WatchView {
                    until: u.to_rfc3339(),
                    active: u > chrono::Utc::now() && breach.is_none(),
                    breach,
                })
            }
            _ => None,
        };
        // Before a start, the plan is only right if the pool is what its record says.
        let live_differences = match state_of(&row) {
            CampaignState::Draft | CampaignState::Scheduled => {
                match self.environment_named(&spec.environment).await {
                    Ok(env) => Some(self.live_differences(&spec, &env).await),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let step_runs = self
            .store
            .step_runs(id)
            .await?
            .into_iter()
            .map(|r| StepRunView {
                phase: r.phase,
                index: r.step_index,
                status: r.status,
                started_at: format_ts(r.started_at),
                finished_at: r.finished_at.map(format_ts),
                attempts: r.attempts,
                calls: serde_json::from_str(&r.calls).unwrap_or_default(),
                verdict: r.verdict.as_deref().and_then(|v| serde_json::from_str(v).ok()),
                log: r.log,
            })
            .collect();
        Ok(CampaignDetail {
            summary: summary(&row),
            rollback_plan: row.rollback_plan.as_deref().and_then(|p| serde_json::from_str(p).ok()),
            approvals: serde_json::from_str(&row.approvals).unwrap_or_default(),
            allowed_commands: lifecycle::allowed_commands(state_of(&row))
                .into_iter()
                .filter(|c| {
                    !matches!(
                        c,
                        Command::RequestApproval
                            | Command::Complete
                            | Command::Fail
                            | Command::RollbackDone
                    )
                })
                .collect(),
            spec,
            plan,
            plan_frozen,
            step_runs,
            live_differences,
            watch,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A campaign list's status filter: empty for every state, else one state by its stored name.
pub fn status_filter(raw: Option<String>) -> Result<Option<CampaignState>, ApiError> {
    match raw.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => CampaignState::parse(s).map(Some).ok_or_else(|| {
            let known: Vec<&str> = CampaignState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::field(
                "status",
                format!("'{s}' is not a campaign state; use one of {}", known.join(", ")),
            )
        }),
    }
}
