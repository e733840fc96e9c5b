//! Adapters: the external systems Switchyard drives, behind small traits. A `Provider` creates,
//! replaces and destroys instances; a `Router` (load balancer or DNS) sets pool membership,
//! weights and drain; a `HealthSource` probes targets and samples traffic for gates.
//!
//! Every call states a desired state (never a delta), so repeating it changes nothing, and
//! every router change can be read back. Errors say whether retrying can help.
//! The [`registry`] maps an environment's backend `driver` to an implementation; tests swap in
//! the in-memory fakes of [`fake`].

pub mod argv;
pub mod embedded;
#[cfg(test)]
pub mod fake;
pub mod haproxy;
pub mod haproxy_stats;
pub mod http_probe;
pub mod local_process;
pub mod nginx;
pub mod powerdns;
pub mod prometheus;
pub mod registry;
pub mod script;
pub mod settings;
pub mod webhook;

use app::domain::campaign::PreviewRoute;
use app::domain::gate::Sample;
use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AdapterError {
    /// Worth retrying: a timeout, a refused connection, a busy backend.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying will not help: bad configuration, rejected request.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The backend cannot do this at all (e.g. weights on DNS).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The router was changed outside Switchyard since it last set it; Switchyard does not
    /// overwrite that (a person resumes to accept the router's state).
    #[error("{0}")]
    Drift(String),
}

impl AdapterError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AdapterError::Transient(_))
    }
}

pub type AdapterResult<T> = Result<T, AdapterError>;

/// The host part of a target address as a DNS record holds it: `10.0.0.1:8080` → `10.0.0.1`,
/// `[2001:db8::1]:443` → `2001:db8::1` (IPs in canonical form); a bare IP or name is kept.
pub fn dns_host(address: &str) -> String {
    let a = address.trim();
    if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
        return sa.ip().to_string();
    }
    if let Ok(ip) = a.parse::<std::net::IpAddr>() {
        return ip.to_string();
    }
    let host = match a.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => a,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>().map_or_else(|_| host.to_string(), |ip| ip.to_string())
}

/// A pool member's address checked before it reaches a router: `host:port` and nothing else
/// (a provider's answer is not trusted to be well-formed), and the target a valid name.
pub(crate) fn member_address(
    target: &str,
    address: &str,
) -> AdapterResult<app::domain::address::HostPort> {
    if app::domain::ids::Name::parse(target).is_err() {
        return Err(AdapterError::Permanent(format!(
            "refused to add {target:?} to a router: it is not a valid target name"
        )));
    }
    app::domain::address::HostPort::parse(address).map_err(|why| {
        AdapterError::Permanent(format!("refused to add {target} to a router: {why}"))
    })
}

/// The innermost cause of an error, e.g. "Connection refused (os error 111)" rather than
/// reqwest's "error sending request for url (…)".
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What `switchyard backends check` reports for one backend: it answered, which version it
/// is (when it says), and what Switchyard can do through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendCheck {
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    pub detail: String,
}

/// An instance as its provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub target: String,
    pub address: String,
    pub release: String,
    pub health_url: String,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Connects to the backend and reports what it is and can do (no change is made).
    async fn check(&self) -> AdapterResult<BackendCheck>;
    /// Ensure an instance named `target` exists and runs `release`.
    async fn create(&self, target: &str, release: &str, group: &str) -> AdapterResult<Instance>;
    /// Ensure the instance runs `release`.
    async fn replace(&self, target: &str, release: &str) -> AdapterResult<Instance>;
    /// Ensure the instance is gone (succeeds if it already is).
    async fn destroy(&self, target: &str) -> AdapterResult<()>;
    /// Read-back: the instance, if it exists.
    async fn describe(&self, target: &str) -> AdapterResult<Option<Instance>>;
    /// The last lines of output kept for the target (its process, or the provider's commands),
    /// for the step log.
    async fn log_tail(&self, _target: &str) -> Vec<String> {
        Vec::new()
    }
}

/// One pool member as the router really has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReadback {
    pub target: String,
    pub address: String,
    pub weight: Weight,
    pub state: MemberState,
}

