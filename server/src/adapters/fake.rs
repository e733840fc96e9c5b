//! In-memory fakes of every adapter trait, for tests of the engine's logic. They keep the
//! state a real backend would, record every call, and can be told to fail.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use app::domain::campaign::PreviewRoute;
use app::domain::environment::BackendConfig;
use app::domain::gate::Sample;
use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use async_trait::async_trait;

use super::registry::AdapterFactory;
use super::{
    AdapterError, AdapterResult, BackendCheck, FlagStore, HealthSource, Instance, MemberReadback,
    Probe, Provider, Router,
};

/// A recorded call, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Create(String, String),
    Replace(String, String),
    Destroy(String),
    SetWeight(String, String, Weight),
    SetState(String, String, MemberState),
    AddMember(String, String, String, Weight),
    RemoveMember(String, String),
    SwitchDns(String, Vec<String>),
    SetPreview(String, Vec<String>),
    ClearPreview(String),
    SetFlag(String, app::domain::ids::Percent),
}

/// Failures to inject: the next `n` calls fail with this error.
#[derive(Default)]
struct Faults {
    queue: VecDeque<AdapterError>,
}

impl Faults {
    fn next(&mut self) -> AdapterResult<()> {
        match self.queue.pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The state a real provider and router would hold, shared by the fakes.
#[derive(Default)]
pub struct World {
    /// What the fake health source stamps its samples with (a test gives it the engine's clock).
    pub clock: crate::clock::Clock,
    pub instances: BTreeMap<String, Instance>,
    pub pools: BTreeMap<String, BTreeMap<String, MemberReadback>>,
    pub dns: BTreeMap<String, Vec<String>>,
    pub flags: BTreeMap<String, app::domain::ids::Percent>,
    pub preview: BTreeMap<String, Vec<String>>,
    pub calls: Vec<Call>,
    faults: Faults,
    /// Samples handed out by the health source, oldest first; empty → a healthy sample.
    pub samples: VecDeque<Option<Sample>>,
    /// Targets whose probes fail.
    pub unhealthy: Vec<String>,
    /// Probes of every instance that runs this release fail (a broken new release).
    pub unhealthy_release: Option<String>,
    /// When this many calls are recorded, the next one waits for [`Fake::release`].
    pub hold_at: Option<usize>,
    /// True while a call is held.
    pub holding: bool,
    /// Drain waits hold (until [`Fake::release`]) while this is set.
    pub hold_drain: bool,
    /// The next call panics (a bug in an adapter), once.
    pub panic_next: bool,
    next_port: u16,
}

impl World {
    /// Applies a recorded call to this state, as the real backend would.
    pub fn apply(&mut self, call: &Call) {
        match call {
            Call::Create(t, r) | Call::Replace(t, r) => {
                let address =
                    self.instances.get(t).map(|i| i.address.clone()).unwrap_or_else(|| {
                        self.next_port += 1;
                        format!("10.0.0.{}:8080", self.next_port)
                    });
                self.instances.insert(
                    t.clone(),
                    Instance {
                        target: t.clone(),
                        address: address.clone(),
                        release: r.clone(),
                        health_url: format!("http://{address}/healthz"),
                    },
                );
            }
            Call::Destroy(t) => {
                self.instances.remove(t);
            }
            Call::SetWeight(p, t, w) => {
                if let Some(m) = self.pools.entry(p.clone()).or_default().get_mut(t) {
                    m.weight = *w;
                }
            }
            Call::SetState(p, t, s) => {
                if let Some(m) = self.pools.entry(p.clone()).or_default().get_mut(t) {
                    m.state = *s;
                }
            }
            Call::AddMember(p, t, a, w) => {
                self.pools.entry(p.clone()).or_default().insert(
                    t.clone(),
                    MemberReadback {
                        target: t.clone(),
                        address: a.clone(),
                        weight: *w,
                        state: MemberState::Ready,
                    },
                );
            }
            Call::RemoveMember(p, t) => {
                self.pools.entry(p.clone()).or_default().remove(t);
            }
            Call::SwitchDns(r, a) => {
                self.dns.insert(r.clone(), a.clone());
            }
            Call::SetPreview(p, a) => {
                self.preview.insert(p.clone(), a.clone());
            }
            Call::ClearPreview(p) => {
                self.preview.remove(p);
            }
            Call::SetFlag(f, pct) => {
                self.flags.insert(f.clone(), *pct);
            }
        }
    }

    /// What a pool, its DNS and its preview routes look like, for comparing two worlds.
    pub fn snapshot(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            self.instances, self.pools, self.dns, self.preview, self.flags
        )
    }
}

/// One fake backend of every kind over a shared [`World`].
#[derive(Clone, Default)]
pub struct Fake {
    pub world: Arc<Mutex<World>>,
    release: Arc<tokio::sync::Notify>,
}

impl Fake {
    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    }

