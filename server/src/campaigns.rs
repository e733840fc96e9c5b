//! The campaign service: environments and campaigns, validated and authorised, every change
//! one transaction with its audit event, and commands that change the desired state for the
//! engine (which is woken, never raced).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::lifecycle::{self, CampaignState, Command};
use app::domain::plan::{self, Plan, StepKind};
use app::domain::validate::{ValidationErrors, validate};
use app::domain::views::{
    CampaignDetail, CampaignPage, CampaignSummary, EnvironmentView, StepRunView, TrafficView,
};
use serde_json::json;

use crate::audit::record;
use crate::engine::Engine;
use crate::engine::alerts::AlertEvent;
use crate::notify::Notifier;
use crate::notify::plan::{self as comms, CommsEvent};
use crate::store::{
    CampaignPatch, CampaignQuery, CampaignRow, DraftFields, EnvironmentRow, Store, StoreError,
    now_ts,
};

#[derive(Clone)]
pub struct CampaignService {
    pub(crate) store: Store,
    engine: Engine,
    notifier: Option<Notifier>,
    /// Charts already drawn, shared by every viewer of the same campaign and sample round.
    pub(crate) chart_cache: crate::charts::Cache,
    /// The newest router read-back per campaign: viewers share it for [`TRAFFIC_FRESH`], so a
    /// thousand open pages do not read the router a thousand times a second.
    traffic_cache: Arc<Mutex<HashMap<i64, SharedReadBack>>>,
    /// One chart drawing and one router read at a time per campaign (see [`crate::flights`]).
    pub(crate) flights: crate::flights::Flights,
}

/// A router read-back shared by viewers: when it was read, the campaign's update time then.
type SharedReadBack = (std::time::Instant, String, TrafficView);

/// How long one router read-back serves every viewer of a campaign.
const TRAFFIC_FRESH: std::time::Duration = std::time::Duration::from_millis(250);

pub(crate) fn require(actor: &Principal, role: Role) -> Result<(), ApiError> {
    if actor.role.allows(role) { Ok(()) } else { Err(ApiError::forbidden(role)) }
}

/// Field errors as the API returns them: the first message per field.
pub fn invalid(errors: &ValidationErrors) -> ApiError {
    let mut fields = BTreeMap::new();
    for e in &errors.0 {
        fields.entry(e.field.clone()).or_insert_with(|| e.message.clone());
    }
    let n = errors.0.len();
    let first = errors.0.first().map(|e| format!("{}: {}", e.field, e.message)).unwrap_or_default();
    let mut err = ApiError::new(
        app::api::ErrorCode::Invalid,
        if n == 1 {
            format!("the campaign has a problem: {first}")
        } else {
            format!("the campaign has {n} problems; first, {first}")
        },
    );
    err.fields = fields;
    err
}

fn state_of(row: &CampaignRow) -> CampaignState {
    row.status
}

fn transition(row: &CampaignRow, command: Command) -> Result<CampaignState, ApiError> {
    lifecycle::transition(state_of(row), command).map_err(|e| ApiError::conflict(e.to_string()))
}

/// What every reader of an environment gets: its secret settings shown as `<set>`.
fn redacted(mut view: EnvironmentView) -> EnvironmentView {
    view.spec = crate::adapters::settings::redacted(view.spec);
    view
}

fn secret_errors(fields: BTreeMap<String, String>) -> ApiError {
    let mut err = ApiError::new(
        app::api::ErrorCode::Invalid,
        "a secret setting says <set>, but no value is stored for it; give the value",
    );
    err.fields = fields;
    err
}

