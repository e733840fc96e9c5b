//! What people do to a campaign: start, pause, resume, approve, reject, skip and abort, each
//! checked against the lifecycle, written with its audit event, and the engine woken.

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::lifecycle::{self, CampaignState, Command};
use app::domain::plan::{self, Plan, StepKind};
use app::domain::validate::validate;
use app::domain::views::CampaignSummary;
use serde_json::json;

use crate::audit::record;
use crate::engine::alerts::AlertEvent;
use crate::notify::plan::{self as comms, CommsEvent};
use crate::services::access::{invalid, require};
use crate::store::{CampaignPatch, CampaignRow, StoreError};

use super::{CampaignService, state_of, summary, transition};

impl CampaignService {
    /// Every way the campaign's pool differs from its record now; empty for feature flags,
    /// which touch no pool.
    pub(super) async fn live_differences(
        &self,
        spec: &CampaignSpec,
        env: &Environment,
    ) -> Vec<app::domain::reality::Difference> {
        if matches!(spec.strategy, app::domain::campaign::Strategy::FeatureFlag { .. }) {
            return Vec::new();
        }
        crate::engine::observe::pool_check(self.engine.adapters(), env, &spec.pool).await.1
    }

    /// Validates again against the environment as it is now, freezes plan and environment,
    /// and hands the campaign to the engine.
    pub async fn start(&self, actor: &Principal, id: i64) -> Result<CampaignSummary, ApiError> {
        self.start_with(actor, id, None).await
    }

