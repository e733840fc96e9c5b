//! Drafts: the plan preview, creating and editing a draft, and new drafts derived from an
//! existing campaign (a clone, or the rollback release).

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::lifecycle::CampaignState;
use app::domain::plan::{self, Plan};
use app::domain::validate::validate;
use app::domain::views::CampaignDetail;
use serde_json::json;

use crate::audit::record;
use crate::services::access::{invalid, require};
use crate::store::DraftFields;

use super::{CampaignService, state_of};

impl CampaignService {
    /// Validates against the named environment and compiles the plan (the preview).
    pub async fn preview(&self, actor: &Principal, spec: &CampaignSpec) -> Result<Plan, ApiError> {
        self.preview_for(actor, spec, None).await
    }

    /// The preview of campaign `id` (its instances named for it) or of an unsaved spec.
    pub(super) async fn preview_for(
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