fn env_view(row: EnvironmentRow) -> Result<EnvironmentView, ApiError> {
    let spec = serde_json::from_str(&row.spec).map_err(|e| {
        tracing::error!(error = %e, environment = %row.name, "stored environment unreadable");
        ApiError::internal()
    })?;
    Ok(EnvironmentView {
        id: row.id,
        name: row.name,
        spec,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
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
        created_at: row.created_at.clone(),
        started_at: row.started_at.clone(),
        finished_at: row.finished_at.clone(),
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

fn draft_fields<'a>(spec: &'a CampaignSpec, strategy: &'a str, json: &'a str) -> DraftFields<'a> {
    DraftFields {
        name: &spec.name,
        environment: &spec.environment,
        pool: &spec.pool,
        strategy,
        spec: json,
    }
}

fn strategy_name(spec: &CampaignSpec) -> String {
    serde_json::to_value(&spec.strategy)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

impl CampaignService {
    pub fn new(store: Store, engine: Engine) -> Self {
        Self {
            store,
            engine,
            notifier: None,
            chart_cache: Default::default(),
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

    // ---- environments -------------------------------------------------------------------

    pub async fn list_environments(
        &self,
        actor: &Principal,
    ) -> Result<Vec<EnvironmentView>, ApiError> {
        require(actor, Role::Viewer)?;
        self.store
            .list_environments()
            .await?
            .into_iter()
            .map(|r| env_view(r).map(redacted))
            .collect()
    }

    pub async fn get_environment(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<EnvironmentView, ApiError> {
        require(actor, Role::Viewer)?;
        env_view(
            self.store
                .find_environment(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("environment {id}")))?,
        )
        .map(redacted)
    }

    fn check_environment(env: &Environment) -> Result<String, ApiError> {
        let mut fields = BTreeMap::new();
        let targets: Vec<&str> = env.targets.iter().map(|t| t.name.as_str()).collect();
        let backends: Vec<&str> = env.backends.iter().map(|b| b.name.as_str()).collect();
        for (field, message) in app::domain::window::check_freezes(&env.freezes) {
            fields.insert(field, message);
        }
        fields.extend(crate::adapters::settings::environment_errors(env));
        for (i, p) in env.pools.iter().enumerate() {
            if !backends.contains(&p.router.as_str()) {
                fields.insert(
                    format!("pools[{i}].router"),
                    format!(
                        "no backend named '{}': add it to backends or use one of {}",
                        p.router,
                        backends.join(", ")
                    ),
                );
            }
            for (j, t) in p.targets.iter().enumerate() {
                if !targets.contains(&t.as_str()) {
                    fields.insert(
                        format!("pools[{i}].targets[{j}]"),
                        format!("no target named '{t}' in this environment"),
                    );
                }
            }
        }
        if !fields.is_empty() {
            let first = fields.iter().next().map(|(f, m)| format!("{f}: {m}")).unwrap_or_default();
            let mut err = ApiError::new(
                app::api::ErrorCode::Invalid,
                format!("the environment has {} problem(s); first, {first}", fields.len()),
            );
            err.fields = fields;
            return Err(err);
        }
        serde_json::to_string(env).map_err(|_| ApiError::internal())
    }

    pub async fn create_environment(
        &self,
        actor: &Principal,
        mut env: Environment,
    ) -> Result<EnvironmentView, ApiError> {
        require(actor, Role::Admin)?;
        crate::adapters::settings::keep_blank_secrets(&mut env, None).map_err(secret_errors)?;
        let spec = Self::check_environment(&env)?;
        let audit = record(
            actor,
            "environment.create",
            format!("environment:{}", env.name),
            "success",
            json!({}),
        );
        let row =
            self.store.create_environment(env.name.as_str(), &spec, audit).await.map_err(|e| {
                match e {
                    StoreError::Conflict(m) => ApiError::field("name", m),
                    other => other.into(),
                }
            })?;
        env_view(row).map(redacted)
    }

    /// Replaces an environment; a blank secret setting keeps its stored value (secrets are
    /// write-only: reads show them as `<set>`).
    pub async fn update_environment(
        &self,
        actor: &Principal,
        id: i64,
        mut env: Environment,
    ) -> Result<EnvironmentView, ApiError> {
        require(actor, Role::Admin)?;
        let current = self
            .store
            .find_environment(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("environment {id}")))?;
        if current.name != env.name.as_str() {
            return Err(ApiError::field(
                "name",
                format!("an environment cannot be renamed (it is '{}')", current.name),
            ));
        }
        let stored = env_view(current)?.spec;
        crate::adapters::settings::keep_blank_secrets(&mut env, Some(&stored))
            .map_err(secret_errors)?;
        let spec = Self::check_environment(&env)?;
        let audit = record(
            actor,
            "environment.update",
            format!("environment:{}", env.name),
            "success",
            json!({}),
        );
        self.store.update_environment(id, &spec, audit).await?;
        self.get_environment(actor, id).await
    }

    pub async fn delete_environment(&self, actor: &Principal, id: i64) -> Result<(), ApiError> {
        require(actor, Role::Admin)?;
        let current = self
            .store
            .find_environment(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("environment {id}")))?;
        let audit = record(
            actor,
            "environment.delete",
            format!("environment:{}", current.name),
            "success",
            json!({}),
        );
        Ok(self.store.delete_environment(id, &current.name, audit).await?)
    }

    /// [`CampaignService::accept_live_state`] for the environment with id `env_id`.
    pub async fn accept_live_state_of(
        &self,
        actor: &Principal,
        env_id: i64,
        pool: &str,
    ) -> Result<app::domain::views::PoolOverview, ApiError> {
        require(actor, Role::Operator)?;
        let name = self
            .store
            .find_environment(env_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("environment {env_id}")))?
            .name;
        self.accept_live_state(actor, &name, pool).await
    }

    /// Rewrites the record of `pool` from what its router and provider have now (operators;
    /// audited with the before and after). Refused while a campaign holds the pool.
    pub async fn accept_live_state(
        &self,
        actor: &Principal,
        environment: &str,
        pool: &str,
    ) -> Result<app::domain::views::PoolOverview, ApiError> {
        require(actor, Role::Operator)?;
        let row = self
            .store
            .find_environment_by_name(environment)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("environment {environment}")))?;
        let env = env_view(row.clone())?.spec;
        let pool_name =
            app::domain::ids::Name::parse(pool).ok().filter(|n| env.pool(n).is_some()).ok_or_else(
                || ApiError::field("pool", format!("environment {environment} has no pool {pool}")),
            )?;
        if let Some(c) = self.store.campaign_holding_pool(environment, pool).await? {
            return Err(ApiError::conflict(format!(
                "campaign {} ({}) holds pool {pool}; its record changes when it ends",
                c.id, c.name
            )));
        }
        let factory = self.engine.adapters();
        let (live, _) = crate::environments::pool_check(factory, &env, pool).await;
        if let Some(e) = &live.error {
            return Err(ApiError::conflict(format!("cannot read pool {pool} back: {e}")));
        }
        let next =
            app::domain::reality::adopt(&env, &pool_name, &live.members, &Default::default())
                .map_err(|e| ApiError::conflict(e.to_string()))?;
        if next != env {
            let audit = record(
                actor,
                "environment.accept_live_state",
                format!("environment:{environment}"),
                "success",
                json!({
                    "pool": pool,
                    "before": app::domain::reality::describe_pool(&env, &pool_name),
                    "after": app::domain::reality::describe_pool(&next, &pool_name),
                }),
            );
            let spec = serde_json::to_string(&next).map_err(|_| ApiError::internal())?;
            self.store.update_environment(row.id, &spec, audit).await?;
        }
        let (live, differences) = crate::environments::pool_check(factory, &next, pool).await;
        let p = next.pool(&pool_name).ok_or_else(ApiError::internal)?;
        Ok(app::domain::views::PoolOverview {
            name: pool.to_string(),
            router: p.router.to_string(),
            record: next.pool_targets(p).into_iter().cloned().collect(),
            live,
            differences,
            campaign: None,
        })
    }

    /// One pool's record beside what is really there (viewers and above).
    pub async fn pool_overview(
        &self,
        actor: &Principal,
        env_id: i64,
        pool: &str,
    ) -> Result<app::domain::views::PoolOverview, ApiError> {
        require(actor, Role::Viewer)?;
        // The stored record itself: the adapters need its settings (secrets included).
        let row = self
            .store
            .find_environment(env_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("environment {env_id}")))?;
        let env = env_view(row)?.spec;
        let p = env.pools.iter().find(|p| p.name.as_str() == pool).ok_or_else(|| {
            ApiError::not_found(format!("pool {pool} in environment {}", env.name))
        })?;
        let (live, differences) =
            crate::environments::pool_check(self.engine.adapters(), &env, pool).await;
        let campaign = self
            .store
            .campaign_holding_pool(env.name.as_str(), pool)
            .await?
            .map(|c| (c.id, c.name, c.status));
        Ok(app::domain::views::PoolOverview {
            name: pool.to_string(),
            router: p.router.to_string(),
            record: env.pool_targets(p).into_iter().cloned().collect(),
            live,
            differences,
            campaign,
        })
    }

    async fn environment_named(&self, name: &str) -> Result<Environment, ApiError> {
        let row = self.store.find_environment_by_name(name).await?.ok_or_else(|| {
            ApiError::field(
                "environment",
                format!("no environment named '{name}': create it first or pick an existing one"),
            )
        })?;
        Ok(env_view(row)?.spec)
    }

    // ---- campaigns ----------------------------------------------------------------------

    /// Validates against the named environment and compiles the plan (the preview).
    pub async fn preview(&self, actor: &Principal, spec: &CampaignSpec) -> Result<Plan, ApiError> {
        self.preview_for(actor, spec, None).await
    }

    /// The preview of campaign `id` (its instances named for it) or of an unsaved spec.
    async fn preview_for(
        &self,
        actor: &Principal,
        spec: &CampaignSpec,
        id: Option<i64>,
    ) -> Result<Plan, ApiError> {
        require(actor, Role::Viewer)?;
        let env = self.environment_named(&spec.environment).await?;
        let valid = validate(spec, &env).map_err(|e| invalid(&e))?;
        Ok(plan::compile(&match id {
            Some(id) => valid.for_campaign(id),
            None => valid,
        }))
    }

    /// Every way the campaign's pool differs from its record now; empty for feature flags,
    /// which touch no pool.
    async fn live_differences(
        &self,
        spec: &CampaignSpec,
        env: &Environment,
    ) -> Vec<app::domain::reality::Difference> {
        if matches!(spec.strategy, app::domain::campaign::Strategy::FeatureFlag { .. }) {
            return Vec::new();
        }
        crate::environments::pool_check(self.engine.adapters(), env, &spec.pool).await.1
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
        let watch = match (state_of(&row), row.finished_at.as_deref()) {
            (CampaignState::Succeeded, Some(f)) if spec.rollback.watch_secs > 0 => {
                let until = chrono::DateTime::parse_from_rfc3339(f).ok().map(|f| {
                    f.with_timezone(&chrono::Utc)
                        + chrono::Duration::seconds(
                            i64::try_from(spec.rollback.watch_secs).unwrap_or(0),
                        )
                });
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
                started_at: r.started_at,
                finished_at: r.finished_at,
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

    /// An operator's valid spec, ready to store: its strategy name and its JSON.
    async fn checked_draft(
        &self,
        actor: &Principal,
        spec: &CampaignSpec,
    ) -> Result<(String, String), ApiError> {
        require(actor, Role::Operator)?;
        self.preview(actor, spec).await?;
        let json = serde_json::to_string(spec).map_err(|_| ApiError::internal())?;
        Ok((strategy_name(spec), json))
    }

    pub async fn create(
        &self,
        actor: &Principal,
        spec: CampaignSpec,
    ) -> Result<CampaignDetail, ApiError> {
        let (strategy, json) = self.checked_draft(actor, &spec).await?;
        let audit = record(
            actor,
            "campaign.create",
            "campaign:new",
            "success",
            json!({ "name": spec.name, "strategy": strategy }),
        );
        let row = self
            .store
            .create_campaign(draft_fields(&spec, &strategy, &json), &actor.username, audit)
            .await?;
        self.engine.announce(row.id);
        self.get(actor, row.id).await
    }

    pub async fn update(
        &self,
        actor: &Principal,
        id: i64,
        spec: CampaignSpec,
    ) -> Result<CampaignDetail, ApiError> {
        let (strategy, json) = self.checked_draft(actor, &spec).await?;
        let audit = record(
            actor,
            "campaign.update",
            format!("campaign:{id}"),
            "success",
            json!({ "name": spec.name }),
        );
        self.store.update_draft(id, draft_fields(&spec, &strategy, &json), audit).await?;
        self.engine.announce(id);
        self.get(actor, id).await
    }

    /// A new spec from campaign `id`, ready to edit and save as a draft: a copy (`Clone`) that
    /// starts from what the pool runs now, or (`RollbackRelease`, succeeded campaigns only) the
    /// way back to the release it replaced, with the same strategy, gates and communications.
    /// The window moves to start in five minutes, as long as it was. Nothing is stored.
    pub async fn draft_from(
        &self,
        actor: &Principal,
        id: i64,
        mode: DraftFrom,
    ) -> Result<CampaignSpec, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        let mut spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let env = self.environment_named(&spec.environment).await.ok();
        let runs_now = env.as_ref().and_then(|e| pool_release(e, &spec.pool));
        match mode {
            DraftFrom::RollbackRelease => {
                if state_of(&row) != CampaignState::Succeeded {
                    return Err(ApiError::conflict(format!(
                        "campaign {id} is {}; only a succeeded campaign's release can be rolled back \
                         (clone it instead)",
                        state_of(&row)
                    )));
                }
                if let Some(now) = &runs_now
                    && now != &spec.to_release
                {
                    return Err(ApiError::conflict(format!(
                        "pool {} no longer runs {} (it runs {now}): a later campaign changed it; clone \
                         this campaign instead and choose the releases",
                        spec.pool, spec.to_release
                    )));
                }
                std::mem::swap(&mut spec.from_release, &mut spec.to_release);
                spec.name = derived_name(&spec.name, "rollback");
            }
            DraftFrom::Clone => {
                if let Some(now) = runs_now {
                    spec.from_release = now;
                }
                spec.name = derived_name(&spec.name, "copy");
            }
        }
        let duration = spec.window.resolve().map(|w| w.end - w.start).unwrap_or_default();
        let duration = duration.max(chrono::Duration::hours(1));
        let start = chrono::Utc::now() + chrono::Duration::minutes(5);
        let start = start - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&start)));
        spec.window.start = start.into();
        spec.window.end = (start + duration).into();
        Ok(spec)
    }

    /// [`CampaignService::draft_from`], saved as a draft (validated like any other).
    pub async fn create_from(
        &self,
        actor: &Principal,
        id: i64,
        mode: DraftFrom,
    ) -> Result<CampaignDetail, ApiError> {
        let spec = self.draft_from(actor, id, mode).await?;
        self.create(actor, spec).await
    }

    /// A draft's spec, to edit in the form.
    pub async fn draft_spec(&self, actor: &Principal, id: i64) -> Result<CampaignSpec, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        if state_of(&row) != CampaignState::Draft {
            return Err(ApiError::conflict(format!(
                "campaign {id} is {}; only drafts can be edited (clone it to change a copy)",
                state_of(&row)
            )));
        }
        serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())
    }

    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<(), ApiError> {
        require(actor, Role::Operator)?;
        let audit =
            record(actor, "campaign.delete", format!("campaign:{id}"), "success", json!({}));
        Ok(self.store.delete_draft(id, audit).await?)
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
            started_at: Some(now_ts()),
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

    /// Announces a draft's window: the campaign becomes scheduled, its window is published on
    /// the status page and feeds, and the notices (now, 24 h and 1 h before) are queued.
    pub async fn schedule(&self, actor: &Principal, id: i64) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        if row.status != CampaignState::Draft {
            return Err(ApiError::conflict(format!(
                "campaign {id} is {}; only a draft can be scheduled (use reschedule to move a scheduled one)",
                row.status
            )));
        }
        let spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let window = self.schedulable(actor, &spec).await?;
        let patch = CampaignPatch {
            status: Some(CampaignState::Scheduled),
            comms: comms::change(CommsEvent::Scheduled, &spec, &window, chrono::Utc::now()),
            ..Default::default()
        };
        let details = json!({ "start": window.start.to_rfc3339(), "end": window.end.to_rfc3339() });
        self.command(actor, &row, Command::Schedule, patch, details).await
    }

    /// Moves a scheduled campaign's window: SEQUENCE goes up, the old reminders are cancelled,
    /// an updated notice goes out and new reminders are queued, all in one transaction.
    pub async fn reschedule(
        &self,
        actor: &Principal,
        id: i64,
        window: app::domain::campaign::MaintenanceWindow,
    ) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        if row.status != CampaignState::Scheduled {
            return Err(ApiError::conflict(format!(
                "campaign {id} is {}; only a scheduled campaign can be rescheduled",
                row.status
            )));
        }
        let mut spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let before = spec.window.clone();
        spec.window = window;
        let resolved = self.schedulable(actor, &spec).await?;
        let patch = CampaignPatch {
            spec: Some(serde_json::to_string(&spec).map_err(|_| ApiError::internal())?),
            comms: comms::change(CommsEvent::Rescheduled, &spec, &resolved, chrono::Utc::now()),
            ..Default::default()
        };
        let details = json!({
            "from": { "start": before.start.to_string(), "end": before.end.to_string() },
            "to": { "start": resolved.start.to_rfc3339(), "end": resolved.end.to_rfc3339() },
        });
        let audit = record(
            actor,
            "campaign.reschedule",
            format!("campaign:{id}"),
            "success",
            details.clone(),
        );
        self.store
            .patch_campaign(id, &[row.status], patch, Some(audit), Some(("rescheduled", details)))
            .await?;
        self.wake_notifier();
        Ok(summary(&self.row(id).await?))
    }

    /// The spec validated and its window resolved and in the future, or why not.
    async fn schedulable(
        &self,
        actor: &Principal,
        spec: &CampaignSpec,
    ) -> Result<app::domain::campaign::ResolvedWindow, ApiError> {
        self.preview(actor, spec).await?;
        let window = spec.window.resolve().map_err(|_| ApiError::internal())?;
        let problems =
            app::domain::window::check_schedulable(window.start, window.end, chrono::Utc::now());
        if !problems.is_empty() {
            let errors = ValidationErrors(
                problems
                    .into_iter()
                    .map(|(field, message)| app::domain::validate::FieldError {
                        field: field.into(),
                        message,
                    })
                    .collect(),
            );
            return Err(invalid(&errors));
        }
        Ok(window)
    }

    /// Deliveries of a campaign's notices: the schedule and the delivery log.
    pub async fn notices(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<Vec<crate::store::DeliveryRow>, ApiError> {
        require(actor, Role::Viewer)?;
        self.row(id).await?;
        Ok(crate::notify::privacy::visible_to(actor, self.store.campaign_deliveries(id).await?))
    }

    /// The communications section of the campaign page: notices, deliveries, and a preview of
    /// every kind the campaign can send, rendered as the dispatcher would.
    pub async fn comms(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::api::comms::CommsView, ApiError> {
        use app::api::comms::{CommsView, DeliveryView, NoticePreview, NoticeView};
        require(actor, Role::Viewer)?;
        let row = self.row(id).await?;
        let spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let notices = self.store.campaign_notices(id).await?;
        let deliveries =
            crate::notify::privacy::visible_to(actor, self.store.campaign_deliveries(id).await?);
        let base = self.notifier.as_ref().map(|n| n.public_url().to_string()).unwrap_or_default();
        let previews = match spec.window.resolve() {
            Err(_) => Vec::new(),
            Ok(w) => {
                let reminders = comms::reminders(&spec).into_iter().map(|(kind, _)| kind);
                ["scheduled".to_string()]
                    .into_iter()
                    .chain(reminders)
                    .chain(
                        [
                            "started",
                            "completed",
                            "rescheduled",
                            "cancelled",
                            "extended",
                            "rolled_back",
                        ]
                        .map(String::from),
                    )
                    .map(|kind| {
                        let payload = comms::payload(&kind, &spec, &w);
                        let n = crate::notify::render::Notice {
                            kind: &kind,
                            sequence: 0,
                            payload: &payload,
                        };
                        let (status, unsubscribe) = (
                            crate::notify::status_url(&base),
                            crate::notify::unsubscribe_url(&base, "PREVIEW"),
                        );
                        NoticePreview {
                            subject: n.headline(),
                            text: n.text(&status, &unsubscribe),
                            html: n.html(&status, &unsubscribe),
                            kind,
                        }
                    })
                    .collect()
            }
        };
        Ok(CommsView {
            notify: spec.communications.notify,
            publish: spec.communications.publish,
            notices: notices
                .into_iter()
                .map(|n| NoticeView {
                    id: n.id,
                    kind: n.kind,
                    sequence: n.sequence,
                    due_at: n.due_at,
                    status: n.status,
                })
                .collect(),
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryView {
                    notice_id: d.notice_id,
                    kind: d.kind,
                    channel: d.channel,
                    recipient: d.recipient,
                    due_at: d.due_at,
                    status: d.status,
                    attempts: d.attempts,
                    last_result: d.last_result,
                    sent_at: d.sent_at,
                })
                .collect(),
            previews,
        })
    }

    /// A person's command, audited, applied only if the campaign is still in the state it was
    /// read in (so a command and the engine never overwrite each other).
    async fn command(
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
            abort_requested_at: Some(now_ts()),
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
                abort_requested_at: Some(now_ts()),
                alert: self.engine.alert_for_row(&row, AlertEvent::RollingBack, &message),
                ..Default::default()
            }
        };
        self.command(actor, &row, Command::Abort, patch, json!({ "reason": reason })).await
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

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
        let view = crate::environments::pool_traffic(
            self.engine.adapters(),
            &env,
            &row.pool,
            &created_targets(&row),
            crate::environments::Probe::Members,
        )
        .await;
        if let Ok(mut c) = self.traffic_cache.lock() {
            c.retain(|_, (at, _, _)| at.elapsed() < TRAFFIC_FRESH);
            c.insert(id, (std::time::Instant::now(), row.updated_at.clone(), view.clone()));
        }
        Ok(view)
    }
}

