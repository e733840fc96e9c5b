//! Maps an environment's backend `driver` to an adapter. Real drivers (HAProxy, nginx,
//! PowerDNS, the embedded router, process/script/webhook providers, probes) arrive with the
//! backends work; until then an unknown driver is a clear `Unsupported` error that pauses the
//! campaign with the message, never a silent no-op.

use std::sync::Arc;

use app::domain::environment::BackendConfig;

use super::{AdapterError, AdapterResult, HealthSource, Provider, Router};

pub trait AdapterFactory: Send + Sync {
    fn provider(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Provider>>;
    fn router(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Router>>;
    fn health(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn HealthSource>>;
}

/// The production registry.
#[derive(Default)]
pub struct Registry;

fn unknown(kind: &str, cfg: &BackendConfig) -> AdapterError {
    AdapterError::Unsupported(format!(
        "{kind} backend '{}' uses driver '{}', which this version of Switchyard does not have",
        cfg.name, cfg.driver
    ))
}

impl AdapterFactory for Registry {
    fn provider(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Provider>> {
        Err(unknown("provider", cfg))
    }
    fn router(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn Router>> {
        Err(unknown("router", cfg))
    }
    fn health(&self, cfg: &BackendConfig) -> AdapterResult<Arc<dyn HealthSource>> {
        Err(unknown("health", cfg))
    }
}