    /// Starts a pool with these members (target, address, weight) and their instances.
    pub fn seed_pool(&self, pool: &str, members: &[(&str, &str, &str, Weight)]) {
        self.with(|w| {
            for (target, address, release, weight) in members {
                w.instances.insert(
                    target.to_string(),
                    Instance {
                        target: target.to_string(),
                        address: address.to_string(),
                        release: release.to_string(),
                        health_url: format!("http://{address}/healthz"),
                    },
                );
                w.pools.entry(pool.to_string()).or_default().insert(
                    target.to_string(),
                    MemberReadback {
                        target: target.to_string(),
                        address: address.to_string(),
                        weight: *weight,
                        state: MemberState::Ready,
                    },
                );
            }
        });
    }

    /// The next calls fail with these errors, in order.
    pub fn fail_next(&self, errors: Vec<AdapterError>) {
        self.with(|w| w.faults.queue.extend(errors));
    }

    /// Lets a held call go on.
    pub fn release(&self) {
        self.release.notify_one();
    }

    async fn record(&self, call: Call) -> AdapterResult<()> {
        let hold = self.with(|w| {
            let hold = w.hold_at == Some(w.calls.len());
            if hold {
                w.holding = true;
                w.hold_at = None;
            }
            hold
        });
        if hold {
            self.release.notified().await;
            self.with(|w| w.holding = false);
        }
        if self.with(|w| std::mem::take(&mut w.panic_next)) {
            panic!("the fake adapter was told to panic");
        }
        self.with(|w| {
            w.faults.next()?;
            w.apply(&call);
            w.calls.push(call);
            Ok(())
        })
    }

    /// Share of a pool's traffic per release, in basis points (members that are ready).
    pub fn share_by_release(&self, pool: &str) -> BTreeMap<String, u32> {
        self.with(|w| {
            let members: Vec<MemberReadback> =
                w.pools.get(pool).map(|m| m.values().cloned().collect()).unwrap_or_default();
            let serving: Vec<&MemberReadback> = members
                .iter()
                .filter(|m| m.state == MemberState::Ready && m.weight.basis_points() > 0)
                .collect();
            let total: u32 = serving.iter().map(|m| m.weight.basis_points()).sum();
            let mut out = BTreeMap::new();
            for m in serving {
                let release = w
                    .instances
                    .get(&m.target)
                    .map(|i| i.release.clone())
                    .unwrap_or_else(|| "?".into());
                *out.entry(release).or_insert(0) += m.weight.basis_points() * 10_000 / total.max(1);
            }
            out
        })
    }
}

#[async_trait]
impl Provider for Fake {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        Ok(BackendCheck { version: None, capabilities: vec!["fake".into()], detail: "fake".into() })
    }

    async fn create(&self, target: &str, release: &str, _group: &str) -> AdapterResult<Instance> {
        self.record(Call::Create(target.into(), release.into())).await?;
        self.describe(target).await?.ok_or_else(|| AdapterError::Permanent("vanished".into()))
    }
    async fn replace(&self, target: &str, release: &str) -> AdapterResult<Instance> {
        if self.with(|w| !w.instances.contains_key(target)) {
            return Err(AdapterError::Permanent(format!("no instance {target} to replace")));
        }
        self.record(Call::Replace(target.into(), release.into())).await?;
        self.describe(target).await?.ok_or_else(|| AdapterError::Permanent("vanished".into()))
    }
    async fn destroy(&self, target: &str) -> AdapterResult<()> {
        self.record(Call::Destroy(target.into())).await
    }
    async fn describe(&self, target: &str) -> AdapterResult<Option<Instance>> {
        Ok(self.with(|w| w.instances.get(target).cloned()))
    }
}

