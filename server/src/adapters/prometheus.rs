//! Prometheus health source: gate samples come from PromQL instant queries
//! (`GET /api/v1/query`) that the backend's settings name, one per figure a gate judges.
//!
//! In a query, `{targets}` becomes a regex alternation of the sampled targets' names
//! (`web-1-v2|web-2-v2`, for `=~"…"` matchers), `{instances}` the same for their health URLs'
//! `host:port` (Prometheus's usual `instance` label) and `{pool}` the pool's name; all are escaped
//! for a double-quoted PromQL string. Each query must give one number (wrap it in `sum()` or
//! `max()`), except `up`, where every series is one probe (1 = up).
//!
//! A sample stands for `sample_secs` of traffic (match it to your `rate()` range): requests =
//! `request_rate` × `sample_secs`, errors = requests × `error_rate`. `probe()` does not ask
//! Prometheus: a freshly created instance is not scraped yet (often not even a scrape target),
//! so waiting for it to be healthy GETs its health URL directly, as the http-probe source does.

use std::time::Duration;

use app::domain::gate::Sample;
use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::http_probe::{self, HttpProbe};
use super::{AdapterError, AdapterResult, BackendCheck, HealthSource, Probe, root_cause};

pub const KIND: &str = "prometheus";

/// The backend's `settings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Prometheus's base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Limit for each HTTP call (queries and probes), connecting included.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How many seconds of traffic one sample stands for.
    #[serde(default = "default_sample_secs")]
    pub sample_secs: u64,
    pub queries: Queries,
}

/// PromQL for each figure; leave out what you don't measure (its gate limit then has no data).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queries {
    /// Requests per second to the targets.
    pub request_rate: Option<String>,
    /// Share of those requests that failed, 0–1 (needs `request_rate`).
    pub error_rate: Option<String>,
    /// 99th-percentile latency in milliseconds.
    pub p99_latency_ms: Option<String>,
    /// One series per probed instance, 1 when it is up (e.g. `up{instance=~"{instances}"}`).
    pub up: Option<String>,
}

fn default_timeout() -> u64 {
    5
}

fn default_sample_secs() -> u64 {
    60
}

pub struct Prometheus {
    base: String,
    cfg: Config,
    http: reqwest::Client,
    probe: HttpProbe,
}

fn permanent(msg: impl Into<String>) -> AdapterError {
    AdapterError::Permanent(msg.into())
}

/// A regex that matches exactly `s` (RE2 syntax, as Prometheus uses).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text that may sit inside a double-quoted PromQL string.
fn promql_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `host:port` of a health URL, as Prometheus labels an `instance`.
fn instance_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

/// The query with `{targets}`, `{instances}` and `{pool}` filled in.
pub fn render(template: &str, pool: &str, targets: &[(String, String)]) -> String {
    let alternation = |items: Vec<String>| {
        promql_string(&items.iter().map(|i| regex_escape(i)).collect::<Vec<_>>().join("|"))
    };
    let names = alternation(targets.iter().map(|(t, _)| t.clone()).collect());
    let instances = alternation(targets.iter().filter_map(|(_, u)| instance_of(u)).collect());
    template
        .replace("{targets}", &names)
        .replace("{instances}", &instances)
        .replace("{pool}", &promql_string(pool))
}

/// One instant-query result: the value of each series (a scalar is one series).
fn values(data: &Value) -> AdapterResult<Vec<f64>> {
    let number = |pair: &Value| -> Option<f64> {
        // Prometheus sends `[unix_time, "value"]`; values may be "NaN" or "+Inf".
        pair.get(1).and_then(Value::as_str).and_then(|v| v.parse::<f64>().ok())
    };
    let result = data.get("result");
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => Ok(result
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("value").and_then(number))
            .collect()),
        Some("scalar") => Ok(result.and_then(number).into_iter().collect()),
        other => Err(permanent(format!(
            "the query gives a {}, not an instant vector or a scalar",
            other.unwrap_or("nothing")
        ))),
    }
}

