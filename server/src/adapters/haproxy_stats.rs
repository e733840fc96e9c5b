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

/// What one round of reading counters left for the next.
#[derive(Debug, Default)]
struct Rounds {
    /// Each server's counters at the previous round.
    counters: BTreeMap<(String, String), Counters>,
    /// The servers each pool had at the previous round: one that appears after it was added
    /// since, so its counters count from zero (its first requests are not lost to a baseline).
    servers: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl Rounds {
    /// Requests and errors of `target` since the previous round, or `None` when this round is
    /// its baseline (the pool's first round here). A counter that went down was reset (HAProxy
    /// restarted, the server re-added) and counts from zero.
    fn delta(&mut self, pool: &str, target: &str, now: Counters) -> Option<Counters> {
        let before = match self.counters.insert((pool.to_string(), target.to_string()), now) {
            Some(before) => before,
            None if self.servers.get(pool).is_some_and(|s| !s.contains(target)) => {
                Counters::default()
            }
            None => return None,
        };
        if now.sessions < before.sessions || now.errors < before.errors {
            return Some(now);
        }
        Some(Counters {
            sessions: now.sessions - before.sessions,
            errors: now.errors - before.errors,
        })
    }

    /// Remembers the servers `pool` has this round.
    fn seen(&mut self, pool: &str, rows: &[haproxy::ServerStat]) {
        self.servers.insert(pool.to_string(), rows.iter().map(|r| r.server.clone()).collect());
    }
}

pub struct HaproxyStats {
    hp: Haproxy,
    probe: HttpProbe,
    last: Mutex<Rounds>,
    /// The same for charts, kept apart so charting never shifts a gate's interval.
    chart_last: Mutex<Rounds>,
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
            if let Some(d) = last.delta(pool, target, now) {
                requests += d.sessions;
                errors += d.errors;
            }
            // HAProxy's own health check, when it runs one, counts as a probe.
            if row.check_status.starts_with('L') || row.status.starts_with("DOWN") {
                sample.probes += 1;
                if row.status.starts_with("DOWN") {
                    sample.probe_failures += 1;
                }
            }
        }
        last.seen(pool, &rows);
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
            if let Some(d) = last.delta(pool, &s.target, now) {
                s.requests = Some(d.sessions);
                s.errors = Some(d.errors);
            }
        }
        last.seen(pool, &rows);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sessions: u64, errors: u64) -> Counters {
        Counters { sessions, errors }
    }

    fn stat(server: &str) -> haproxy::ServerStat {
        haproxy::ServerStat { server: server.into(), ..Default::default() }
    }

    #[test]
    fn a_pool_first_round_is_a_baseline_and_a_server_added_later_counts_from_zero() {
        let mut r = Rounds::default();
        assert!(r.delta("web", "a", c(100, 1)).is_none(), "first round: baseline");
        r.seen("web", &[stat("a")]);
        let d = r.delta("web", "a", c(150, 1)).expect("second round");
        assert_eq!((d.sessions, d.errors), (50, 0));
        // b appeared after the previous round: all its requests are new.
        let d = r.delta("web", "b", c(30, 2)).expect("new server");
        assert_eq!((d.sessions, d.errors), (30, 2));
        r.seen("web", &[stat("a"), stat("b")]);
        // a's counter went down: reset, counts from zero.
        let d = r.delta("web", "a", c(5, 0)).expect("reset");
        assert_eq!((d.sessions, d.errors), (5, 0));
        // Another pool's first round is still a baseline.
        assert!(r.delta("api", "a", c(9, 0)).is_none());
    }
}