#[async_trait::async_trait]
impl app::api::ports::CampaignsPort for CampaignService {
    async fn chart(
        &self,
        actor: &Principal,
        id: i64,
        target: Option<String>,
        tz: String,
        width: u32,
    ) -> Result<app::domain::views::ChartView, ApiError> {
        CampaignService::chart(self, actor, id, target, &tz, width).await
    }
    async fn list(
        &self,
        actor: &Principal,
        status: Option<String>,
        environment: Option<String>,
        search: Option<String>,
        page: u32,
    ) -> Result<CampaignPage, ApiError> {
        let status = status_filter(status)?;
        CampaignService::list(self, actor, CampaignQuery { status, environment, search }, page, 50)
            .await
    }
    async fn get(&self, actor: &Principal, id: i64) -> Result<CampaignDetail, ApiError> {
        CampaignService::get(self, actor, id).await
    }
    async fn command(
        &self,
        actor: &Principal,
        id: i64,
        command: Command,
        reason: &str,
    ) -> Result<CampaignSummary, ApiError> {
        match command {
            Command::Start => self.start(actor, id).await,
            Command::Schedule => self.schedule(actor, id).await,
            Command::Pause => self.pause(actor, id).await,
            Command::Resume => self.resume(actor, id).await,
            Command::Approve => self.approve(actor, id).await,
            Command::Reject => self.reject(actor, id, reason).await,
            Command::Skip => self.skip(actor, id, reason).await,
            Command::Abort => self.abort(actor, id, reason).await,
            other => Err(ApiError::field(
                "command",
                format!("'{}' is done by the engine, not by people", other.verb()),
            )),
        }
    }
    async fn traffic(&self, actor: &Principal, id: i64) -> Result<TrafficView, ApiError> {
        CampaignService::traffic(self, actor, id).await
    }