impl Prometheus {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        let url = reqwest::Url::parse(&cfg.url)
            .map_err(|e| permanent(format!("Prometheus: url '{}': {e}", cfg.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(permanent(format!("Prometheus: url '{}' is not http(s)", cfg.url)));
        }
        if cfg.timeout_secs == 0 || cfg.sample_secs == 0 {
            return Err(permanent("Prometheus: timeout_secs and sample_secs must be at least 1"));
        }
        let q = &cfg.queries;
        if q.request_rate.is_none()
            && q.error_rate.is_none()
            && q.p99_latency_ms.is_none()
            && q.up.is_none()
        {
            return Err(permanent(
                "Prometheus: name at least one of queries.request_rate, error_rate, p99_latency_ms, up",
            ));
        }
        if q.error_rate.is_some() && q.request_rate.is_none() {
            return Err(permanent(
                "Prometheus: queries.error_rate needs queries.request_rate (a sample counts requests)",
            ));
        }
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let http = crate::outbound::builder(timeout)
            .build()
            .map_err(|e| permanent(format!("HTTP client: {e}")))?;
        let probe = HttpProbe::new(
            http_probe::Config {
                timeout_ms: Some(cfg.timeout_secs.saturating_mul(1000)),
                ..Default::default()
            },
            None,
        )?;
        Ok(Self { base: cfg.url.trim_end_matches('/').to_string(), cfg, http, probe })
    }

    fn queries(&self) -> Vec<(&'static str, &str)> {
        let q = &self.cfg.queries;
        [
            ("request_rate", &q.request_rate),
            ("error_rate", &q.error_rate),
            ("p99_latency_ms", &q.p99_latency_ms),
            ("up", &q.up),
        ]
        .into_iter()
        .filter_map(|(name, q)| q.as_deref().map(|q| (name, q)))
        .collect()
    }

    /// GETs an API path; unreachable, slow, 5xx and 429 are transient, other errors permanent
    /// with Prometheus's own `error` text. Returns the `data` member.
    async fn api(&self, path: &str, query: &[(&str, &str)], what: &str) -> AdapterResult<Value> {
        let res = self.http.get(format!("{}{path}", self.base)).query(query).send().await.map_err(
            |e| {
                if e.is_timeout() {
                    AdapterError::Transient(format!(
                        "Prometheus at {} did not answer {what} within {}s",
                        self.base, self.cfg.timeout_secs
                    ))
                } else if e.is_connect() {
                    AdapterError::Transient(format!(
                        "cannot reach Prometheus at {}: {}",
                        self.base,
                        root_cause(&e)
                    ))
                } else {
                    AdapterError::Transient(format!(
                        "Prometheus at {}: {what} failed: {}",
                        self.base,
                        root_cause(&e)
                    ))
                }
            },
        )?;
        let status = res.status();
        let body = res.text().await.map_err(|e| {
            AdapterError::Transient(format!(
                "Prometheus at {}: reading {what}: {}",
                self.base,
                root_cause(&e)
            ))
        })?;
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        if status.is_success()
            && let Some(data) =
                parsed.as_ref().filter(|v| v["status"] == "success").and_then(|v| v.get("data"))
        {
            return Ok(data.clone());
        }
        let why = parsed
            .as_ref()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let msg = format!("Prometheus answered {what} with {status}: {why}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(AdapterError::Transient(msg))
        } else {
            Err(AdapterError::Permanent(msg))
        }
    }

    async fn query(&self, name: &str, promql: &str) -> AdapterResult<Vec<f64>> {
        let what = format!("queries.{name}");
        let data = self.api("/api/v1/query", &[("query", promql)], &what).await?;
        values(&data).map_err(|e| permanent(format!("{what} ({promql}): {e}")))
    }

    /// The one number a query gives; `None` when it has no data (no series, NaN, infinite).
    async fn one_number(
        &self,
        name: &str,
        template: Option<&str>,
        pool: &str,
        targets: &[(String, String)],
    ) -> AdapterResult<Option<f64>> {
        let Some(template) = template else { return Ok(None) };
        let promql = render(template, pool, targets);
        let v = self.query(name, &promql).await?;
        match v.as_slice() {
            [] => Ok(None),
            [x] => Ok(x.is_finite().then_some(*x)),
            many => Err(permanent(format!(
                "queries.{name} ({promql}) gives {} series; wrap it in sum() or max() so it gives one number",
                many.len()
            ))),
        }
    }
}

#[async_trait]
impl HealthSource for Prometheus {
    /// The version from `/api/v1/status/buildinfo`, and every configured query run once (with a
    /// target that matches nothing) so Prometheus itself says whether it parses.
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let info = self.api("/api/v1/status/buildinfo", &[], "the build-info query").await?;
        let version = info.get("version").and_then(Value::as_str).map(str::to_string);
        let probe_target =
            [("switchyard-check".to_string(), "http://switchyard-check.invalid:1/".to_string())];
        let mut names = Vec::new();
        for (name, template) in self.queries() {
            self.query(name, &render(template, "switchyard-check", &probe_target)).await?;
            names.push(name);
        }
        let mut capabilities = vec!["probe".to_string()];
        for (name, cap) in [
            ("request_rate", "request-rate"),
            ("error_rate", "error-rate"),
            ("p99_latency_ms", "latency"),
            ("up", "up"),
        ] {
            if names.contains(&name) {
                capabilities.push(cap.into());
            }
        }
        Ok(BackendCheck {
            version,
            capabilities,
            detail: format!(
                "Prometheus at {}; queries that parse: {}; a sample stands for {} s",
                self.base,
                names.join(", "),
                self.cfg.sample_secs
            ),
        })
    }