#[async_trait]
pub trait Router: Send + Sync {
    /// Connects to the backend and reports what it is and can do (no change is made).
    async fn check(&self) -> AdapterResult<BackendCheck>;
    async fn set_weight(&self, pool: &str, target: &str, weight: Weight) -> AdapterResult<()>;
    async fn set_state(&self, pool: &str, target: &str, state: MemberState) -> AdapterResult<()>;
    /// Ensure `target` at `address` is a ready member with `weight`.
    async fn add_member(
        &self,
        pool: &str,
        target: &str,
        address: &str,
        weight: Weight,
    ) -> AdapterResult<()>;
    /// Ensure `target` is not a member (succeeds if it already isn't).
    async fn remove_member(&self, pool: &str, target: &str) -> AdapterResult<()>;
    /// Waits until the member has no in-flight requests or `timeout_secs` pass; true if drained.
    async fn await_drained(
        &self,
        pool: &str,
        target: &str,
        timeout_secs: u64,
    ) -> AdapterResult<bool>;
    /// Point `record` at exactly these addresses (DNS routers; others have no records).
    async fn switch_dns(&self, _record: &str, _addresses: &[String]) -> AdapterResult<()> {
        Err(AdapterError::Unsupported(
            "this router has no DNS records; plan a weighted switch instead".into(),
        ))
    }
    /// Send requests matching `route` to these addresses only (routers that can).
    async fn set_preview_route(
        &self,
        pool: &str,
        _route: &PreviewRoute,
        _addresses: &[String],
    ) -> AdapterResult<()> {
        Err(AdapterError::Unsupported(format!(
            "this router cannot set a preview route for {pool}; plan blue-green without preview verification"
        )))
    }
    /// No preview route on `pool` (nothing to do where there can be none).
    async fn clear_preview_route(&self, _pool: &str) -> AdapterResult<()> {
        Ok(())
    }
    /// Read-back of a pool's members.
    async fn read_pool(&self, pool: &str) -> AdapterResult<Vec<MemberReadback>>;
    /// Read-back of a DNS record; `None` when this router has no DNS.
    async fn read_dns(&self, _record: &str) -> AdapterResult<Option<Vec<String>>> {
        Ok(None)
    }
    /// Requests the router proxied for `pool` since `since`, if it keeps them (the embedded
    /// router does; others are read through their own stats).
    fn recent_hits(&self, _pool: &str, _since: chrono::DateTime<chrono::Utc>) -> Option<Vec<Hit>> {
        None
    }
    /// The smallest weight step this router can represent, in basis points (HAProxy: 1/256).
    fn weight_resolution(&self) -> u32 {
        1
    }
}

/// A feature-flag store: the share of users who get a flag.
#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Ensure `flag` is on for `percent` of users.
    async fn set(&self, flag: &str, percent: app::domain::ids::Percent) -> AdapterResult<()>;
    /// Read-back; `None` when the flag does not exist.
    async fn get(&self, flag: &str) -> AdapterResult<Option<app::domain::ids::Percent>>;
}

/// Writes an adapter's state file atomically (a temporary file, then a rename), so a crash
/// leaves either the old state or the new one. Failure is logged: the adapter keeps working.
pub(crate) fn write_state<T: Serialize>(path: &std::path::Path, value: &T) {
    let tmp = path.with_extension("tmp");
    let written = serde_json::to_vec_pretty(value)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(error = %e, path = %path.display(), "could not save an adapter's state");
    }
}

/// One request a router proxied, for gates and charts.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub at: chrono::DateTime<chrono::Utc>,
    pub target: String,
    pub release: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
}

/// A probe result for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub ok: bool,
    pub latency_ms: f64,
    pub detail: String,
}

#[async_trait]
pub trait HealthSource: Send + Sync {
    /// Connects to the backend and reports what it is and can do (no change is made).
    async fn check(&self) -> AdapterResult<BackendCheck>;
    async fn probe(&self, target: &str, health_url: &str) -> AdapterResult<Probe>;
    /// Traffic and probe figures for these targets over the last interval, for gates.
    async fn sample(&self, pool: &str, targets: &[(String, String)]) -> AdapterResult<Sample>;
    /// Each target's figures since `since`, for charts. Unlike [`HealthSource::sample`] it
    /// keeps no state between calls, so charting never shifts a gate's window. A source that
    /// cannot see requests reports probes only (the default).
    async fn chart_sample(
        &self,
        _pool: &str,
        targets: &[(String, String)],
        _since: chrono::DateTime<chrono::Utc>,
    ) -> AdapterResult<Vec<TargetSample>> {
        let probes = futures_util::future::join_all(
            targets.iter().map(|(target, url)| self.probe(target, url)),
        )
        .await;
        let mut out = Vec::with_capacity(targets.len());
        for ((target, _), probe) in targets.iter().zip(probes) {
            let probe = probe.ok();
            out.push(TargetSample {
                target: target.clone(),
                probe_ok: probe.as_ref().map(|p| p.ok),
                probe_ms: probe.map(|p| p.latency_ms),
                ..TargetSample::default()
            });
        }
        Ok(out)
    }
}

/// One target's figures over a charting interval; `None` where the source cannot tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetSample {
    pub target: String,
    pub requests: Option<u64>,
    pub errors: Option<u64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub probe_ok: Option<bool>,
    pub probe_ms: Option<f64>,
}

/// The `q` quantile (0–1) of `values` by the nearest-rank method; `None` when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * q).ceil().max(1.0) as usize;
    values.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::dns_host;

    #[test]
    fn a_dns_host_is_the_address_without_its_port_in_canonical_form() {
        assert_eq!(dns_host("10.0.0.1:8080"), "10.0.0.1");
        assert_eq!(dns_host("10.0.0.1"), "10.0.0.1");
        assert_eq!(dns_host("[2001:db8:0::1]:443"), "2001:db8::1");
        assert_eq!(dns_host("2001:db8::1"), "2001:db8::1");
        assert_eq!(dns_host("[::1]"), "::1");
        assert_eq!(dns_host("web-1.internal:80"), "web-1.internal");
        assert_eq!(dns_host("web-1.internal"), "web-1.internal");
    }
}
