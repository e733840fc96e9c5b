//! The environment service: environments validated and authorised (secrets write-only, every
//! change audited), each pool's record beside what its router really has, adopting the live
//! state of a pool, and the environments page (targets probed, pools read back, drift).

use std::collections::BTreeMap;

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::environment::{BackendKind, Environment};
use app::domain::views::{
    BackendCheckView, DriftView, EnvironmentOverview, EnvironmentView, PoolOverview,
    TargetHealthView,
};
use serde_json::json;

use crate::adapters::registry::AdapterFactory;
use crate::audit::record;
use crate::engine::Engine;
use crate::engine::observe::{pool_check, probe_once};
use crate::services::access::require;
use crate::store::{EnvironmentRow, Store, StoreError};

#[derive(Clone)]
pub struct EnvironmentService {
    store: Store,
    engine: Engine,
}

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
        created_at: crate::store::format_ts(row.created_at),
        updated_at: crate::store::format_ts(row.updated_at),
    })
}

impl EnvironmentService {
    pub fn new(store: Store, engine: Engine) -> Self {
        Self { store, engine }
    }

    /// The stored environment `id` (its secrets included), or not found.
    async fn stored(&self, id: i64) -> Result<EnvironmentRow, ApiError> {
        self.store
            .find_environment(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("environment {id}")))
    }

    /// Every environment as it is now (viewers and above).
    pub async fn overviews(&self, actor: &Principal) -> Result<Vec<EnvironmentOverview>, ApiError> {
        require(actor, Role::Viewer)?;
        overviews(&self.store, &self.engine).await
    }

    /// `backends check` of every environment (operators and above).
    pub async fn check_backends(
        &self,
        actor: &Principal,
    ) -> Result<Vec<BackendCheckView>, ApiError> {
        require(actor, Role::Operator)?;
        check(&self.store, self.engine.adapters()).await
    }

    /// The full `backends check` report, as the REST API answers it (operators and above).
    pub async fn backends_report(
        &self,
        actor: &Principal,
    ) -> Result<crate::services::backends::CheckReport, ApiError> {
        require(actor, Role::Operator)?;
        crate::services::backends::check_all(
            &self.store,
            self.engine.adapters(),
            crate::services::backends::CHECK_TIMEOUT,
        )
        .await
    }

    pub async fn list(&self, actor: &Principal) -> Result<Vec<EnvironmentView>, ApiError> {
        require(actor, Role::Viewer)?;
        self.store
            .list_environments()
            .await?
            .into_iter()
            .map(|r| env_view(r).map(redacted))
            .collect()
    }

    pub async fn get(&self, actor: &Principal, id: i64) -> Result<EnvironmentView, ApiError> {
        require(actor, Role::Viewer)?;
        env_view(self.stored(id).await?).map(redacted)
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

    pub async fn create(
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
    pub async fn update(
        &self,
        actor: &Principal,
        id: i64,
        mut env: Environment,
    ) -> Result<EnvironmentView, ApiError> {
        require(actor, Role::Admin)?;
        let current = self.stored(id).await?;
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
        self.get(actor, id).await
    }

    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<(), ApiError> {
        require(actor, Role::Admin)?;
        let current = self.stored(id).await?;
        let audit = record(
            actor,
            "environment.delete",
            format!("environment:{}", current.name),
            "success",
            json!({}),
        );
        Ok(self.store.delete_environment(id, &current.name, audit).await?)
    }

    /// [`EnvironmentService::accept_live_state`] for the environment with id `env_id`.
    pub async fn accept_live_state_of(
        &self,
        actor: &Principal,
        env_id: i64,
        pool: &str,
    ) -> Result<app::domain::views::PoolOverview, ApiError> {
        require(actor, Role::Operator)?;
        let name = self.stored(env_id).await?.name;
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
        let (live, _) = pool_check(factory, &env, pool).await;
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
        let (live, differences) = pool_check(factory, &next, pool).await;
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
        let row = self.stored(env_id).await?;
        let env = env_view(row)?.spec;
        let p = env.pools.iter().find(|p| p.name.as_str() == pool).ok_or_else(|| {
            ApiError::not_found(format!("pool {pool} in environment {}", env.name))
        })?;
        let (live, differences) = pool_check(self.engine.adapters(), &env, pool).await;
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

    pub(crate) async fn named(&self, name: &str) -> Result<Environment, ApiError> {
        let row = self.store.find_environment_by_name(name).await?.ok_or_else(|| {
            ApiError::field(
                "environment",
                format!("no environment named '{name}': create it first or pick an existing one"),
            )
        })?;
        Ok(env_view(row)?.spec)
    }
}

/// Probes each target through the environment's first health source (2 s at most each).
async fn target_health(factory: &dyn AdapterFactory, env: &Environment) -> Vec<TargetHealthView> {
    let health = env.first_backend(BackendKind::HealthSource).and_then(|b| factory.health(b).ok());
    let provider = env.first_backend(BackendKind::Provider).and_then(|b| factory.provider(b).ok());
    let mut out = Vec::new();
    for t in &env.targets {
        let release = match &provider {
            Some(p) => p.describe(t.name.as_str()).await.ok().flatten().map(|i| i.release),
            None => None,
        }
        .unwrap_or_else(|| t.release.to_string());
        let (healthy, detail) = match &health {
            Some(h) => probe_once(&**h, t.name.as_str(), &t.health_url).await,
            None => (None, "no health source in this environment".into()),
        };
        out.push(TargetHealthView {
            name: t.name.to_string(),
            address: t.address.clone(),
            group: t.group.clone(),
            release,
            healthy,
            detail,
        });
    }
    out
}

/// Every environment as it is now: targets probed, pools read back, drift.
pub async fn overviews(
    store: &Store,
    engine: &Engine,
) -> Result<Vec<EnvironmentOverview>, ApiError> {
    let drift = engine.drift();
    let mut out = Vec::new();
    for row in store.list_environments().await? {
        let env: Environment = serde_json::from_str(&row.spec).map_err(|e| {
            tracing::error!(error = %e, environment = %row.name, "stored environment unreadable");
            ApiError::internal()
        })?;
        let factory = engine.adapters();
        let mut pools = Vec::new();
        for p in &env.pools {
            let (live, differences) = pool_check(factory, &env, p.name.as_str()).await;
            let campaign = store
                .campaign_holding_pool(env.name.as_str(), p.name.as_str())
                .await?
                .map(|c| (c.id, c.name, c.status));
            pools.push(PoolOverview {
                name: p.name.to_string(),
                router: p.router.to_string(),
                record: env.pool_targets(p).into_iter().cloned().collect(),
                live,
                differences,
                campaign,
            });
        }
        out.push(EnvironmentOverview {
            id: row.id,
            name: env.name.to_string(),
            targets: target_health(factory, &env).await,
            pools,
            drift: drift
                .iter()
                .filter(|d| d.environment == env.name.as_str())
                .map(|d| DriftView {
                    backend: d.backend.clone(),
                    pool: d.pool.clone(),
                    differences: d.differences.clone(),
                    since: d.since.to_rfc3339(),
                })
                .collect(),
            backends: env
                .backends
                .iter()
                .map(|b| (b.name.to_string(), b.kind.label().to_string(), b.driver.clone()))
                .collect(),
        });
    }
    Ok(out)
}

pub async fn check(
    store: &Store,
    factory: &dyn AdapterFactory,
) -> Result<Vec<BackendCheckView>, ApiError> {
    let report = crate::services::backends::check_all(
        store,
        factory,
        crate::services::backends::CHECK_TIMEOUT,
    )
    .await?;
    Ok(report
        .backends
        .into_iter()
        .map(|b| BackendCheckView {
            environment: b.environment,
            name: b.name,
            kind: b.kind.label().to_string(),
            driver: b.driver,
            checked: b.checked,
            reachable: b.reachable,
            version: b.version,
            capabilities: b.capabilities,
            detail: b.error.or(b.detail).unwrap_or_default(),
        })
        .collect())
}
