//! Applies one planned backend call through its adapter and verifies it by reading it back.
//! Calls carry target names; addresses and health URLs are resolved here from the frozen
//! environment (existing targets) or from the provider (instances the campaign created).

use std::sync::Arc;
use std::time::Duration;

use app::domain::environment::{BackendConfig, Environment};
use app::domain::ids::Weight;
use app::domain::plan::{BackendCall, FlagCall, HealthCall, MemberState, ProviderCall, RouterCall};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::EngineConfig;
use crate::adapters::registry::AdapterFactory;
use crate::adapters::{AdapterError, AdapterResult, HealthSource, Provider, Router};

/// What one call did, as the step log and the campaign page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call: String,
    pub ok: bool,
    pub attempts: u32,
    /// What the backend reports after the change (or the error).
    pub readback: String,
}

pub struct Adapters<'a> {
    pub env: &'a Environment,
    pub factory: &'a dyn AdapterFactory,
}

impl Adapters<'_> {
    fn backend(&self, name: &str) -> AdapterResult<&BackendConfig> {
        self.env.backends.iter().find(|b| b.name.as_str() == name).ok_or_else(|| {
            AdapterError::Permanent(format!(
                "backend '{name}' is not in environment '{}'",
                self.env.name
            ))
        })
    }
    pub fn provider(&self, name: &str) -> AdapterResult<Arc<dyn Provider>> {
        self.factory.provider(self.backend(name)?)
    }
    pub fn router(&self, name: &str) -> AdapterResult<Arc<dyn Router>> {
        self.factory.router(self.backend(name)?)
    }
    pub fn health(&self, name: &str) -> AdapterResult<Arc<dyn HealthSource>> {
        self.factory.health(self.backend(name)?)
    }
    fn first_provider(&self) -> Option<Arc<dyn Provider>> {
        self.env
            .backends
            .iter()
            .find(|b| b.kind == app::domain::environment::BackendKind::Provider)
            .and_then(|b| self.factory.provider(b).ok())
    }

    /// A target's address: from the environment, else from the provider that created it.
    pub async fn address(&self, target: &str) -> AdapterResult<String> {
        if let Some(t) = self.env.targets.iter().find(|t| t.name.as_str() == target) {
            return Ok(t.address.clone());
        }
        self.instance_field(target, |i| i.address).await
    }

    pub async fn health_url(&self, target: &str) -> AdapterResult<String> {
        if let Some(t) = self.env.targets.iter().find(|t| t.name.as_str() == target) {
            return Ok(t.health_url.clone());
        }
        self.instance_field(target, |i| i.health_url).await
    }

    async fn instance_field(
        &self,
        target: &str,
        f: fn(crate::adapters::Instance) -> String,
    ) -> AdapterResult<String> {
        let provider = self.first_provider().ok_or_else(|| {
            AdapterError::Permanent(format!("no provider knows target '{target}'"))
        })?;
        provider
            .describe(target)
            .await?
            .map(f)
            .ok_or_else(|| AdapterError::Permanent(format!("target '{target}' does not exist")))
    }
}

