//! Reading an environment back: each pool as its router has it (with each member's release as
//! its provider reports it), probes through the health source, and every way a pool differs
//! from its record. Used by the engine (start checks, rollback checks, the sampler) and by the
//! environments and campaign services.

use std::collections::BTreeMap;
use std::time::Duration;

use std::collections::BTreeSet;

use app::domain::environment::{BackendConfig, BackendKind, Environment};
use app::domain::ids::{Name, Weight};
use app::domain::reality::{self, Difference, DifferenceKind};
use app::domain::views::{MemberView, TrafficView};

use super::Adapters;
use crate::adapters::MemberReadback;
use crate::adapters::registry::AdapterFactory;
use crate::store::CampaignRow;

/// How to read a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Ask the health source about every member too (pages, start checks, rollback checks).
    Members,
    /// Router and provider only (the sampler, which gets probes from its health source).
    Skip,
}

/// How long one probe may take before it counts as failing.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the pool's router really has now, read back, with each member's release as its
/// provider reports it (else as the record says) and, with [`Probe::Members`], its health.
/// A DNS pool's members are the targets (of the record, or `extra`) whose host the record
/// resolves to. Never fails: the view says why the read-back is missing.
pub async fn pool_traffic(
    factory: &dyn AdapterFactory,
    env: &Environment,
    pool: &str,
    extra: &[String],
    probe: Probe,
) -> TrafficView {
    let unavailable = |e: String| TrafficView {
        pool: pool.to_string(),
        members: Vec::new(),
        share_by_release: Vec::new(),
        error: Some(e),
    };
    let router_cfg =
        env.pools
            .iter()
            .find(|p| p.name.as_str() == pool)
            .ok_or_else(|| format!("pool {pool} is not in environment {}", env.name))
            .and_then(|p| {
                env.backends.iter().find(|b| b.name == p.router).ok_or_else(|| {
                    format!("router {} is not in environment {}", p.router, env.name)
                })
            });
    let cfg = match router_cfg {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let router = match factory.router(cfg) {
        Ok(r) => r,
        Err(e) => return unavailable(e.to_string()),
    };
    let adapters = Adapters { env, factory };
    let members: Vec<MemberReadback> = if cfg.is_dns_router() {
        let record = pool_record(env, cfg, pool);
        let hosts = match router.read_dns(&record).await {
            Ok(Some(h)) => h.iter().map(|a| crate::adapters::dns_host(a)).collect::<Vec<_>>(),
            Ok(None) => {
                return unavailable(format!("router {} cannot read {record} back", cfg.name));
            }
            Err(e) => return unavailable(format!("cannot read the DNS record {record}: {e}")),
        };
        let mut candidates: Vec<String> = env
            .pools
            .iter()
            .filter(|p| p.name.as_str() == pool)
            .flat_map(|p| p.targets.iter().map(ToString::to_string))
            .collect();
        candidates.extend(extra.iter().cloned());
        candidates.dedup();
        let mut found = Vec::new();
        let mut matched = std::collections::BTreeSet::new();
        for t in candidates {
            if let Ok(address) = adapters.address(&t).await {
                let host = crate::adapters::dns_host(&address);
                if hosts.contains(&host) && !found.iter().any(|m: &MemberReadback| m.target == t) {
                    matched.insert(host);
                    found.push(MemberReadback {
                        target: t,
                        address,
                        weight: Weight::ZERO,
                        state: app::domain::plan::MemberState::Ready,
                    });
                }
            }
        }
        for h in hosts.into_iter().filter(|h| !matched.contains(h)) {
            found.push(MemberReadback {
                target: h.clone(),
                address: h,
                weight: Weight::ZERO,
                state: app::domain::plan::MemberState::Ready,
            });
        }
        let shares = Weight::FULL.split_even(found.len());
        found.into_iter().zip(shares).map(|(m, w)| MemberReadback { weight: w, ..m }).collect()
    } else {
        match router.read_pool(pool).await {
            Ok(m) => m,
            Err(e) => return unavailable(format!("cannot read the router: {e}")),
        }
    };
    let provider = env.first_backend(BackendKind::Provider).and_then(|b| factory.provider(b).ok());
    let health = match probe {
        Probe::Members => {
            env.first_backend(BackendKind::HealthSource).and_then(|b| factory.health(b).ok())
        }
        Probe::Skip => None,
    };
    let views = futures_util::future::join_all(members.into_iter().map(|m| {
        let provider = provider.clone();
        let health = health.clone();
        let recorded = env.targets.iter().find(|t| t.name.as_str() == m.target);
        async move {
            let described = match &provider {
                Some(p) => p.describe(&m.target).await.ok(),
                None => None,
            };
            let exists = described.as_ref().map(Option::is_some);
            let instance = described.flatten();
            let release = instance
                .as_ref()
                .map(|i| i.release.clone())
                .or_else(|| recorded.map(|t| t.release.to_string()));
            let health_url = instance
                .as_ref()
                .map(|i| i.health_url.clone())
                .or_else(|| recorded.map(|t| t.health_url.clone()));
            let (healthy, detail) = match (&health, &health_url, exists) {
                (_, _, Some(false)) => {
                    (Some(false), "the provider has no such instance".to_string())
                }
                (Some(h), Some(url), _) => probe_once(&**h, &m.target, url).await,
                (Some(_), None, _) => (None, "no health URL known".to_string()),
                (None, _, _) => (None, String::new()),
            };
            MemberView {
                target: m.target,
                address: m.address,
                weight_pct: m.weight.as_percent(),
                state: m.state.to_string(),
                release,
                exists,
                healthy,
                health: detail,
                health_url,
            }
        }
    }))
    .await;
    let serving: Vec<&MemberView> = views.iter().filter(|m| m.serving()).collect();
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

/// The DNS record a DNS router writes for `pool`.
fn pool_record(env: &Environment, cfg: &BackendConfig, pool: &str) -> String {
    match env.pools.iter().find(|p| p.name.as_str() == pool) {
        Some(p) => cfg.dns_record(&p.name),
        None => pool.to_string(),
    }
}

/// One probe, at most [`PROBE_TIMEOUT`]: (healthy, what it said).
pub async fn probe_once(
    h: &dyn crate::adapters::HealthSource,
    target: &str,
    url: &str,
) -> (Option<bool>, String) {
    match tokio::time::timeout(PROBE_TIMEOUT, h.probe(target, url)).await {
        Ok(Ok(p)) => (Some(p.ok), format!("{} in {:.0} ms", p.detail, p.latency_ms)),
        Ok(Err(e)) => (Some(false), e.to_string()),
        Err(_) => (Some(false), format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
}

/// The pool read back now (probing every member), and every way it differs from the record.
pub async fn pool_check(
    factory: &dyn AdapterFactory,
    env: &Environment,
    pool: &str,
) -> (TrafficView, Vec<Difference>) {
    let live = pool_traffic(factory, env, pool, &[], Probe::Members).await;
    let Ok(name) = Name::parse(pool) else { return (live, Vec::new()) };
    if let Some(e) = &live.error {
        let d = Difference {
            target: String::new(),
            kind: DifferenceKind::NotInRouter,
            message: format!(
                "the pool cannot be read back, so it cannot be compared with the record: {e}"
            ),
        };
        return (live, vec![d]);
    }
    let provider = env.first_backend(BackendKind::Provider).and_then(|b| factory.provider(b).ok());
    let mut gone = BTreeSet::new();
    if let (Some(p), Some(pl)) = (&provider, env.pool(&name)) {
        for t in &pl.targets {
            if !live.members.iter().any(|m| m.target == t.as_str())
                && matches!(p.describe(t.as_str()).await, Ok(None))
            {
                gone.insert(t.to_string());
            }
        }
    }
    let diffs = reality::differences(env, &name, &live, &gone);
    (live, diffs)
}

/// The instances a started campaign's plan creates (a DNS pool's read-back looks for them).
pub fn created_targets(row: &CampaignRow) -> Vec<String> {
    row.plan
        .as_deref()
        .and_then(|p| serde_json::from_str::<app::domain::plan::Plan>(p).ok())
        .map(|p| p.created_instances().into_iter().map(|(t, _, _)| t.to_string()).collect())
        .unwrap_or_default()
}
