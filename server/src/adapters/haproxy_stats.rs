//! HAProxy per-server statistics as a health source: the real user traffic HAProxy proxied to
//! each target since the last sample (requests, 5xx answers, connection and response errors,
//! read from `show stat` counters through the Runtime API), HAProxy's own health-check status,
//! and an HTTP probe of each target's health URL. Gates therefore judge what users got.

use std::collections::BTreeMap;
use std::sync::Mutex;

use app::domain::gate::Sample;
use async_trait::async_trait;
use serde::Deserialize;

use super::haproxy::{self, Haproxy};
use super::http_probe::{self, HttpProbe};
use super::{AdapterError, AdapterResult, BackendCheck, HealthSource, Probe, TargetSample};

pub const KIND: &str = "haproxy-stats";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Runtime API, as for the `haproxy` router.
    pub runtime_api: String,
    /// Switchyard pool → HAProxy backend, when the names differ.
    #[serde(default)]
    pub backends: BTreeMap<String, String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The probe's body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn default_timeout_ms() -> u64 {
    3000
}

/// Counters of one server at the previous sample.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    sessions: u64,
    errors: u64,
}

pub struct HaproxyStats {
    hp: Haproxy,
    probe: HttpProbe,
    last: Mutex<BTreeMap<(String, String), Counters>>,
    /// The same for charts, kept apart so charting never shifts a gate's interval.
    chart_last: Mutex<BTreeMap<(String, String), Counters>>,
}

impl HaproxyStats {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        let hp = Haproxy::new(haproxy::Config {
            runtime_api: cfg.runtime_api,
            backends: cfg.backends,
            health_checks: false,
            timeout_ms: cfg.timeout_ms,
        })?;
        let probe = HttpProbe::new(
            http_probe::Config {
                body_contains: cfg.body_contains,
                timeout_ms: Some(cfg.timeout_ms),
                router: None,
            },
            None,
        )?;
        Ok(Self { hp, probe, last: Mutex::default(), chart_last: Mutex::default() })
    }
}

#[async_trait]
impl HealthSource for HaproxyStats {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let version = self.hp.command("show version").await?.trim().to_string();
        let rows = self.hp.stats(None).await?;
        Ok(BackendCheck {
            version: Some(format!("HAProxy {version}")),
            capabilities: ["probe", "request-rate", "error-rate", "check-status"]
                .map(String::from)
                .to_vec(),
            detail: format!("reads show stat ({} servers)", rows.len()),
        })
    }

    async fn probe(&self, target: &str, health_url: &str) -> AdapterResult<Probe> {
        self.probe.probe(target, health_url).await
    }

    async fn sample(&self, pool: &str, targets: &[(String, String)]) -> AdapterResult<Sample> {
        let mut sample = self.probe.sample(pool, targets).await?;
        let rows = self.hp.stats(Some(pool)).await?;
        let mut last =
            self.last.lock().map_err(|_| AdapterError::Permanent("lock poisoned".into()))?;
        let (mut requests, mut errors) = (0_u64, 0_u64);
        for (target, _) in targets {
            let Some(row) = rows.iter().find(|r| &r.server == target) else { continue };
            // Connection errors are left out: HAProxy redispatches those requests, users do not
            // see them.
            let now = Counters { sessions: row.stot, errors: row.hrsp_5xx + row.eresp };
            // The first sample of a server only sets the baseline; a counter that went down
            // (HAProxy restarted, server re-added) starts a new one.
            if let Some(before) = last.insert((pool.to_string(), target.clone()), now)
                && now.sessions >= before.sessions
                && now.errors >= before.errors
            {
                requests += now.sessions - before.sessions;
                errors += now.errors - before.errors;
            }
            // HAProxy's own health check, when it runs one, counts as a probe.
            if row.check_status.starts_with('L') || row.status.starts_with("DOWN") {
                sample.probes += 1;
                if row.status.starts_with("DOWN") {
                    sample.probe_failures += 1;
                }
            }
        }
        sample.requests = requests;
        sample.errors = errors;
        Ok(sample)
    }

    /// Request and 5xx counts per server since the previous chart round (HAProxy keeps no
    /// latency distribution, so p50/p99 stay unknown), and an HTTP probe of each target.
    async fn chart_sample(
        &self,
        pool: &str,
        targets: &[(String, String)],
        since: chrono::DateTime<chrono::Utc>,
    ) -> AdapterResult<Vec<TargetSample>> {
        let mut out = self.probe.chart_sample(pool, targets, since).await?;
        let rows = self.hp.stats(Some(pool)).await?;
        let mut last =
            self.chart_last.lock().map_err(|_| AdapterError::Permanent("lock poisoned".into()))?;
        for s in &mut out {
            let Some(row) = rows.iter().find(|r| r.server == s.target) else { continue };
            let now = Counters { sessions: row.stot, errors: row.hrsp_5xx + row.eresp };
            if let Some(before) = last.insert((pool.to_string(), s.target.clone()), now)
                && now.sessions >= before.sessions
                && now.errors >= before.errors
            {
                s.requests = Some(now.sessions - before.sessions);
                s.errors = Some(now.errors - before.errors);
            }
        }
        Ok(out)
    }
}