/// Applies `call` and reads it back; `Ok(readback)` only when the backend shows the change.
pub async fn apply(a: &Adapters<'_>, call: &BackendCall) -> AdapterResult<String> {
    match call {
        BackendCall::Provider { backend, call } => {
            let p = a.provider(backend.as_str())?;
            match call {
                ProviderCall::Create { target, release, group } => {
                    p.create(target.as_str(), release.as_str(), group).await?;
                    let v = verify_instance(&*p, target.as_str(), Some(release.as_str())).await?;
                    Ok(with_log(v, p.log_tail(target.as_str()).await))
                }
                ProviderCall::Replace { target, release } => {
                    p.replace(target.as_str(), release.as_str()).await?;
                    let v = verify_instance(&*p, target.as_str(), Some(release.as_str())).await?;
                    Ok(with_log(v, p.log_tail(target.as_str()).await))
                }
                ProviderCall::Destroy { target } => {
                    p.destroy(target.as_str()).await?;
                    match p.describe(target.as_str()).await? {
                        None => Ok(format!("{target} is gone")),
                        Some(i) => Err(AdapterError::Transient(format!(
                            "{target} still exists at {}",
                            i.address
                        ))),
                    }
                }
            }
        }
        BackendCall::Router { backend, call } => {
            let r = a.router(backend.as_str())?;
            apply_router(a, &*r, call).await
        }
        BackendCall::Health { backend, call: HealthCall::Probe { target } } => {
            let h = a.health(backend.as_str())?;
            let url = a.health_url(target.as_str()).await?;
            let probe = h.probe(target.as_str(), &url).await?;
            if probe.ok {
                Ok(format!("{target} healthy ({}, {:.0} ms)", probe.detail, probe.latency_ms))
            } else {
                Err(AdapterError::Transient(format!("{target} not healthy: {}", probe.detail)))
            }
        }
        BackendCall::Flag { call: FlagCall::Set { flag, percent } } => {
            let store = a.factory.flags()?;
            store.set(flag.as_str(), *percent).await?;
            match store.get(flag.as_str()).await? {
                Some(p) if p == *percent => Ok(format!("flag {flag} is on for {p}")),
                Some(p) => Err(AdapterError::Transient(format!(
                    "flag {flag} reads back {p}, wanted {percent}"
                ))),
                None => Err(AdapterError::Transient(format!("flag {flag} does not exist yet"))),
            }
        }
        BackendCall::Notify { .. } => {
            Ok("notices were queued in the outbox with the state change; the notifier sends them"
                .into())
        }
    }
}

/// The read-back, then the last few lines the provider kept for the target (its log).
fn with_log(readback: String, log: Vec<String>) -> String {
    const SHOWN: usize = 5;
    if log.is_empty() {
        return readback;
    }
    let tail = &log[log.len().saturating_sub(SHOWN)..];
    format!("{readback}\n{}", tail.join("\n"))
}

async fn verify_instance(
    p: &dyn Provider,
    target: &str,
    release: Option<&str>,
) -> AdapterResult<String> {
    match p.describe(target).await? {
        Some(i) if release.is_none_or(|r| i.release == r) => {
            Ok(format!("{target} runs {} at {}", i.release, i.address))
        }
        Some(i) => Err(AdapterError::Transient(format!("{target} still runs {}", i.release))),
        None => Err(AdapterError::Transient(format!("{target} does not exist yet"))),
    }
}

fn close(a: Weight, b: Weight, resolution: u32) -> bool {
    a.basis_points().abs_diff(b.basis_points()) <= resolution
}