    /// Like [`CampaignService::start`]; a start outside the campaign's window (when it may only
    /// start inside) or inside a freeze of its environment is refused, unless an admin gives
    /// `override_reason`, which goes into the audit trail.
    pub async fn start_with(
        &self,
        actor: &Principal,
        id: i64,
        override_reason: Option<&str>,
    ) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        transition(&row, Command::Start)?;
        let spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let env = self.environment_named(&spec.environment).await?;
        let valid = validate(&spec, &env).map_err(|e| invalid(&e))?;
        let window = spec.window.resolve().map_err(|_| ApiError::internal())?;
        let now = chrono::Utc::now();
        let blocks = start_blocks(&spec, &env, &window, now);
        let overridden = match (
            blocks.is_empty(),
            override_reason.map(str::trim).filter(|r| !r.is_empty()),
        ) {
            (true, _) => None,
            (false, None) => {
                return Err(ApiError::conflict(format!(
                    "{}; an admin may start it anyway with a reason (override_reason), which is audited",
                    blocks.join("; ")
                )));
            }
            (false, Some(reason)) => {
                if !actor.role.allows(Role::Admin) {
                    return Err(ApiError::new(
                        app::api::ErrorCode::Forbidden,
                        format!("{}; only an admin may override this", blocks.join("; ")),
                    ));
                }
                Some(json!({ "reason": required_reason(reason)?, "overrode": blocks }))
            }
        };
        let differences = self.live_differences(&spec, &env).await;
        if !differences.is_empty() {
            return Err(pool_mismatch(&spec, &differences));
        }
        let plan = plan::compile(&valid.for_campaign(id));
        let patch = CampaignPatch {
            status: Some(CampaignState::Running),
            plan: Some(serde_json::to_string(&plan).map_err(|_| ApiError::internal())?),
            env_snapshot: Some(serde_json::to_string(&env).map_err(|_| ApiError::internal())?),
            step_index: Some(0),
            step_started_at: Some(None),
            started_at: Some(self.engine.now()),
            last_error: Some(None),
            comms: comms::change(CommsEvent::Started, &spec, &window, now),
            ..Default::default()
        };
        let mut details = json!({ "steps": plan.steps.len() });
        if let (Some(o), Some(d)) = (overridden, details.as_object_mut()) {
            d.insert("override".into(), o);
        }
        let audit = record(actor, "campaign.start", format!("campaign:{id}"), "success", details);
        self.store
            .patch_campaign(id, &[row.status], patch, Some(audit), Some(("started", json!({ "by": actor.username, "steps": plan.steps.len() }))))
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) if m.contains("already active") => {
                    ApiError::conflict(format!("pool '{}' in '{}' already has an active campaign; wait for it or abort it first", row.pool, row.environment))
                }
                other => other.into(),
            })?;
        self.engine.wake(id);
        self.wake_notifier();
        Ok(summary(&self.row(id).await?))
    }

    /// A person's command, audited, applied only if the campaign is still in the state it was
    /// read in (so a command and the engine never overwrite each other).
    pub(super) async fn command(
        &self,
        actor: &Principal,
        row: &CampaignRow,
        command: Command,
        patch: CampaignPatch,
        details: serde_json::Value,
    ) -> Result<CampaignSummary, ApiError> {
        let id = row.id;
        let action = format!(
            "campaign.{}",
            serde_json::to_value(command)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        );
        let audit = record(actor, &action, format!("campaign:{id}"), "success", details.clone());
        let kind = action.trim_start_matches("campaign.").to_string();
        let mut data = details;
        if let Some(obj) = data.as_object_mut() {
            obj.insert("by".into(), json!(actor.username));
        }
        // Applied while the campaign is in any state from which this command leads where it led
        // from the state it was read in (the engine may have moved it meanwhile, e.g. running →
        // awaiting approval, where an abort means the same).
        let next = lifecycle::transition(row.status, command).ok();
        let expect: Vec<CampaignState> = CampaignState::ALL
            .into_iter()
            .filter(|s| *s == row.status || lifecycle::transition(*s, command).ok() == next)
            .collect();
        self.store.patch_campaign(id, &expect, patch, Some(audit), Some((&kind, data))).await?;
        self.engine.wake(id);
        self.wake_notifier();
        Ok(summary(&self.row(id).await?))
    }

    fn current_step_kind(row: &CampaignRow) -> Option<StepKind> {
        let plan: Plan = serde_json::from_str(row.plan.as_deref()?).ok()?;
        plan.steps.get(usize::try_from(row.step_index).ok()?).map(|s| s.kind)
    }

    pub async fn pause(&self, actor: &Principal, id: i64) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        transition(&row, Command::Pause)?;
        self.command(
            actor,
            &row,
            Command::Pause,
            CampaignPatch {
                status: Some(CampaignState::Paused),
                pause_cause: Some(Some(lifecycle::PauseCause::Person)),
                ..Default::default()
            },
            json!({}),
        )
        .await
    }

    /// Resumes; past a planned pause it moves on, after an error it retries the failed step,
    /// and a paused rollback carries on (checking again before it routes to anyone).
    pub async fn resume(&self, actor: &Principal, id: i64) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        let next = transition(&row, Command::Resume)?;
        if next == CampaignState::Aborting {
            let patch = CampaignPatch {
                status: Some(CampaignState::Aborting),
                last_error: Some(None),
                ..Default::default()
            };
            return self
                .command(actor, &row, Command::Resume, patch, json!({ "rollback": true }))
                .await;
        }
        let mut patch = CampaignPatch {
            status: Some(CampaignState::Running),
            pause_cause: Some(None),
            last_error: Some(None),
            ..Default::default()
        };
        let accepted = row.pause_cause == Some(lifecycle::PauseCause::Judgement);
        if (row.last_error.is_none() && Self::current_step_kind(&row) == Some(StepKind::Pause))
            || accepted
        {
            patch.step_index = Some(row.step_index + 1);
            patch.step_started_at = Some(None);
        }
        // Paused on drift: resuming accepts the router's state as it is now (audited), so the
        // next step compares against that.
        let drift = row.pause_cause == Some(lifecycle::PauseCause::Drift);
        if drift {
            let audit = record(
                actor,
                "router.accept_state",
                format!("pool:{}/{}", row.environment, row.pool),
                "success",
                json!({ "campaign": id, "drift": row.last_error }),
            );
            self.store.accept_router_state(&row.environment, &row.pool, audit).await?;
        }
        self.command(actor, &row, Command::Resume, patch, json!({ "accepted_drift": drift })).await
    }

    /// Four eyes: nobody who created, edited, rescheduled or started the campaign approves it,
    /// and the environment's approval floor (frozen with it at start) holds whatever the spec
    /// says.
    pub async fn approve(&self, actor: &Principal, id: i64) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Approver)?;
        let row = self.row(id).await?;
        transition(&row, Command::Approve)?;
        let mut spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let floor = row
            .env_snapshot
            .as_deref()
            .and_then(|e| serde_json::from_str::<Environment>(e).ok())
            .and_then(|e| e.required_approvals());
        if let Some(floor) = floor {
            spec.approvals.required = spec.approvals.required.max(floor.required);
            spec.approvals.role = spec.approvals.role.max(floor.role);
        }
        lifecycle::can_approve(&row.created_by, &actor.username, actor.role, &spec.approvals)
            .map_err(|e| ApiError::new(app::api::ErrorCode::Forbidden, e.to_string()))?;
        let participants = self.store.campaign_participants(id).await?;
        if participants.iter().any(|p| p.eq_ignore_ascii_case(&actor.username)) {
            return Err(ApiError::new(
                app::api::ErrorCode::Forbidden,
                format!(
                    "{} created, edited or started this campaign, so cannot approve it: another approver must (four eyes)",
                    actor.username
                ),
            ));
        }
        let mut approvals: Vec<String> = serde_json::from_str(&row.approvals).unwrap_or_default();
        if approvals.iter().any(|a| a.eq_ignore_ascii_case(&actor.username)) {
            return Err(ApiError::conflict(format!(
                "{} has already approved this step",
                actor.username
            )));
        }
        approvals.push(actor.username.clone());
        let required = usize::from(spec.approvals.required.max(1));
        let mut patch =
            CampaignPatch { approvals: Some(json!(approvals).to_string()), ..Default::default() };
        if approvals.len() >= required {
            patch.status = Some(CampaignState::Running);
            patch.step_index = Some(row.step_index + 1);
            patch.step_started_at = Some(None);
            patch.approvals = Some("[]".into());
        }
        self.command(
            actor,
            &row,
            Command::Approve,
            patch,
            json!({ "approvals": approvals.len(), "required": required }),
        )
        .await
    }

    pub async fn reject(
        &self,
        actor: &Principal,
        id: i64,
        reason: &str,
    ) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Approver)?;
        let reason = required_reason(reason)?;
        let row = self.row(id).await?;
        transition(&row, Command::Reject)?;
        let patch = CampaignPatch {
            status: Some(CampaignState::Aborting),
            abort_reason: Some(format!("rejected by {}: {reason}", actor.username)),
            abort_requested_at: Some(self.engine.now()),
            ..Default::default()
        };
        self.command(actor, &row, Command::Reject, patch, json!({ "reason": reason })).await
    }

    /// Cuts a bake, a planned pause or a drain wait short. Acting steps and gates cannot be skipped.
    pub async fn skip(
        &self,
        actor: &Principal,
        id: i64,
        reason: &str,
    ) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let reason = required_reason(reason)?;
        let row = self.row(id).await?;
        transition(&row, Command::Skip)?;
        match Self::current_step_kind(&row) {
            Some(StepKind::Bake | StepKind::Pause | StepKind::WaitDrained) => {}
            Some(k) => {
                return Err(ApiError::conflict(format!(
                    "the current step is a {} step, which cannot be skipped; only bakes, pauses and drain waits can",
                    k.label()
                )));
            }
            None => return Err(ApiError::conflict("there is no current step to skip")),
        }
        let patch = CampaignPatch {
            status: Some(CampaignState::Running),
            step_index: Some(row.step_index + 1),
            step_started_at: Some(None),
            last_error: Some(None),
            ..Default::default()
        };
        self.store
            .record_step_run(crate::store::StepRun {
                campaign_id: id,
                phase: lifecycle::Phase::Forward,
                step_index: row.step_index,
                status: lifecycle::StepStatus::Skipped,
                attempts: 0,
                calls: "[]",
                verdict: None,
                log_line: Some(&format!("skipped by {}: {reason}", actor.username)),
            })
            .await?;
        self.command(
            actor,
            &row,
            Command::Skip,
            patch,
            json!({ "step": row.step_index, "reason": reason }),
        )
        .await
    }

    /// Stops now and rolls back until all traffic is on the from-release.
    pub async fn abort(
        &self,
        actor: &Principal,
        id: i64,
        reason: &str,
    ) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let reason = required_reason(reason)?;
        let row = self.row(id).await?;
        let next = transition(&row, Command::Abort)?;
        let patch = if next == CampaignState::Draft {
            // Unscheduling a scheduled campaign cancels its announced window.
            let spec: CampaignSpec =
                serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
            let comms =
                spec.window.resolve().ok().and_then(|w| {
                    comms::change(CommsEvent::Cancelled, &spec, &w, chrono::Utc::now())
                });
            CampaignPatch { status: Some(CampaignState::Draft), comms, ..Default::default() }
        } else if matches!(state_of(&row), CampaignState::Failed | CampaignState::RollbackPaused) {
            // The rollback already began: carry on with it; its reason and start time stay.
            CampaignPatch {
                status: Some(CampaignState::Aborting),
                last_error: Some(None),
                ..Default::default()
            }
        } else {
            let message = format!("{} aborted it: {reason}", actor.username);
            CampaignPatch {
                status: Some(CampaignState::Aborting),
                abort_reason: Some(reason.to_string()),
                abort_requested_at: Some(self.engine.now()),
                alert: self.engine.alert_for_row(&row, AlertEvent::RollingBack, &message),
                ..Default::default()
            }
        };
        self.command(actor, &row, Command::Abort, patch, json!({ "reason": reason })).await
    }
}

