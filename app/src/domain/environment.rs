//! The place a service runs: its targets (instances), the pools that group them behind a router,
//! and the backends Switchyard drives there. This is a description only; it holds no live state
//! and checks no cross-references — `validate` does that for the parts a campaign uses.

use serde::{Deserialize, Serialize};

use super::ids::{Name, Release};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(from = "EnvironmentFields")]
pub struct Environment {
    pub name: Name,
    pub targets: Vec<Target>,
    pub pools: Vec<Pool>,
    pub backends: Vec<BackendConfig>,
    /// Recurring times when no campaign may start here (an admin may override, audited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<super::window::FreezeWindow>,
    /// Approvals every campaign here needs before it changes anything (count and least role);
    /// a campaign's own policy may ask for more, never less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<super::campaign::ApprovalPolicy>,
    /// Where the operators of this environment hear about its campaigns: a pause, a failed
    /// gate, a wait for approval, a rollback, a success (through the outbox, retried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertChannel>,
}

/// One operator channel: an e-mail address, or a webhook that gets a signed JSON body whose
/// `text` field a Slack-compatible incoming webhook shows as the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "channel")]
pub enum AlertChannel {
    Email { to: String },
    Webhook { url: String },
}

impl AlertChannel {
    /// `(channel, recipient)` as the outbox stores a delivery.
    pub fn delivery(&self) -> (&'static str, &str) {
        match self {
            AlertChannel::Email { to } => ("email", to),
            AlertChannel::Webhook { url } => ("webhook", url),
        }
    }

    /// Why this channel cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            AlertChannel::Email { to } => {
                let t = to.trim();
                let ok = t.len() <= 254
                    && !t.chars().any(|c| c.is_whitespace() || c.is_control())
                    && t.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
                (!ok).then(|| format!("'{to}' is not an e-mail address"))
            }
            AlertChannel::Webhook { url } => {
                let ok = (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() <= 2048
                    && !url.chars().any(|c| c.is_whitespace() || c.is_control());
                (!ok).then(|| "expected an http:// or https:// URL".to_string())
            }
        }
    }
}

/// An environment as written; reading it tells each backend which environment it is in.
#[derive(Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
struct EnvironmentFields {
    name: Name,
    targets: Vec<Target>,
    pools: Vec<Pool>,
    backends: Vec<BackendConfig>,
    #[serde(default)]
    freezes: Vec<super::window::FreezeWindow>,
    #[serde(default)]
    approvals: Option<super::campaign::ApprovalPolicy>,
    #[serde(default)]
    alerts: Vec<AlertChannel>,
}

impl From<EnvironmentFields> for Environment {
    fn from(f: EnvironmentFields) -> Self {
        let mut backends = f.backends;
        for b in &mut backends {
            b.environment = Some(f.name.clone());
        }
        Self {
            name: f.name,
            targets: f.targets,
            pools: f.pools,
            backends,
            freezes: f.freezes,
            approvals: f.approvals,
            alerts: f.alerts,
        }
    }
}

/// One instance of the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Target {
    pub name: Name,
    /// `host:port` the router sends traffic to.
    pub address: String,
    /// Free-form placement label (zone, rack); new instances inherit it from the one they replace.
    pub group: String,
    pub release: Release,
    pub health_url: String,
}

/// Targets behind one load-balancer backend or DNS record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Pool {
    pub name: Name,
    /// Name of the [`BackendKind::Router`] backend that owns this pool.
    pub router: Name,
    pub targets: Vec<Name>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Provider,
    Router,
    HealthSource,
    Channel,
}

impl BackendKind {
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Provider => "provider",
            BackendKind::Router => "router",
            BackendKind::HealthSource => "health source",
            BackendKind::Channel => "channel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackendConfig {
    pub name: Name,
    pub kind: BackendKind,
    /// Which implementation: `haproxy`, `nginx`, `powerdns`, `local-process`, `http-probe`, …
    pub driver: String,
    /// Driver-specific settings, checked by the adapter, not here.
    #[serde(default)]
    pub settings: serde_json::Value,
    /// The environment this backend belongs to, set when an environment is read (not
    /// written): the server keeps one adapter per (environment, backend).
    #[serde(skip)]
    pub environment: Option<Name>,
}

/// Router drivers that steer traffic by rewriting a DNS record rather than by per-member weights.
pub const DNS_DRIVERS: [&str; 1] = ["powerdns"];

/// The TTL a DNS router gives the records it writes when its settings name none.
pub const DEFAULT_DNS_TTL_SECS: u64 = 60;

impl BackendConfig {
    /// A DNS router can only swap the whole record; it has no weights, drain or membership.
    pub fn is_dns_router(&self) -> bool {
        self.kind == BackendKind::Router && DNS_DRIVERS.contains(&self.driver.as_str())
    }

    /// The DNS record a DNS router rewrites: `settings.record`, or the pool name when unset.
    pub fn dns_record(&self, pool: &Name) -> String {
        self.settings
            .get("record")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| pool.to_string(), str::to_string)
    }

    /// How long resolvers may keep serving the old answer after a DNS router rewrites its record:
    /// the TTL it writes, `settings.ttl`, or [`DEFAULT_DNS_TTL_SECS`] when unset.
    pub fn dns_ttl(&self) -> u64 {
        self.settings.get("ttl").and_then(serde_json::Value::as_u64).unwrap_or(DEFAULT_DNS_TTL_SECS)
    }
}

impl Environment {
    /// The approvals this environment insists on, when it insists on any.
    pub fn required_approvals(&self) -> Option<super::campaign::ApprovalPolicy> {
        self.approvals.filter(|a| a.required > 0)
    }

    pub fn target(&self, name: &Name) -> Option<&Target> {
        self.targets.iter().find(|t| &t.name == name)
    }

    pub fn pool(&self, name: &Name) -> Option<&Pool> {
        self.pools.iter().find(|p| &p.name == name)
    }

    pub fn backend(&self, name: &Name) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| &b.name == name)
    }

    /// The first backend of a kind, in declaration order; campaigns use it when none is named.
    pub fn first_backend(&self, kind: BackendKind) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.kind == kind)
    }

    /// The pool's targets that the environment defines, in the pool's order.
    pub fn pool_targets(&self, pool: &Pool) -> Vec<&Target> {
        pool.targets.iter().filter_map(|n| self.target(n)).collect()
    }
}
