//! HTTP probe health source: GETs each target's health URL (status, latency, optional body
//! match). When it is told which embedded router carries the pool, its gate samples also
//! count the real requests that router proxied to the targets since the last sample.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::domain::gate::Sample;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::embedded::EmbeddedRouter;
use super::{
    AdapterError, AdapterResult, BackendCheck, HealthSource, Probe, TargetSample, quantile,
};

pub const KIND: &str = "http-probe";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The body must contain this text (else only the status counts).
    pub body_contains: Option<String>,
    pub timeout_ms: Option<u64>,
    /// Name of an embedded router backend whose traffic to count in gate samples.
    pub router: Option<String>,
}

pub struct HttpProbe {
    cfg: Config,
    http: reqwest::Client,
    traffic: Option<Arc<EmbeddedRouter>>,
    last_sample: Mutex<BTreeMap<String, DateTime<Utc>>>,
}

impl HttpProbe {
    pub fn new(cfg: Config, traffic: Option<Arc<EmbeddedRouter>>) -> AdapterResult<Self> {
        let http = crate::outbound::builder(Duration::from_millis(cfg.timeout_ms.unwrap_or(2000)))
            .build()
            .map_err(|e| AdapterError::Permanent(format!("HTTP client: {e}")))?;
        Ok(Self { cfg, http, traffic, last_sample: Mutex::default() })
    }

    /// Whether this probe counts the traffic of exactly `router` (or of none, as asked).
    pub(crate) fn counts_traffic_of(&self, router: Option<&Arc<EmbeddedRouter>>) -> bool {
        match (&self.traffic, router) {
            (Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs),
            (None, None) => true,
            _ => false,
        }
    }
}

fn p99(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    values.get(rank.saturating_sub(1).min(values.len() - 1)).copied()
}

#[async_trait]
impl HealthSource for HttpProbe {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let mut capabilities = vec!["probe".to_string()];
        if self.traffic.is_some() {
            capabilities.push("request-rate".into());
            capabilities.push("error-rate".into());
            capabilities.push("latency".into());
        }
        Ok(BackendCheck {
            version: None,
            capabilities,
            detail: "probes each target's health URL from this server".into(),
        })
    }

    async fn probe(&self, _target: &str, health_url: &str) -> AdapterResult<Probe> {
        let started = Instant::now();
        let res = match self.http.get(health_url).send().await {
            Ok(r) => r,
            Err(e) => {
                return Ok(Probe {
                    ok: false,
                    latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                    detail: format!("unreachable: {e}"),
                });
            }
        };
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let body_ok =
            self.cfg.body_contains.as_ref().is_none_or(|want| body.contains(want.as_str()));
        let ok = status.is_success() && body_ok;
        let detail = if !body_ok {
            format!("{status}, body lacks the expected text")
        } else {
            status.to_string()
        };
        Ok(Probe { ok, latency_ms, detail })
    }

    async fn sample(&self, pool: &str, targets: &[(String, String)]) -> AdapterResult<Sample> {
        let mut probes = 0;
        let mut failures = 0;
        let mut latencies = Vec::new();
        for (target, url) in targets {
            let p = self.probe(target, url).await?;
            probes += 1;
            if !p.ok {
                failures += 1;
            }
            latencies.push(p.latency_ms);
        }
        let now = Utc::now();
        let (mut requests, mut errors) = (0_u64, 0_u64);
        if let Some(router) = &self.traffic {
            let since = {
                let mut last = self
                    .last_sample
                    .lock()
                    .map_err(|_| AdapterError::Permanent("lock poisoned".into()))?;
                last.insert(pool.to_string(), now).unwrap_or(now - chrono::Duration::seconds(5))
            };
            let names: Vec<&str> = targets.iter().map(|(t, _)| t.as_str()).collect();
            let hits: Vec<_> = router
                .hits_since(pool, since)
                .into_iter()
                .filter(|h| names.contains(&h.target.as_str()))
                .collect();
            if !hits.is_empty() {
                requests = hits.len() as u64;
                errors = hits.iter().filter(|h| h.status >= 500).count() as u64;
                latencies = hits.iter().map(|h| h.latency_ms).collect();
            }
        }
        Ok(Sample {
            at: now,
            requests,
            errors,
            p99_ms: p99(latencies),
            probes,
            probe_failures: failures,
        })
    }

    async fn chart_sample(
        &self,
        pool: &str,
        targets: &[(String, String)],
        since: DateTime<Utc>,
    ) -> AdapterResult<Vec<TargetSample>> {
        let hits = self.traffic.as_ref().map(|r| r.hits_since(pool, since));
        // Probes run side by side, so one unreachable target does not delay the others.
        let probes = futures_util::future::join_all(
            targets.iter().map(|(target, url)| self.probe(target, url)),
        )
        .await;
        let mut out = Vec::with_capacity(targets.len());
        for ((target, _), probe) in targets.iter().zip(probes) {
            let probe = probe.ok();
            let mut sample = TargetSample {
                target: target.clone(),
                probe_ok: probe.as_ref().map(|p| p.ok),
                probe_ms: probe.map(|p| p.latency_ms),
                ..TargetSample::default()
            };
            if let Some(hits) = &hits {
                let mine: Vec<_> = hits.iter().filter(|h| &h.target == target).collect();
                let mut latencies: Vec<f64> = mine.iter().map(|h| h.latency_ms).collect();
                sample.requests = Some(mine.len() as u64);
                sample.errors = Some(mine.iter().filter(|h| h.status >= 500).count() as u64);
                sample.p50_ms = quantile(&mut latencies, 0.5);
                sample.p99_ms = quantile(&mut latencies, 0.99);
            }
            out.push(sample);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::p99;

    #[test]
    fn p99_is_the_value_below_which_99_percent_fall() {
        assert_eq!(p99(vec![]), None);
        assert_eq!(p99(vec![5.0]), Some(5.0));
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p99(values), Some(99.0));
    }
}