/// Why starting now is refused: outside a window the campaign may only start inside, or
/// inside a freeze of its environment. Empty: it may start.
fn start_blocks(
    spec: &CampaignSpec,
    env: &Environment,
    window: &app::domain::campaign::ResolvedWindow,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let mut blocks = Vec::new();
    if spec.window.start_only_inside && !window.contains(now) {
        let (s, e) = window.local();
        blocks.push(format!(
            "the campaign may only start inside its window, {} – {} ({})",
            s.format("%Y-%m-%d %H:%M"),
            e.format("%Y-%m-%d %H:%M"),
            window.tz.name()
        ));
    }
    if let Some(f) = app::domain::window::frozen_by(&env.freezes, now) {
        blocks.push(format!(
            "environment {} is in its freeze '{}' ({} → {}, {}); no campaign may start now",
            env.name, f.name, f.from, f.to, f.timezone
        ));
    }
    blocks
}

/// The start refused because the pool is not what its record says, naming every difference.
fn pool_mismatch(
    spec: &CampaignSpec,
    differences: &[app::domain::reality::Difference],
) -> ApiError {
    let list: Vec<&str> = differences.iter().map(|d| d.message.as_str()).collect();
    let mut e = ApiError::conflict(format!(
        "pool {} in {} is not what its record says, so the plan would be wrong: {}. Resolve each \
         (Environments page, or POST /api/v1/environments/{{id}}/pools/{}/accept-live), then start again",
        spec.pool,
        spec.environment,
        list.join("; "),
        spec.pool
    ));
    e.fields.insert("pool".into(), list.join("; "));
    e
}

fn required_reason(reason: &str) -> Result<&str, ApiError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ApiError::field(
            "reason",
            "say why, in a few words; the reason goes into the audit trail",
        ));
    }
    if r.chars().count() > 500 {
        return Err(ApiError::field("reason", "keep the reason under 500 characters"));
    }
    Ok(r)
}