async fn apply_router(
    a: &Adapters<'_>,
    r: &dyn Router,
    call: &RouterCall,
) -> AdapterResult<String> {
    let member = |pool: String, target: String| async move {
        let members = r.read_pool(&pool).await?;
        Ok::<_, AdapterError>(members.into_iter().find(|m| m.target == target))
    };
    match call {
        // "No traffic to X" already holds when X is not a member (e.g. a rollback after a
        // provision that never reached the pool).
        RouterCall::SetWeight { pool, target, weight }
            if weight.is_zero()
                && member(pool.to_string(), target.to_string()).await?.is_none() =>
        {
            Ok(format!("{target} is not a member of {pool}, so it takes no traffic"))
        }
        RouterCall::SetState { pool, target, state }
            if *state != MemberState::Ready
                && member(pool.to_string(), target.to_string()).await?.is_none() =>
        {
            Ok(format!("{target} is not a member of {pool}, so it takes no traffic"))
        }
        RouterCall::SetWeight { pool, target, weight } => {
            r.set_weight(pool.as_str(), target.as_str(), *weight).await?;
            match member(pool.to_string(), target.to_string()).await? {
                Some(m) if close(m.weight, *weight, r.weight_resolution()) => {
                    Ok(format!("{target} weight {} in {pool}", m.weight))
                }
                Some(m) => Err(AdapterError::Transient(format!(
                    "read-back shows {target} at {}, wanted {weight}",
                    m.weight
                ))),
                None => Err(AdapterError::Permanent(format!("{target} is not a member of {pool}"))),
            }
        }
        RouterCall::SetState { pool, target, state } => {
            r.set_state(pool.as_str(), target.as_str(), *state).await?;
            match member(pool.to_string(), target.to_string()).await? {
                Some(m) if m.state == *state => Ok(format!("{target} is {} in {pool}", m.state)),
                Some(m) => Err(AdapterError::Transient(format!(
                    "read-back shows {target} {}, wanted {state}",
                    m.state
                ))),
                None => Err(AdapterError::Permanent(format!("{target} is not a member of {pool}"))),
            }
        }
        RouterCall::AddMember { pool, target, weight } => {
            let address = a.address(target.as_str()).await?;
            r.add_member(pool.as_str(), target.as_str(), &address, *weight).await?;
            match member(pool.to_string(), target.to_string()).await? {
                Some(m) if close(m.weight, *weight, r.weight_resolution()) => Ok(format!(
                    "{target} ({}) is a member of {pool} at {}, {}",
                    m.address, m.weight, m.state
                )),
                Some(m) => Err(AdapterError::Transient(format!(
                    "read-back shows {target} at {}, wanted {weight}",
                    m.weight
                ))),
                None => Err(AdapterError::Transient(format!("{target} is not in {pool} yet"))),
            }
        }
        RouterCall::RemoveMember { pool, target } => {
            r.remove_member(pool.as_str(), target.as_str()).await?;
            match member(pool.to_string(), target.to_string()).await? {
                None => Ok(format!("{target} is not in {pool}")),
                Some(_) => Err(AdapterError::Transient(format!("{target} is still in {pool}"))),
            }
        }
        RouterCall::AwaitDrained { pool, target, timeout_secs } => {
            let drained = r.await_drained(pool.as_str(), target.as_str(), *timeout_secs).await?;
            Ok(if drained {
                format!("{target} has no requests in flight")
            } else {
                format!("{target} still had requests after {timeout_secs}s; proceeding as planned")
            })
        }
        RouterCall::SwitchDns { record, targets } => {
            let mut addresses = Vec::new();
            for t in targets {
                addresses.push(a.address(t.as_str()).await?);
            }
            r.switch_dns(record, &addresses).await?;
            match r.read_dns(record).await? {
                None => Ok(format!("{record} switched (this router cannot read DNS back)")),
                Some(got) => {
                    // A record holds hosts, not ports: targets on one IP are one entry.
                    let hosts = |list: &[String]| -> Vec<String> {
                        let set: std::collections::BTreeSet<String> =
                            list.iter().map(|a| crate::adapters::dns_host(a)).collect();
                        set.into_iter().collect()
                    };
                    let (got, want) = (hosts(&got), hosts(&addresses));
                    if got == want {
                        Ok(format!("{record} → {}", got.join(", ")))
                    } else {
                        Err(AdapterError::Transient(format!(
                            "{record} resolves to {}, wanted {}",
                            got.join(", "),
                            want.join(", ")
                        )))
                    }
                }
            }
        }
        RouterCall::SetPreviewRoute { pool, targets, route } => {
            let mut addresses = Vec::new();
            for t in targets {
                addresses.push(a.address(t.as_str()).await?);
            }
            r.set_preview_route(pool.as_str(), route, &addresses).await?;
            Ok(format!("preview route on {pool} → {}", addresses.join(", ")))
        }
        RouterCall::ClearPreviewRoute { pool } => {
            r.clear_preview_route(pool.as_str()).await?;
            Ok(format!("no preview route on {pool}"))
        }
    }
}

/// Runs `f` until it succeeds, fails permanently, or transient failures use up the attempts;
/// waits grow exponentially (capped) with jitter between attempts.
pub async fn with_retry<T, F, Fut>(cfg: &EngineConfig, mut f: F) -> (AdapterResult<T>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AdapterResult<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Ok(v) => return (Ok(v), attempt),
            Err(e) if e.is_transient() && attempt < cfg.retry_attempts => {
                tokio::time::sleep(backoff(cfg, attempt)).await;
            }
            Err(e) => return (Err(e), attempt),
        }
    }
}

pub fn backoff(cfg: &EngineConfig, attempt: u32) -> Duration {
    let exp = cfg.retry_base.saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)));
    let capped = exp.min(cfg.retry_max);
    let jitter = rand::thread_rng().gen_range(0..=capped.as_millis() as u64 / 2);
    capped / 2 + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let cfg = EngineConfig {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            ..Default::default()
        };
        for attempt in 1..10 {
            let d = backoff(&cfg, attempt);
            assert!(d <= Duration::from_millis(1000), "{d:?}");
        }
        assert!(backoff(&cfg, 1) <= Duration::from_millis(100));
        assert!(backoff(&cfg, 8) >= Duration::from_millis(500));
    }
}
