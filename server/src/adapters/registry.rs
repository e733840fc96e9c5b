//! Maps an environment's backend `driver` to an adapter and keeps one instance per
//! (environment, backend): two environments that both name a backend `edge` get their own, each
//! with its own settings. When a backend's settings change (the environment was saved), the next
//! use builds the adapter again; stateful ones hand over what they hold (an embedded router its
//! members and, briefly, its port; a local provider its running processes), so an edit never
//! drops traffic or orphans an instance.
//! An unknown driver is a clear `Unsupported` error that pauses the campaign with the message,
//! never a silent no-op.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use app::domain::environment::BackendConfig;

use super::embedded::{self, EmbeddedRouter};
use super::haproxy::{self, Haproxy};
use super::haproxy_stats::{self, HaproxyStats};
use super::http_probe::{self, HttpProbe};
use super::local_process::{self, LocalProcess};
use super::nginx::{self, Nginx};
use super::powerdns::{self, PowerDns};
use super::prometheus::{self, Prometheus};
use super::script::{self, Script};
use super::webhook::{self, Webhook};
use super::{AdapterError, AdapterResult, FlagStore, HealthSource, Provider, Router};

pub trait AdapterFactory: Send + Sync {
    fn provider(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Provider>>;
    fn router(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Router>>;
    fn health(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn HealthSource>>;
    /// The webhook providers started for backends named `name` (in any environment, and
    /// those replaced by new settings while calls may still wait), to hand them completion
    /// callbacks; empty when no call has used such a backend since the server started.
    fn webhooks(&self, _name: &str) -> Vec<Arc<Webhook>> {
        Vec::new()
    }
    /// The feature-flag store, if this installation has one.
    fn flags(&self) -> AdapterResult<Arc<dyn FlagStore>> {
        Err(AdapterError::Unsupported(
            "no feature-flag store is configured in this version; feature-flag campaigns can be planned but not run".into(),
        ))
    }
}

/// Which adapter: the environment (`None` for a backend built outside one) and the backend.
type Key = (Option<String>, String);

/// A built adapter and the settings it was built from.
struct Entry<T> {
    settings: String,
    adapter: Arc<T>,
}

type Cache<T> = Mutex<BTreeMap<Key, Entry<T>>>;

/// The production registry.
#[derive(Default)]
pub struct Registry {
    /// Relative state files of adapters are placed here.
    pub data_dir: Option<PathBuf>,
    embedded: Cache<EmbeddedRouter>,
    local: Cache<LocalProcess>,
    probes: Cache<HttpProbe>,
    haproxy: Cache<Haproxy>,
    nginx: Cache<Nginx>,
    haproxy_stats: Cache<HaproxyStats>,
    scripts: Cache<Script>,
    webhooks: Cache<Webhook>,
    powerdns: Cache<PowerDns>,
    prometheus: Cache<Prometheus>,
    /// Webhook providers replaced by new settings: calls they started may still get callbacks.
    retired_webhooks: Mutex<Vec<(String, Arc<Webhook>)>>,
}

fn key(cfg: &BackendConfig) -> Key {
    (cfg.environment.as_ref().map(|e| e.to_string()), cfg.name.to_string())
}

/// Canonical settings text (JSON objects are ordered), to tell when they changed.
fn fingerprint(cfg: &BackendConfig) -> String {
    format!("{}\u{0}{}", cfg.driver, cfg.settings)
}

fn poisoned<T>(_: T) -> AdapterError {
    AdapterError::Permanent("registry lock poisoned".into())
}

/// The adapter for `cfg`: the cached one while its settings are unchanged, else one made by
/// `make` (given the one it replaces, if any).
fn cached<T>(
    cache: &Cache<T>,
    cfg: &BackendConfig,
    make: impl FnOnce(Option<&Arc<T>>) -> AdapterResult<T>,
) -> AdapterResult<Arc<T>> {
    let mut cache = cache.lock().map_err(poisoned)?;
    let (k, settings) = (key(cfg), fingerprint(cfg));
    if let Some(e) = cache.get(&k)
        && e.settings == settings
    {
        return Ok(e.adapter.clone());
    }
    let old = cache.get(&k).map(|e| e.adapter.clone());
    let adapter = Arc::new(make(old.as_ref())?);
    if old.is_some() {
        tracing::info!(environment = ?k.0, backend = %k.1, "backend settings changed: adapter rebuilt");
    }
    cache.insert(k, Entry { settings, adapter: adapter.clone() });
    Ok(adapter)
}

fn unknown(kind: &str, cfg: &BackendConfig) -> AdapterError {
    AdapterError::Unsupported(format!(
        "{kind} backend '{}' uses driver '{}', which this version of Switchyard does not have",
        cfg.name, cfg.driver
    ))
}

fn settings<T: serde::de::DeserializeOwned>(cfg: &BackendConfig) -> AdapterResult<T> {
    // The same reading as when the environment was saved: the message names the key and never
    // quotes a value (it could be a secret in the wrong place).
    super::settings::typed::<T>(&cfg.settings).map_err(|(path, why)| {
        let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
        AdapterError::Permanent(format!(
            "backend '{}' ({}): bad settings{at}: {why}",
            cfg.name, cfg.driver
        ))
    })
}

impl Registry {
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        Self { data_dir, ..Default::default() }
    }

    fn place(&self, file: Option<PathBuf>) -> Option<PathBuf> {
        match (file, &self.data_dir) {
            (Some(f), Some(dir)) if f.is_relative() => Some(dir.join(f)),
            (f, _) => f,
        }
    }

    /// The embedded router behind `cfg`, started on first use.
    pub fn embedded(&self, cfg: &BackendConfig) -> AdapterResult<Arc<EmbeddedRouter>> {
        cached(&self.embedded, cfg, |old| {
            let mut c: embedded::Config = settings(cfg)?;
            c.state_file = self.place(c.state_file);
            match old {
                Some(old) => EmbeddedRouter::replace(old, c),
                None => EmbeddedRouter::start(c),
            }
        })
    }

    pub fn local_process(&self, cfg: &BackendConfig) -> AdapterResult<Arc<LocalProcess>> {
        cached(&self.local, cfg, |old| {
            let mut c: local_process::Config = settings(cfg)?;
            c.state_file = self.place(c.state_file);
            match old {
                Some(old) => LocalProcess::replace(old, c),
                None => LocalProcess::new(c),
            }
        })
    }

    pub fn haproxy(&self, cfg: &BackendConfig) -> AdapterResult<Arc<Haproxy>> {
        cached(&self.haproxy, cfg, |_| Haproxy::new(settings(cfg)?))
    }

    /// Stops the processes local providers started (on shutdown).
    pub async fn stop_processes(&self) {
        let all: Vec<Arc<LocalProcess>> = self
            .local
            .lock()
            .map(|m| m.values().map(|e| e.adapter.clone()).collect())
            .unwrap_or_default();
        for p in all {
            p.stop_all().await;
        }
    }

    fn webhook_provider(&self, cfg: &BackendConfig) -> AdapterResult<Arc<Webhook>> {
        cached(&self.webhooks, cfg, |old| {
            if let (Some(old), Ok(mut retired)) = (old, self.retired_webhooks.lock()) {
                retired.push((cfg.name.to_string(), old.clone()));
                // Enough for calls still waiting on a callback; older ones have timed out.
                let excess = retired.len().saturating_sub(16);
                retired.drain(..excess);
            }
            Webhook::new(cfg.name.as_str(), settings(cfg)?)
        })
    }

    /// The embedded router an `http-probe` counts traffic from: the one of the same
    /// environment with that name, when it is running.
    fn traffic_router(&self, cfg: &BackendConfig, router: &str) -> Option<Arc<EmbeddedRouter>> {
        let k = (cfg.environment.as_ref().map(|e| e.to_string()), router.to_string());
        self.embedded.lock().ok().and_then(|m| {
            m.get(&k)
                .or_else(|| m.iter().find(|((_, n), _)| n == router).map(|(_, e)| e))
                .map(|e| e.adapter.clone())
        })
    }
}

impl AdapterFactory for Registry {
    fn provider(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Provider>> {
        match cfg.driver.as_str() {
            local_process::KIND => Ok(self.local_process(cfg)?),
            script::KIND => Ok(cached(&self.scripts, cfg, |_| Script::new(settings(cfg)?))?),
            webhook::KIND => Ok(self.webhook_provider(cfg)?),
            _ => Err(unknown("provider", cfg)),
        }
    }

    fn router(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Router>> {
        match cfg.driver.as_str() {
            embedded::KIND => Ok(self.embedded(cfg)?),
            haproxy::KIND => Ok(self.haproxy(cfg)?),
            nginx::KIND => Ok(cached(&self.nginx, cfg, |_| Nginx::new(settings(cfg)?))?),
            powerdns::KIND => Ok(cached(&self.powerdns, cfg, |_| PowerDns::new(settings(cfg)?))?),
            _ => Err(unknown("router", cfg)),
        }
    }

    fn webhooks(&self, name: &str) -> Vec<Arc<Webhook>> {
        let mut out: Vec<Arc<Webhook>> = self
            .webhooks
            .lock()
            .map(|m| {
                m.iter().filter(|((_, n), _)| n == name).map(|(_, e)| e.adapter.clone()).collect()
            })
            .unwrap_or_default();
        if let Ok(retired) = self.retired_webhooks.lock() {
            out.extend(retired.iter().filter(|(n, _)| n == name).map(|(_, w)| w.clone()));
        }
        out
    }

    fn health(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn HealthSource>> {
        match cfg.driver.as_str() {
            haproxy_stats::KIND => {
                Ok(cached(&self.haproxy_stats, cfg, |_| HaproxyStats::new(settings(cfg)?))?)
            }
            http_probe::KIND => {
                let c: http_probe::Config = settings(cfg)?;
                let traffic = c.router.as_deref().and_then(|r| self.traffic_router(cfg, r));
                // Rebuilt too when the router it counts was (its address in memory changed).
                let probe =
                    cached(&self.probes, cfg, |_| HttpProbe::new(c.clone(), traffic.clone()))?;
                if probe.counts_traffic_of(traffic.as_ref()) {
                    return Ok(probe);
                }
                let fresh = Arc::new(HttpProbe::new(c, traffic)?);
                if let Ok(mut m) = self.probes.lock() {
                    m.insert(
                        key(cfg),
                        Entry { settings: fingerprint(cfg), adapter: fresh.clone() },
                    );
                }
                Ok(fresh)
            }
            prometheus::KIND => {
                Ok(cached(&self.prometheus, cfg, |_| Prometheus::new(settings(cfg)?))?)
            }
            _ => Err(unknown("health", cfg)),
        }
    }
}
