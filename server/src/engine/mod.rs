//! The engine: one reconciler task per active campaign. Each pass loads the persisted state,
//! works out the step that should happen next, applies it through the adapters, verifies it by
//! reading back, persists the result and announces it. Nothing lives only in memory: after a
//! crash, [`Engine::resume_all`] picks every active campaign up from its persisted step.
//!
//! Abort is a change of desired state written by the campaign service; the reconciler sees it
//! at its next pass boundary (waits are interrupted by a wake-up, calls are never cut off).

pub mod alerts;
mod analysis;
mod calls;
pub use crate::clock::Clock;
pub use analysis::{gate_samples, sides};
pub use calls::Adapters;
pub mod drift;
mod failpoint;
pub mod impact;
pub mod observe;
mod reconcile;
mod sampler;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::adapters::registry::AdapterFactory;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often waiting steps (gates, health waits) look again.
    pub tick: Duration,
    /// Attempts for a call that fails with a transient error, before the campaign pauses.
    pub retry_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Where operator alerts are POSTed as JSON (a paused rollback, a reconciler that failed);
    /// `None`: alerts go to the log, the audit trail and the campaign page only.
    pub alert_webhook: Option<String>,
    /// How long a drain or removal waits for enough healthy members to remain before pausing.
    pub safety_wait: Duration,
    /// What "now" is to the engine (the system clock, or tokio's in a test).
    pub clock: Clock,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            retry_attempts: 5,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            alert_webhook: None,
            safety_wait: Duration::from_secs(60),
            clock: Clock::System,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    adapters: Arc<dyn AdapterFactory>,
    config: EngineConfig,
    /// Running reconcilers by campaign id: how to wake them, how to stop them.
    tasks: Mutex<HashMap<i64, (Arc<Notify>, tokio::task::AbortHandle)>>,
    /// Campaign ids whose event stream has new rows (for live views).
    events: broadcast::Sender<i64>,
    /// After each stored sampling round: (campaign id, id of its last row, when it was stored
    /// in milliseconds since the epoch).
    samples: broadcast::Sender<(i64, i64, i64)>,
    /// Watchers (drift, samples) to stop with the engine.
    watchers: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Succeeded campaigns whose watch already found a breach (alerted once).
    watch_alerted: Mutex<std::collections::HashSet<i64>>,
    /// Router drift found by the last look, by (environment, backend, pool).
    drift: Mutex<std::collections::BTreeMap<(String, String, String), drift::DriftFinding>>,
    /// Reconcile passes made, over all campaigns.
    passes: std::sync::atomic::AtomicU64,
}

impl Engine {
    pub fn new(store: Store, adapters: Arc<dyn AdapterFactory>, config: EngineConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        let (samples, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
                adapters,
                config,
                tasks: Mutex::default(),
                events,
                samples,
                watchers: Mutex::default(),
                watch_alerted: Mutex::default(),
                drift: Mutex::default(),
                passes: Default::default(),
            }),
        }
    }

    /// Starts a reconciler for every active campaign (after a start or a crash).
    pub async fn resume_all(&self) -> Result<usize, crate::store::StoreError> {
        let ids = self.inner.store.active_campaign_ids().await?;
        for id in &ids {
            self.wake(*id);
        }
        if !ids.is_empty() {
            tracing::info!(campaigns = ids.len(), "resumed active campaigns");
        }
        Ok(ids.len())
    }

    /// Makes the campaign's reconciler look at it now, starting one if none runs.
    pub fn wake(&self, campaign_id: i64) {
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, _)) = tasks.get(&campaign_id) {
            n.notify_one();
        } else {
            let notify = Arc::new(Notify::new());
            let engine = self.clone();
            let wake = notify.clone();
            let handle = tokio::spawn(async move {
                use futures_util::FutureExt as _;
                // A reconciler that panics must not leave its campaign "running" with no task:
                // the campaign pauses with the message and can be resumed.
                let ended =
                    std::panic::AssertUnwindSafe(reconcile::run(engine.clone(), campaign_id, wake))
                        .catch_unwind()
                        .await;
                engine.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(&campaign_id);
                if let Err(panic) = ended {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    reconcile::contain(&engine, campaign_id, &format!("the engine failed: {why}"))
                        .await;
                }
            });
            tasks.insert(campaign_id, (notify, handle.abort_handle()));
        }
        self.announce(campaign_id);
    }

    /// Starts a reconciler for every active campaign that has none (a supervisor: nothing may
    /// stay "running" without a task working on it).
    pub async fn supervise(&self) -> Result<usize, crate::store::StoreError> {
        let ids = self.inner.store.active_campaign_ids().await?;
        let missing: Vec<i64> = {
            let tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
            ids.into_iter().filter(|id| !tasks.contains_key(id)).collect()
        };
        for id in &missing {
            tracing::warn!(campaign_id = id, "an active campaign had no reconciler; starting one");
            self.wake(*id);
        }
        Ok(missing.len())
    }

    /// Runs [`Engine::supervise`] every `every` until the server stops.
    pub fn watch_tasks(&self, every: Duration) {
        let engine = self.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = engine.supervise().await {
                    tracing::warn!(error = %e, "could not check the reconcilers");
                }
            }
        });
        self.keep_watcher(handle);
    }

    /// Tells live views that the campaign has new events.
    pub fn announce(&self, campaign_id: i64) {
        let _ = self.inner.events.send(campaign_id);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.inner.events.subscribe()
    }

    /// Tells live charts that a sampling round of the campaign was stored.
    pub fn announce_sample(&self, campaign_id: i64, last_sample_id: i64) {
        let stored_ms = chrono::Utc::now().timestamp_millis();
        let _ = self.inner.samples.send((campaign_id, last_sample_id, stored_ms));
    }

    pub fn subscribe_samples(&self) -> broadcast::Receiver<(i64, i64, i64)> {
        self.inner.samples.subscribe()
    }

    pub fn adapters(&self) -> &dyn AdapterFactory {
        &*self.inner.adapters
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The engine's now: what step start times, bakes, deadlines and samples are measured by.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.config.clock.now()
    }

    /// Reconcile passes made since the engine started, over all campaigns (a test waits for
    /// passes to be sure the engine looked).
    pub fn passes(&self) -> u64 {
        self.inner.passes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops every reconciler wherever it is, as a crash would (the next start resumes them).
    pub fn kill(&self) {
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for (_, (_, handle)) in tasks.drain() {
            handle.abort();
        }
        let mut watchers = self.inner.watchers.lock().unwrap_or_else(|p| p.into_inner());
        for handle in watchers.drain(..) {
            handle.abort();
        }
    }

    /// Keeps a watcher's handle so [`Engine::kill`] stops it too.
    fn keep_watcher(&self, handle: tokio::task::JoinHandle<()>) {
        self.inner.watchers.lock().unwrap_or_else(|p| p.into_inner()).push(handle.abort_handle());
    }

    /// How many reconcilers are running (for tests and metrics).
    pub fn running(&self) -> usize {
        self.inner.tasks.lock().map(|t| t.len()).unwrap_or(0)
    }
}
