//! The engine: one reconciler task per active campaign. Each pass loads the persisted state,
//! works out the step that should happen next, applies it through the adapters, verifies it by
//! reading back, persists the result and announces it. Nothing lives only in memory: after a
//! crash, [`Engine::resume_all`] picks every active campaign up from its persisted step.
//!
//! Abort is a change of desired state written by the campaign service; the reconciler sees it
//! at its next pass boundary (waits are interrupted by a wake-up, calls are never cut off).

mod calls;
pub mod drift;
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            retry_attempts: 5,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
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
    /// Router drift found by the last look, by (environment, backend, pool).
    drift: Mutex<std::collections::BTreeMap<(String, String, String), drift::DriftFinding>>,
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
                drift: Mutex::default(),
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
                reconcile::run(engine.clone(), campaign_id, wake).await;
                engine.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(&campaign_id);
            });
            tasks.insert(campaign_id, (notify, handle.abort_handle()));
        }
        self.announce(campaign_id);
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
