//! `switchyard backends check`: builds every backend of every environment through the adapter
//! registry and asks it what it is and can do (`check()`), each with a time limit, all at once.
//! It changes nothing on any backend. Notification channels (SMTP, webhooks) are not part of it:
//! a failed delivery shows in the outbox and on the campaign page.

use std::time::Duration;

use app::api::ApiError;
use app::domain::environment::{BackendConfig, BackendKind, Environment};
use serde::{Deserialize, Serialize};

use crate::adapters::registry::AdapterFactory;
use crate::adapters::{AdapterError, AdapterResult, BackendCheck};
use crate::store::Store;

/// How long one backend may take to answer its check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One backend's answer, as the API returns it and the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackendReport {
    pub environment: String,
    pub name: String,
    pub kind: BackendKind,
    pub driver: String,
    /// False for kinds this version does not check (channels); `reachable` is then false too.
    pub checked: bool,
    /// The backend answered its check.
    pub reachable: bool,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    /// What it reported about itself, when it answered.
    pub detail: Option<String>,
    /// Why it could not be checked, when it did not.
    pub error: Option<String>,
}

impl BackendReport {
    pub fn unreachable(&self) -> bool {
        self.checked && !self.reachable
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckReport {
    pub backends: Vec<BackendReport>,
}

async fn within<F>(limit: Duration, check: F) -> AdapterResult<BackendCheck>
where
    F: std::future::Future<Output = AdapterResult<BackendCheck>>,
{
    tokio::time::timeout(limit, check).await.unwrap_or_else(|_| {
        Err(AdapterError::Transient(format!("no answer within {}s", limit.as_secs())))
    })
}

/// Checks one backend; never fails, the report says what went wrong.
pub async fn check_one(
    factory: &dyn AdapterFactory,
    environment: &str,
    cfg: &BackendConfig,
    limit: Duration,
) -> BackendReport {
    let outcome = match cfg.kind {
        BackendKind::Provider => match factory.provider(cfg) {
            Ok(a) => Some(within(limit, a.check()).await),
            Err(e) => Some(Err(e)),
        },
        BackendKind::Router => match factory.router(cfg) {
            Ok(a) => Some(within(limit, a.check()).await),
            Err(e) => Some(Err(e)),
        },
        BackendKind::HealthSource => match factory.health(cfg) {
            Ok(a) => Some(within(limit, a.check()).await),
            Err(e) => Some(Err(e)),
        },
        BackendKind::Channel => None,
    };
    let mut report = BackendReport {
        environment: environment.to_string(),
        name: cfg.name.to_string(),
        kind: cfg.kind,
        driver: cfg.driver.clone(),
        checked: outcome.is_some(),
        reachable: false,
        version: None,
        capabilities: Vec::new(),
        detail: None,
        error: None,
    };
    match outcome {
        None => report.detail = Some("not checked: notices go out through the server's outbox (e-mail via its SMTP settings); each delivery's result is on the campaign's communications".into()),
        Some(Ok(c)) => {
            report.reachable = true;
            report.version = c.version;
            report.capabilities = c.capabilities;
            report.detail = Some(c.detail);
        }
        Some(Err(e)) => {
            tracing::warn!(environment, backend = %cfg.name, driver = %cfg.driver, error = %e, "backend check failed");
            report.error = Some(e.to_string());
        }
    }
    report
}

/// Every backend of every environment, in environment then declaration order.
pub async fn check_all(
    store: &Store,
    factory: &dyn AdapterFactory,
    limit: Duration,
) -> Result<CheckReport, ApiError> {
    let rows = store.list_environments().await?;
    let mut envs = Vec::new();
    for row in rows {
        match serde_json::from_str::<Environment>(&row.spec) {
            Ok(env) => envs.push(env),
            Err(e) => {
                tracing::error!(error = %e, environment = %row.name, "stored environment unreadable");
                return Err(ApiError::internal());
            }
        }
    }
    let checks = envs.iter().flat_map(|env| {
        env.backends.iter().map(|b| check_one(factory, env.name.as_str(), b, limit))
    });
    Ok(CheckReport { backends: futures_util::future::join_all(checks).await })
}
