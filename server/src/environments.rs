//! Environments as they are now, for the environments page: each target's health, each pool
//! as its router reads it back (with each member's release), drift, and `backends check`.

use std::collections::BTreeMap;
use std::time::Duration;

use app::api::ApiError;
use app::domain::environment::{BackendKind, Environment};
use app::domain::views::{
    BackendCheckView, DriftView, EnvironmentOverview, MemberView, TargetHealthView, TrafficView,
};

use crate::adapters::registry::AdapterFactory;
use crate::engine::Engine;
use crate::store::Store;

/// What the pool's router really has now, read back, with each member's release (asked of the
/// environment's provider, else as the environment records it). Never fails: the view says
/// why the read-back is missing.
pub async fn pool_traffic(
    factory: &dyn AdapterFactory,
    env: &Environment,
    pool: &str,
) -> TrafficView {
    let unavailable = |e: String| TrafficView {
        pool: pool.to_string(),
        members: Vec::new(),
        share_by_release: Vec::new(),
        error: Some(e),
    };
    let router =
        env.pools
            .iter()
            .find(|p| p.name.as_str() == pool)
            .ok_or_else(|| format!("pool {pool} is not in environment {}", env.name))
            .and_then(|p| {
                env.backends.iter().find(|b| b.name == p.router).ok_or_else(|| {
                    format!("router {} is not in environment {}", p.router, env.name)
                })
            })
            .and_then(|cfg| factory.router(cfg).map_err(|e| e.to_string()));
    let members = match router {
        Ok(r) => match r.read_pool(pool).await {
            Ok(m) => m,
            Err(e) => return unavailable(format!("cannot read the router: {e}")),
        },
        Err(e) => return unavailable(e),
    };
    let provider = env
        .backends
        .iter()
        .find(|b| b.kind == BackendKind::Provider)
        .and_then(|b| factory.provider(b).ok());
    let mut views = Vec::new();
    for m in members {
        let from_env =
            env.targets.iter().find(|t| t.name.as_str() == m.target).map(|t| t.release.to_string());
        let release = match &provider {
            Some(p) => p.describe(&m.target).await.ok().flatten().map(|i| i.release).or(from_env),
            None => from_env,
        };
        views.push(MemberView {
            target: m.target,
            address: m.address,
            weight_pct: m.weight.as_percent(),
            state: m.state.to_string(),
            release,
        });
    }
    let serving: Vec<&MemberView> =
        views.iter().filter(|m| m.state == "ready" && m.weight_pct > 0.0).collect();
    let total: f64 = serving.iter().map(|m| m.weight_pct).sum();
    let mut shares: BTreeMap<String, f64> = BTreeMap::new();
    for m in serving {
        *shares.entry(m.release.clone().unwrap_or_else(|| "?".into())).or_default() +=
            m.weight_pct * 100.0 / total.max(f64::MIN_POSITIVE);
    }
    TrafficView {
        pool: pool.to_string(),
        members: views,
        share_by_release: shares.into_iter().collect(),
        error: None,
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
            Some(h) => match tokio::time::timeout(
                Duration::from_secs(2),
                h.probe(t.name.as_str(), &t.health_url),
            )
            .await
            {
                Ok(Ok(p)) => (Some(p.ok), format!("{} in {:.0} ms", p.detail, p.latency_ms)),
                Ok(Err(e)) => (None, e.to_string()),
                Err(_) => (Some(false), "no answer within 2 s".into()),
            },
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
            pools.push(pool_traffic(factory, &env, p.name.as_str()).await);
        }
        out.push(EnvironmentOverview {
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
    let report = crate::backends::check_all(store, factory, crate::backends::CHECK_TIMEOUT).await?;
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