    async fn environments(
        &self,
        actor: &Principal,
    ) -> Result<Vec<app::domain::views::EnvironmentOverview>, ApiError> {
        require(actor, Role::Viewer)?;
        crate::environments::overviews(&self.store, &self.engine).await
    }

    async fn check_backends(
        &self,
        actor: &Principal,
    ) -> Result<Vec<app::domain::views::BackendCheckView>, ApiError> {
        require(actor, Role::Operator)?;
        crate::environments::check(&self.store, self.engine.adapters()).await
    }

    async fn comms(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::api::comms::CommsView, ApiError> {
        CampaignService::comms(self, actor, id).await
    }

    async fn accept_live_state(
        &self,
        actor: &Principal,
        environment: &str,
        pool: &str,
    ) -> Result<app::domain::views::PoolOverview, ApiError> {
        CampaignService::accept_live_state(self, actor, environment, pool).await
    }

    async fn impact(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::domain::views::ImpactReport, ApiError> {
        CampaignService::impact(self, actor, id).await
    }

    async fn replay_gate(
        &self,
        actor: &Principal,
        id: i64,
        gate: app::domain::campaign::GateSpec,
    ) -> Result<app::domain::views::GateReplay, ApiError> {
        CampaignService::replay_gate(self, actor, id, Some(gate)).await
    }
}

/// The instances a started campaign's plan creates (a DNS pool's read-back looks for them).
pub(crate) fn created_targets(row: &CampaignRow) -> Vec<String> {
    row.plan
        .as_deref()
        .and_then(|p| serde_json::from_str::<Plan>(p).ok())
        .map(|p| p.created_instances().into_iter().map(|(t, _, _)| t.to_string()).collect())
        .unwrap_or_default()
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

/// A campaign list's status filter: empty for every state, else one state by its stored name.
pub fn status_filter(raw: Option<String>) -> Result<Option<CampaignState>, ApiError> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
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

/// How a new draft is made from an existing campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftFrom {
    Clone,
    RollbackRelease,
}

/// The one release every target of the pool runs, as the record says.
fn pool_release(env: &Environment, pool: &str) -> Option<String> {
    let p = env.pools.iter().find(|p| p.name.as_str() == pool)?;
    let releases: std::collections::BTreeSet<String> =
        env.pool_targets(p).iter().map(|t| t.release.to_string()).collect();
    (releases.len() == 1).then(|| releases.into_iter().next()).flatten()
}

/// `web-upgrade` → `web-upgrade-rollback`, kept a valid name (63 characters at most).
fn derived_name(name: &str, suffix: &str) -> String {
    let base = name.strip_suffix(&format!("-{suffix}")).unwrap_or(name);
    let mut stem = base.to_string();
    stem.truncate(app::domain::ids::Name::MAX_LEN.saturating_sub(suffix.len() + 1));
    format!("{}-{suffix}", stem.trim_end_matches('-'))
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
