//! PowerDNS router: steers a pool by rewriting one DNS record through the PowerDNS authoritative
//! HTTP API (a `PATCH` of the zone with `changetype: REPLACE`) and reads it back from the zone.
//!
//! DNS has no weights, membership, drain or preview routes: those calls are `Unsupported`, so a
//! DNS pool can only switch the whole record at once. Resolvers keep the old answer for the
//! record's TTL; the plan waits that out, this adapter only writes the TTL. The API key is never
//! logged or shown by `Debug`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use app::domain::audit::encode_component;
use app::domain::campaign::PreviewRoute;
use app::domain::environment::DEFAULT_DNS_TTL_SECS;
use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AdapterError, AdapterResult, BackendCheck, MemberReadback, Router, dns_host, root_cause,
};

pub const KIND: &str = "powerdns";

/// The backend's `settings`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API's base URL, e.g. `http://127.0.0.1:8081` (the webserver, without `/api/v1`).
    pub api_url: String,
    /// The key itself. Prefer `api_key_env`: settings are stored and shown with the environment.
    #[serde(default)]
    pub api_key: Option<String>,
    /// The name of an environment variable of the Switchyard server that holds the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_server_id")]
    pub server_id: String,
    /// The zone that holds the records, e.g. `example.test` (a trailing dot is optional).
    pub zone: String,
    /// The TTL written with each record; the plan waits it out after a switch.
    #[serde(default = "default_ttl")]
    pub ttl: u64,
    /// Limit for each HTTP call, connecting included.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The record the plan rewrites (read by the plan compiler; defaults to the pool's name).
    #[serde(default)]
    pub record: Option<String>,
}

fn default_server_id() -> String {
    "localhost".into()
}

fn default_ttl() -> u64 {
    DEFAULT_DNS_TTL_SECS
}

fn default_timeout() -> u64 {
    5
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_url", &self.api_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("api_key_env", &self.api_key_env)
            .field("server_id", &self.server_id)
            .field("zone", &self.zone)
            .field("ttl", &self.ttl)
            .field("timeout_secs", &self.timeout_secs)
            .field("record", &self.record)
            .finish()
    }
}

/// The API key; `Debug` never prints it.
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug)]
pub struct PowerDns {
    base: String,
    server_id: String,
    /// Absolute and lower-case: `example.test.`.
    zone: String,
    ttl: u64,
    timeout: Duration,
    key: ApiKey,
    http: reqwest::Client,
}

fn permanent(msg: impl Into<String>) -> AdapterError {
    AdapterError::Permanent(msg.into())
}