    async fn probe(&self, target: &str, health_url: &str) -> AdapterResult<Probe> {
        self.probe.probe(target, health_url).await
    }

    async fn sample(&self, pool: &str, targets: &[(String, String)]) -> AdapterResult<Sample> {
        let at = Utc::now();
        let q = &self.cfg.queries;
        if targets.is_empty() {
            return Ok(Sample {
                at,
                requests: 0,
                errors: 0,
                p99_ms: None,
                probes: 0,
                probe_failures: 0,
            });
        }
        let rate =
            self.one_number("request_rate", q.request_rate.as_deref(), pool, targets).await?;
        let error_rate =
            self.one_number("error_rate", q.error_rate.as_deref(), pool, targets).await?;
        let p99_ms =
            self.one_number("p99_latency_ms", q.p99_latency_ms.as_deref(), pool, targets).await?;
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let requests =
            rate.map_or(0, |r| (r.max(0.0) * self.cfg.sample_secs as f64).round() as u64);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let errors = error_rate.map_or(0, |e| (requests as f64 * e.clamp(0.0, 1.0)).round() as u64);
        let (mut probes, mut probe_failures) = (0_u32, 0_u32);
        if let Some(template) = q.up.as_deref() {
            for v in self.query("up", &render(template, pool, targets)).await? {
                probes = probes.saturating_add(1);
                if v != 1.0 {
                    probe_failures = probe_failures.saturating_add(1);
                }
            }
        }
        Ok(Sample { at, requests, errors, p99_ms, probes, probe_failures })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn targets() -> Vec<(String, String)> {
        vec![
            ("web-1-v2".into(), "http://127.0.0.1:9101/healthz".into()),
            ("web-2-v2".into(), "http://[::1]:9102/healthz".into()),
        ]
    }

    #[test]
    fn placeholders_become_escaped_regex_alternations() {
        let q = render(
            r#"sum(rate(x{job="{pool}", target=~"{targets}", instance=~"{instances}"}[1m]))"#,
            "web-pool",
            &targets(),
        );
        assert_eq!(
            q,
            r#"sum(rate(x{job="web-pool", target=~"web-1-v2|web-2-v2", instance=~"127\\.0\\.0\\.1:9101|\\[::1\\]:9102"}[1m]))"#
        );
        assert_eq!(render("{pool}", r#"a"b\c"#, &[]), r#"a\"b\\c"#);
    }

    #[test]
    fn results_are_read_from_vectors_and_scalars() {
        let vector = json!({ "resultType": "vector", "result": [
            { "metric": { "a": "1" }, "value": [1.5, "0.25"] },
            { "metric": { "a": "2" }, "value": [1.5, "NaN"] },
        ]});
        let v = values(&vector).expect("vector");
        assert_eq!(v[0], 0.25);
        assert!(v[1].is_nan());
        assert_eq!(
            values(&json!({ "resultType": "scalar", "result": [1.5, "+Inf"] })).expect("s"),
            [f64::INFINITY]
        );
        assert!(values(&json!({ "resultType": "matrix", "result": [] })).is_err());
    }

    #[test]
    fn settings_must_measure_something_and_an_error_rate_needs_a_request_rate() {
        let cfg = |queries: Value| -> Config {
            serde_json::from_value(json!({ "url": "http://127.0.0.1:1", "queries": queries }))
                .expect("settings parse")
        };
        assert!(Prometheus::new(cfg(json!({}))).is_err());
        assert!(Prometheus::new(cfg(json!({ "error_rate": "x" }))).is_err());
        assert!(Prometheus::new(cfg(json!({ "p99_latency_ms": "x" }))).is_ok());
    }

    #[tokio::test]
    async fn prometheus_not_listening_is_a_transient_error() {
        let p = Prometheus::new(
            serde_json::from_value(json!({
                "url": "http://127.0.0.1:1",
                "queries": { "request_rate": "vector(1)" },
            }))
            .expect("settings"),
        )
        .expect("builds");
        let err = p.sample("web-pool", &targets()).await.expect_err("closed port");
        assert!(err.is_transient(), "{err}");
        assert!(p.check().await.expect_err("closed port").is_transient());
    }
}
