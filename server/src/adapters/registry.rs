//! Maps an environment's backend `driver` to an adapter and keeps one instance per backend
//! (an embedded router's listeners and a provider's processes live as long as the server).
//! An unknown driver is a clear `Unsupported` error that pauses the campaign with the
//! message, never a silent no-op.
//! Stateless HTTP adapters (PowerDNS, Prometheus) are built afresh on each use, so an edited
//! environment takes effect at once.

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
    /// The webhook provider already started for backend `name`, to hand it completion
    /// callbacks; `None` when no call has used that backend since the server started.
    fn webhook(&self, _name: &str) -> Option<Arc<Webhook>> {
        None
    }
    /// The feature-flag store, if this installation has one.
    fn flags(&self) -> AdapterResult<Arc<dyn FlagStore>> {
        Err(AdapterError::Unsupported(
            "no feature-flag store is configured in this version; feature-flag campaigns can be planned but not run".into(),
        ))
    }
}

/// The production registry.
#[derive(Default)]
pub struct Registry {
    /// Relative state files of adapters are placed here.
    pub data_dir: Option<PathBuf>,
    embedded: Mutex<BTreeMap<String, Arc<EmbeddedRouter>>>,
    local: Mutex<BTreeMap<String, Arc<LocalProcess>>>,
    probes: Mutex<BTreeMap<String, Arc<HttpProbe>>>,
    haproxy: Mutex<BTreeMap<String, Arc<Haproxy>>>,
    nginx: Mutex<BTreeMap<String, Arc<Nginx>>>,
    haproxy_stats: Mutex<BTreeMap<String, Arc<HaproxyStats>>>,
    scripts: Mutex<BTreeMap<String, Arc<Script>>>,
    webhooks: Mutex<BTreeMap<String, Arc<Webhook>>>,
}

/// The adapter cached under `name`, made by `make` on first use.
fn cached<T>(
    cache: &Mutex<BTreeMap<String, Arc<T>>>,
    name: &str,
    make: impl FnOnce() -> AdapterResult<T>,
) -> AdapterResult<Arc<T>> {
    let mut cache =
        cache.lock().map_err(|_| AdapterError::Permanent("registry lock poisoned".into()))?;
    if let Some(a) = cache.get(name) {
        return Ok(a.clone());
    }
    let a = Arc::new(make()?);
    cache.insert(name.to_string(), a.clone());
    Ok(a)
}

fn unknown(kind: &str, cfg: &BackendConfig) -> AdapterError {
    AdapterError::Unsupported(format!(
        "{kind} backend '{}' uses driver '{}', which this version of Switchyard does not have",
        cfg.name, cfg.driver
    ))
}

fn settings<T: serde::de::DeserializeOwned>(cfg: &BackendConfig) -> AdapterResult<T> {
    let value = if cfg.settings.is_null() { serde_json::json!({}) } else { cfg.settings.clone() };
    serde_json::from_value(value).map_err(|e| {
        AdapterError::Permanent(format!(
            "backend '{}' ({}): bad settings: {e}",
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
        let mut cache = self
            .embedded
            .lock()
            .map_err(|_| AdapterError::Permanent("registry lock poisoned".into()))?;
        if let Some(r) = cache.get(cfg.name.as_str()) {
            return Ok(r.clone());
        }
        let mut c: embedded::Config = settings(cfg)?;
        c.state_file = self.place(c.state_file);
        let r = Arc::new(EmbeddedRouter::start(c)?);
        cache.insert(cfg.name.to_string(), r.clone());
        Ok(r)
    }

    pub fn local_process(&self, cfg: &BackendConfig) -> AdapterResult<Arc<LocalProcess>> {
        let mut cache = self
            .local
            .lock()
            .map_err(|_| AdapterError::Permanent("registry lock poisoned".into()))?;
        if let Some(p) = cache.get(cfg.name.as_str()) {
            return Ok(p.clone());
        }
        let mut c: local_process::Config = settings(cfg)?;
        c.state_file = self.place(c.state_file);
        let p = Arc::new(LocalProcess::new(c)?);
        cache.insert(cfg.name.to_string(), p.clone());
        Ok(p)
    }

    pub fn haproxy(&self, cfg: &BackendConfig) -> AdapterResult<Arc<Haproxy>> {
        cached(&self.haproxy, cfg.name.as_str(), || Haproxy::new(settings(cfg)?))
    }

    /// Stops the processes local providers started (on shutdown).
    pub async fn stop_processes(&self) {
        let all: Vec<Arc<LocalProcess>> =
            self.local.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        for p in all {
            p.stop_all().await;
        }
    }
}

impl AdapterFactory for Registry {
    fn provider(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Provider>> {
        match cfg.driver.as_str() {
            local_process::KIND => Ok(self.local_process(cfg)?),
            script::KIND => {
                Ok(cached(&self.scripts, cfg.name.as_str(), || Script::new(settings(cfg)?))?)
            }
            webhook::KIND => Ok(cached(&self.webhooks, cfg.name.as_str(), || {
                Webhook::new(cfg.name.as_str(), settings(cfg)?)
            })?),
            _ => Err(unknown("provider", cfg)),
        }
    }

    fn router(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Router>> {
        match cfg.driver.as_str() {
            embedded::KIND => Ok(self.embedded(cfg)?),
            haproxy::KIND => Ok(self.haproxy(cfg)?),
            nginx::KIND => {
                Ok(cached(&self.nginx, cfg.name.as_str(), || Nginx::new(settings(cfg)?))?)
            }
            powerdns::KIND => Ok(Arc::new(PowerDns::new(settings(cfg)?)?)),
            _ => Err(unknown("router", cfg)),
        }
    }

    fn webhook(&self, name: &str) -> Option<Arc<Webhook>> {
        self.webhooks.lock().ok()?.get(name).cloned()
    }

    fn health(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn HealthSource>> {
        match cfg.driver.as_str() {
            haproxy_stats::KIND => Ok(cached(&self.haproxy_stats, cfg.name.as_str(), || {
                HaproxyStats::new(settings(cfg)?)
            })?),
            http_probe::KIND => {
                let mut cache = self
                    .probes
                    .lock()
                    .map_err(|_| AdapterError::Permanent("registry lock poisoned".into()))?;
                if let Some(p) = cache.get(cfg.name.as_str()) {
                    return Ok(p.clone());
                }
                let c: http_probe::Config = settings(cfg)?;
                let traffic = match &c.router {
                    Some(name) => {
                        self.embedded.lock().ok().and_then(|m| m.get(name.as_str()).cloned())
                    }
                    None => None,
                };
                let probe = Arc::new(HttpProbe::new(c, traffic)?);
                cache.insert(cfg.name.to_string(), probe.clone());
                Ok(probe)
            }
            prometheus::KIND => Ok(Arc::new(Prometheus::new(settings(cfg)?)?)),
            _ => Err(unknown("health", cfg)),
        }
    }
}