impl PowerDns {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        let key = match (&cfg.api_key, &cfg.api_key_env) {
            (Some(k), None) if !k.is_empty() => k.clone(),
            (None, Some(var)) => std::env::var(var).ok().filter(|k| !k.is_empty()).ok_or_else(|| {
                permanent(format!(
                    "PowerDNS: environment variable {var} (api_key_env) is not set on this server"
                ))
            })?,
            (Some(_), Some(_)) => {
                return Err(permanent("PowerDNS: set api_key or api_key_env, not both"));
            }
            _ => return Err(permanent("PowerDNS: api_key_env (or api_key) is required")),
        };
        let url = reqwest::Url::parse(&cfg.api_url)
            .map_err(|e| permanent(format!("PowerDNS: api_url '{}': {e}", cfg.api_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(permanent(format!("PowerDNS: api_url '{}' is not http(s)", cfg.api_url)));
        }
        let zone = cfg.zone.trim().trim_end_matches('.').to_ascii_lowercase();
        if zone.is_empty() {
            return Err(permanent("PowerDNS: zone is required, e.g. example.test"));
        }
        if cfg.timeout_secs == 0 {
            return Err(permanent("PowerDNS: timeout_secs must be at least 1"));
        }
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let http = crate::outbound::builder(timeout)
            .build()
            .map_err(|e| permanent(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: cfg.api_url.trim_end_matches('/').to_string(),
            server_id: cfg.server_id,
            zone: format!("{zone}."),
            ttl: cfg.ttl,
            timeout,
            key: ApiKey(key),
            http,
        })
    }

    fn server_url(&self) -> String {
        format!("{}/api/v1/servers/{}", self.base, encode_component(&self.server_id))
    }

    fn zone_url(&self) -> String {
        format!("{}/zones/{}", self.server_url(), encode_component(&self.zone))
    }

    /// `web` → `web.example.test.`; a name already in the zone (with or without the final dot)
    /// stays; `@` or the zone itself is the apex. A name outside the zone is refused.
    pub fn absolute(&self, record: &str) -> AdapterResult<String> {
        let r = record.trim().to_ascii_lowercase();
        let apex = self.zone.trim_end_matches('.');
        let name = if r.is_empty() || r == "@" || r == apex || r == self.zone {
            self.zone.clone()
        } else if let Some(rel) = r.strip_suffix('.') {
            format!("{rel}.")
        } else if r.ends_with(&format!(".{apex}")) {
            format!("{r}.")
        } else {
            format!("{r}.{}", self.zone)
        };
        if name != self.zone && !name.ends_with(&format!(".{}", self.zone)) {
            return Err(permanent(format!("record {name} is not in zone {}", self.zone)));
        }
        Ok(name)
    }

    /// Sends with the key; maps failures to transient (unreachable, slow, 5xx, 429) or permanent
    /// (any other 4xx, with PowerDNS's own `error` text), and returns the body.
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> AdapterResult<String> {
        let res = req.header("X-API-Key", &self.key.0).send().await.map_err(|e| {
            if e.is_timeout() {
                AdapterError::Transient(format!(
                    "PowerDNS at {} did not answer {what} within {}s",
                    self.base,
                    self.timeout.as_secs()
                ))
            } else if e.is_connect() {
                AdapterError::Transient(format!(
                    "cannot reach PowerDNS at {}: {}",
                    self.base,
                    root_cause(&e)
                ))
            } else {
                AdapterError::Transient(format!(
                    "PowerDNS at {}: {what} failed: {}",
                    self.base,
                    root_cause(&e)
                ))
            }
        })?;
        let status = res.status();
        let body = res.text().await.map_err(|e| {
            AdapterError::Transient(format!(
                "PowerDNS at {}: reading the answer to {what}: {}",
                self.base,
                root_cause(&e)
            ))
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let why = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let msg = format!("PowerDNS answered {what} with {status}: {why}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(AdapterError::Transient(msg))
        } else {
            Err(AdapterError::Permanent(msg))
        }
    }

    async fn get_json(&self, url: &str, what: &str) -> AdapterResult<Value> {
        let body = self.send(self.http.get(url), what).await?;
        serde_json::from_str(&body).map_err(|e| {
            permanent(format!("PowerDNS answered {what} with something not JSON: {e}"))
        })
    }

    fn unsupported(&self, what: &str) -> AdapterError {
        AdapterError::Unsupported(format!(
            "PowerDNS ({}) rewrites a whole DNS record; it has no {what}. Use blue-green with \
             switch at_once on a DNS pool, or a load-balancer router",
            self.zone
        ))
    }
}

/// The IP a target address points at: `10.0.0.1:8080` → `10.0.0.1`, `[::1]:80` → `::1`.
fn ip_of(address: &str) -> AdapterResult<IpAddr> {
    dns_host(address).parse().map_err(|_| {
        permanent(format!(
            "'{address}' is not an IP address; a DNS router writes A/AAAA records, so targets \
             need IP addresses"
        ))
    })
}

#[async_trait]
impl Router for PowerDns {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let server = self.get_json(&self.server_url(), "the server query").await?;
        let version = server.get("version").and_then(Value::as_str).map(str::to_string);
        let daemon = server.get("daemon_type").and_then(Value::as_str).unwrap_or("server");
        // Only the apex SOA: PowerDNS 4.7 filters the rrsets it returns by these parameters.
        let url = format!(
            "{}?rrset_name={}&rrset_type=SOA",
            self.zone_url(),
            encode_component(&self.zone)
        );
        let zone = self.get_json(&url, &format!("the query for zone {}", self.zone)).await?;
        let kind = zone.get("kind").and_then(Value::as_str).unwrap_or("?");
        let serial = zone.get("serial").and_then(Value::as_u64).unwrap_or(0);
        Ok(BackendCheck {
            version,
            capabilities: ["dns-switch", "read-back"].map(String::from).to_vec(),
            detail: format!(
                "PowerDNS {daemon} at {}; zone {} ({kind}, serial {serial}); records written with TTL {} s",
                self.base, self.zone, self.ttl
            ),
        })
    }

    async fn set_weight(&self, _pool: &str, _target: &str, _weight: Weight) -> AdapterResult<()> {
        Err(self.unsupported("weights"))
    }

    async fn set_state(
        &self,
        _pool: &str,
        _target: &str,
        _state: MemberState,
    ) -> AdapterResult<()> {
        Err(self.unsupported("member states (drain)"))
    }

    async fn add_member(
        &self,
        _pool: &str,
        _target: &str,
        _address: &str,
        _weight: Weight,
    ) -> AdapterResult<()> {
        Err(self.unsupported("pool membership"))
    }

    async fn remove_member(&self, _pool: &str, _target: &str) -> AdapterResult<()> {
        Err(self.unsupported("pool membership"))
    }

    async fn await_drained(
        &self,
        _pool: &str,
        _target: &str,
        _timeout_secs: u64,
    ) -> AdapterResult<bool> {
        Err(self.unsupported("drain"))
    }

    /// Ensures `record` resolves to exactly these IPs: the A set and the AAAA set are replaced,
    /// and a family with no address is deleted, so nothing of the old answer is left.
    async fn switch_dns(&self, record: &str, addresses: &[String]) -> AdapterResult<()> {
        let name = self.absolute(record)?;
        let ips: BTreeSet<IpAddr> = addresses.iter().map(|a| ip_of(a)).collect::<Result<_, _>>()?;
        if ips.is_empty() {
            return Err(permanent(format!("refusing to point {name} at no address at all")));
        }
        let rrset = |rtype: &str, family: Vec<String>| {
            if family.is_empty() {
                json!({ "name": name, "type": rtype, "changetype": "DELETE" })
            } else {
                let records: Vec<Value> =
                    family.iter().map(|c| json!({ "content": c, "disabled": false })).collect();
                json!({ "name": name, "type": rtype, "ttl": self.ttl, "changetype": "REPLACE", "records": records })
            }
        };
        let v4 = ips.iter().filter(|ip| ip.is_ipv4()).map(ToString::to_string).collect();
        let v6 = ips.iter().filter(|ip| ip.is_ipv6()).map(ToString::to_string).collect();
        let body = json!({ "rrsets": [rrset("A", v4), rrset("AAAA", v6)] });
        tracing::info!(record = %name, addresses = ?ips, ttl = self.ttl, "PowerDNS: switching record");
        self.send(self.http.patch(self.zone_url()).json(&body), &format!("the change of {name}"))
            .await
            .map(|_| ())
    }

    async fn set_preview_route(
        &self,
        _pool: &str,
        _route: &PreviewRoute,
        _addresses: &[String],
    ) -> AdapterResult<()> {
        Err(self.unsupported("preview routes"))
    }

    async fn clear_preview_route(&self, _pool: &str) -> AdapterResult<()> {
        Err(self.unsupported("preview routes"))
    }

    async fn read_pool(&self, _pool: &str) -> AdapterResult<Vec<MemberReadback>> {
        Err(self.unsupported("pool members to read (its record is read back instead)"))
    }

    /// The enabled A and AAAA contents of `record`, as the zone holds them now.
    async fn read_dns(&self, record: &str) -> AdapterResult<Option<Vec<String>>> {
        let name = self.absolute(record)?;
        let url = format!("{}?rrset_name={}", self.zone_url(), encode_component(&name));
        let zone = self.get_json(&url, &format!("the query for {name}")).await?;
        let rrsets = zone.get("rrsets").and_then(Value::as_array).ok_or_else(|| {
            permanent(format!("PowerDNS's answer for zone {} has no rrsets", self.zone))
        })?;
        let mut out = Vec::new();
        for set in rrsets {
            let same_name = set
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(&name));
            let address_type =
                matches!(set.get("type").and_then(Value::as_str), Some("A" | "AAAA"));
            if !(same_name && address_type) {
                continue;
            }
            for r in set.get("records").and_then(Value::as_array).into_iter().flatten() {
                if r.get("disabled").and_then(Value::as_bool).unwrap_or(false) {
                    continue;
                }
                if let Some(content) = r.get("content").and_then(Value::as_str) {
                    out.push(content.to_string());
                }
            }
        }
        out.sort();
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        serde_json::from_value(json!({
            "api_url": "http://127.0.0.1:1",
            "api_key": "s3cret-key",
            "zone": "Example.Test",
        }))
        .expect("valid settings")
    }

    #[test]
    fn settings_have_defaults_and_debug_never_shows_the_key() {
        let c = cfg();
        assert_eq!((c.server_id.as_str(), c.ttl, c.timeout_secs), ("localhost", 60, 5));
        let shown = format!("{c:?} {:?}", PowerDns::new(c.clone()).expect("builds"));
        assert!(!shown.contains("s3cret-key"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn a_key_is_required_and_may_come_from_the_environment() {
        let mut c = cfg();
        c.api_key = None;
        assert!(matches!(PowerDns::new(c.clone()), Err(AdapterError::Permanent(_))));
        c.api_key_env = Some("SWITCHYARD_TEST_NO_SUCH_VARIABLE".into());
        let err = PowerDns::new(c).expect_err("unset variable");
        assert!(err.to_string().contains("SWITCHYARD_TEST_NO_SUCH_VARIABLE"), "{err}");
        let mut c = cfg();
        c.api_key_env = Some("PATH".into());
        assert!(PowerDns::new(c).is_err(), "both is ambiguous");
    }

    #[test]
    fn record_names_are_made_absolute_within_the_zone() {
        let p = PowerDns::new(cfg()).expect("builds");
        assert_eq!(p.absolute("web").expect("ok"), "web.example.test.");
        assert_eq!(p.absolute("web.example.test").expect("ok"), "web.example.test.");
        assert_eq!(p.absolute("WEB.example.test.").expect("ok"), "web.example.test.");
        assert_eq!(p.absolute("a.b").expect("ok"), "a.b.example.test.");
        assert_eq!(p.absolute("@").expect("ok"), "example.test.");
        assert_eq!(p.absolute("example.test").expect("ok"), "example.test.");
        assert!(matches!(p.absolute("web.other.test."), Err(AdapterError::Permanent(_))));
        assert!(matches!(p.absolute("notexample.test."), Err(AdapterError::Permanent(_))));
    }

    #[test]
    fn target_addresses_lose_their_ports_and_hostnames_are_refused() {
        assert_eq!(ip_of("10.0.0.1:8080").expect("ip"), "10.0.0.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(ip_of("10.0.0.1").expect("ip").to_string(), "10.0.0.1");
        assert_eq!(ip_of("[2001:db8::1]:443").expect("ip").to_string(), "2001:db8::1");
        assert_eq!(ip_of("2001:db8:0::1").expect("ip").to_string(), "2001:db8::1");
        assert!(matches!(ip_of("web-1.internal:80"), Err(AdapterError::Permanent(_))));
    }

    #[tokio::test]
    async fn weights_membership_and_drain_are_unsupported() {
        let p = PowerDns::new(cfg()).expect("builds");
        let half = Weight::FULL.split_even(2)[0];
        assert!(matches!(p.set_weight("web", "a", half).await, Err(AdapterError::Unsupported(_))));
        assert!(matches!(
            p.set_state("web", "a", MemberState::Drain).await,
            Err(AdapterError::Unsupported(_))
        ));
        assert!(matches!(
            p.add_member("web", "a", "10.0.0.1:80", half).await,
            Err(AdapterError::Unsupported(_))
        ));
        assert!(matches!(p.remove_member("web", "a").await, Err(AdapterError::Unsupported(_))));
        assert!(matches!(p.await_drained("web", "a", 1).await, Err(AdapterError::Unsupported(_))));
        assert!(matches!(p.read_pool("web").await, Err(AdapterError::Unsupported(_))));
    }

    #[tokio::test]
    async fn nothing_listening_is_a_transient_error() {
        let p = PowerDns::new(cfg()).expect("builds");
        let err = p.read_dns("web").await.expect_err("port 1 is closed");
        assert!(err.is_transient(), "{err}");
        let err = p.switch_dns("web", &["10.0.0.1:80".into()]).await.expect_err("closed");
        assert!(err.is_transient(), "{err}");
    }
}