#[async_trait]
impl Router for Fake {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        Ok(BackendCheck { version: None, capabilities: vec!["fake".into()], detail: "fake".into() })
    }

    async fn set_weight(&self, pool: &str, target: &str, weight: Weight) -> AdapterResult<()> {
        self.record(Call::SetWeight(pool.into(), target.into(), weight)).await
    }
    async fn set_state(&self, pool: &str, target: &str, state: MemberState) -> AdapterResult<()> {
        self.record(Call::SetState(pool.into(), target.into(), state)).await
    }
    async fn add_member(
        &self,
        pool: &str,
        target: &str,
        address: &str,
        weight: Weight,
    ) -> AdapterResult<()> {
        self.record(Call::AddMember(pool.into(), target.into(), address.into(), weight)).await
    }
    async fn remove_member(&self, pool: &str, target: &str) -> AdapterResult<()> {
        self.record(Call::RemoveMember(pool.into(), target.into())).await
    }
    async fn await_drained(
        &self,
        _pool: &str,
        _target: &str,
        _timeout_secs: u64,
    ) -> AdapterResult<bool> {
        self.with(|w| w.faults.next())?;
        if self.with(|w| {
            w.holding = w.hold_drain;
            w.hold_drain
        }) {
            self.release.notified().await;
            self.with(|w| w.holding = false);
        }
        Ok(true)
    }
    async fn switch_dns(&self, record: &str, addresses: &[String]) -> AdapterResult<()> {
        self.record(Call::SwitchDns(record.into(), addresses.to_vec())).await
    }
    async fn set_preview_route(
        &self,
        pool: &str,
        _route: &PreviewRoute,
        addresses: &[String],
    ) -> AdapterResult<()> {
        self.record(Call::SetPreview(pool.into(), addresses.to_vec())).await
    }
    async fn clear_preview_route(&self, pool: &str) -> AdapterResult<()> {
        self.record(Call::ClearPreview(pool.into())).await
    }
    async fn read_pool(&self, pool: &str) -> AdapterResult<Vec<MemberReadback>> {
        Ok(self
            .with(|w| w.pools.get(pool).map(|m| m.values().cloned().collect()).unwrap_or_default()))
    }
    async fn read_dns(&self, record: &str) -> AdapterResult<Option<Vec<String>>> {
        Ok(Some(self.with(|w| w.dns.get(record).cloned().unwrap_or_default())))
    }
}

#[async_trait]
impl HealthSource for Fake {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        Ok(BackendCheck { version: None, capabilities: vec!["fake".into()], detail: "fake".into() })
    }

    async fn probe(&self, target: &str, _health_url: &str) -> AdapterResult<Probe> {
        let ok = self.with(|w| {
            let broken = w
                .unhealthy_release
                .as_ref()
                .is_some_and(|r| w.instances.get(target).is_some_and(|i| &i.release == r));
            !broken && !w.unhealthy.iter().any(|t| t == target)
        });
        Ok(Probe { ok, latency_ms: 1.0, detail: if ok { "200 OK".into() } else { "503".into() } })
    }
    async fn sample(&self, _pool: &str, targets: &[(String, String)]) -> AdapterResult<Sample> {
        let (scripted, now) = self.with(|w| (w.samples.pop_front(), w.clock.now()));
        let healthy = Sample {
            at: now,
            requests: 100,
            errors: 0,
            p99_ms: Some(20.0),
            probes: targets.len() as u32,
            probe_failures: 0,
        };
        Ok(match scripted {
            None => healthy,
            Some(Some(mut s)) => {
                s.at = now;
                s
            }
            // A scripted `None`: a sample with no data at all.
            Some(None) => Sample {
                at: now,
                requests: 0,
                errors: 0,
                p99_ms: None,
                probes: 0,
                probe_failures: 0,
            },
        })
    }
}

#[async_trait]
impl FlagStore for Fake {
    async fn set(&self, flag: &str, percent: app::domain::ids::Percent) -> AdapterResult<()> {
        self.record(Call::SetFlag(flag.into(), percent)).await
    }
    async fn get(&self, flag: &str) -> AdapterResult<Option<app::domain::ids::Percent>> {
        Ok(self.with(|w| w.flags.get(flag).copied()))
    }
}

impl AdapterFactory for Fake {
    fn flags(&self) -> AdapterResult<Arc<dyn FlagStore>> {
        Ok(Arc::new(self.clone()))
    }
    fn provider(&self, _cfg: &BackendConfig) -> AdapterResult<Arc<dyn Provider>> {
        Ok(Arc::new(self.clone()))
    }
    fn router(&self, _cfg: &BackendConfig) -> AdapterResult<Arc<dyn Router>> {
        Ok(Arc::new(self.clone()))
    }
    fn health(&self, _cfg: &BackendConfig) -> AdapterResult<Arc<dyn HealthSource>> {
        Ok(Arc::new(self.clone()))
    }
}
