//! Configuration: defaults in code, then an optional TOML file, then `SWITCHYARD_*`
//! environment variables. Every setting is one row of [`SETTINGS`], which also feeds `--help`.
//! A bad value is reported with its key, where it came from, and what would be valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// (key in the TOML file, environment variable, default, help)
pub const SETTINGS: &[(&str, &str, &str, &str)] = &[
    ("listen", "SWITCHYARD_LISTEN", "127.0.0.1:3000", "address and port the dashboard listens on"),
    (
        "database_url",
        "SWITCHYARD_DATABASE_URL",
        "sqlite://data/switchyard.db",
        "SQLite URL of the store (created if missing)",
    ),
    (
        "site_root",
        "SWITCHYARD_SITE_ROOT",
        "target/site",
        "folder with the built browser client (pkg/)",
    ),
    ("log_format", "SWITCHYARD_LOG_FORMAT", "pretty", "log format: pretty or json"),
    (
        "log_filter",
        "SWITCHYARD_LOG",
        "info,sqlx=warn",
        "tracing filter, e.g. info or switchyard=debug",
    ),
    (
        "session.cookie_name",
        "SWITCHYARD_COOKIE_NAME",
        "switchyard_session",
        "name of the session cookie",
    ),
    (
        "session.cookie_secure",
        "SWITCHYARD_COOKIE_SECURE",
        "false",
        "mark the cookie Secure (set true when served over TLS)",
    ),
    ("session.same_site", "SWITCHYARD_COOKIE_SAME_SITE", "lax", "cookie SameSite: lax or strict"),
    (
        "session.idle_minutes",
        "SWITCHYARD_SESSION_IDLE_MINUTES",
        "60",
        "sign out after this many idle minutes",
    ),
    (
        "session.absolute_hours",
        "SWITCHYARD_SESSION_ABSOLUTE_HOURS",
        "12",
        "sign out this many hours after sign-in, active or not",
    ),
    (
        "auth.max_failures_per_user",
        "SWITCHYARD_MAX_FAILURES_PER_USER",
        "5",
        "failed sign-ins per user name from one client address before that address is throttled for that name",
    ),
    (
        "auth.max_failures_per_ip",
        "SWITCHYARD_MAX_FAILURES_PER_IP",
        "20",
        "failed sign-ins per client address before throttling",
    ),
    (
        "auth.failure_window_minutes",
        "SWITCHYARD_FAILURE_WINDOW_MINUTES",
        "15",
        "window over which failed sign-ins are counted",
    ),
    (
        "drift.interval_secs",
        "SWITCHYARD_DRIFT_INTERVAL_SECS",
        "30",
        "how often every router pool is read back and compared with what Switchyard last set",
    ),
    (
        "charts.sample_interval_ms",
        "SWITCHYARD_SAMPLE_INTERVAL_MS",
        "1000",
        "how often each target of a running campaign is sampled for the health charts",
    ),
    (
        "retention.samples_days",
        "SWITCHYARD_RETENTION_SAMPLES_DAYS",
        "30",
        "keep health samples this many days (the audit trail is never pruned)",
    ),
    (
        "retention.events_days",
        "SWITCHYARD_RETENTION_EVENTS_DAYS",
        "365",
        "keep the event stream and step log of campaigns finished this many days ago",
    ),
    (
        "retention.deliveries_days",
        "SWITCHYARD_RETENTION_DELIVERIES_DAYS",
        "365",
        "keep notice delivery attempts this many days",
    ),
    (
        "retention.unconfirmed_subscribers_days",
        "SWITCHYARD_RETENTION_UNCONFIRMED_DAYS",
        "7",
        "forget subscribers who never confirmed after this many days",
    ),
    (
        "alerts.webhook_url",
        "SWITCHYARD_ALERT_WEBHOOK_URL",
        "",
        "an operator channel for every environment: alerts (pauses, failed gates, approvals, rollbacks, successes) are POSTed here as signed JSON, besides each environment's own alerts channels",
    ),
    (
        "alerts.webhook_secret",
        "SWITCHYARD_ALERT_WEBHOOK_SECRET",
        "",
        "HMAC key that signs operator alert webhooks (X-Switchyard-Signature; never logged)",
    ),
    (
        "demo.enabled",
        "SWITCHYARD_DEMO",
        "false",
        "seed the demo environment (local processes behind the embedded router) and a ready canary",
    ),
    (
        "demo.router_listen",
        "SWITCHYARD_DEMO_ROUTER",
        "127.0.0.1:8080",
        "where the demo's embedded router takes user traffic",
    ),
    (
        "demo.first_port",
        "SWITCHYARD_DEMO_FIRST_PORT",
        "9101",
        "first of the demo instances' ports (four v1 instances, new ones above +10)",
    ),
    (
        "demo.traffic_rps",
        "SWITCHYARD_DEMO_TRAFFIC_RPS",
        "20",
        "requests per second from the demo's traffic generator (0: none)",
    ),
    (
        "demo.exe",
        "SWITCHYARD_DEMO_EXE",
        "",
        "program that runs `demo-service` for the demo instances (default: this one)",
    ),
    (
        "public_url",
        "SWITCHYARD_PUBLIC_URL",
        "http://127.0.0.1:3000",
        "the address people reach this server at, for links in notices and feeds",
    ),
    (
        "smtp.host",
        "SWITCHYARD_SMTP_HOST",
        "",
        "SMTP server for notices (empty: e-mail is not sent)",
    ),
    ("smtp.port", "SWITCHYARD_SMTP_PORT", "587", "SMTP port (587 STARTTLS, 465 TLS, 25 none)"),
    ("smtp.tls", "SWITCHYARD_SMTP_TLS", "starttls", "SMTP encryption: starttls, tls or none"),
    (
        "smtp.ca_file",
        "SWITCHYARD_SMTP_CA_FILE",
        "",
        "PEM file of CA certificates to trust for the SMTP server besides the public roots",
    ),
    ("smtp.username", "SWITCHYARD_SMTP_USERNAME", "", "SMTP user name (empty: no authentication)"),
    ("smtp.password", "SWITCHYARD_SMTP_PASSWORD", "", "SMTP password (never logged)"),
    (
        "smtp.from",
        "SWITCHYARD_SMTP_FROM",
        "Switchyard <switchyard@localhost>",
        "sender of notices, e.g. Status <status@example.com>",
    ),
    (
        "notify.max_per_second",
        "SWITCHYARD_NOTIFY_MAX_PER_SECOND",
        "20",
        "most notices sent per second (a courtesy to the SMTP server)",
    ),
    (
        "notify.retry_base_secs",
        "SWITCHYARD_NOTIFY_RETRY_BASE_SECS",
        "30",
        "first retry delay of a failed delivery; doubles per attempt, up to 8 attempts",
    ),
    // ---- security: outbound TLS, webhooks, proxies, request limits, tokens, sign-in ----
    (
        "outbound.ca_file",
        "SWITCHYARD_OUTBOUND_CA_FILE",
        "",
        "PEM file of CA certificates trusted for outbound HTTPS (backends, webhooks, the CLI) besides the platform's",
    ),
    (
        "webhooks.allow_hosts",
        "SWITCHYARD_WEBHOOK_ALLOW_HOSTS",
        "",
        "hosts, IPs or CIDR ranges public subscriber webhooks may reach although they are internal (comma-separated)",
    ),
    (
        "webhooks.allow_http",
        "SWITCHYARD_WEBHOOK_ALLOW_HTTP",
        "",
        "hosts, IPs or CIDR ranges subscriber webhooks may reach over plain http (comma-separated)",
    ),
    (
        "trusted_proxies",
        "SWITCHYARD_TRUSTED_PROXIES",
        "",
        "IPs or CIDR ranges of reverse proxies whose X-Forwarded-For is believed (comma-separated; empty: none)",
    ),
    (
        "trust_forwarded_for",
        "SWITCHYARD_TRUST_FORWARDED_FOR",
        "false",
        "replaced by trusted_proxies (true is refused: name the proxies instead)",
    ),
    (
        "http.max_body_bytes",
        "SWITCHYARD_MAX_BODY_BYTES",
        "1048576",
        "largest request body any route accepts (larger: 413)",
    ),
    (
        "auth.hash_concurrency",
        "SWITCHYARD_HASH_CONCURRENCY",
        "2",
        "password hashes computed at once; more sign-ins wait in a short queue, then get 503",
    ),
];

pub const CONFIG_FILE_ENV: &str = "SWITCHYARD_CONFIG";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub cookie_name: String,
    pub cookie_secure: bool,
    pub same_site: SameSite,
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub max_failures_per_user: i64,
    pub max_failures_per_ip: i64,
    pub failure_window_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Extra trusted CA certificates (PEM), e.g. a company CA or a test server's own.
    pub ca_file: Option<std::path::PathBuf>,
    pub username: String,
    pub password: String,
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "<redacted>" })
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Without a scheme://host, links in notices would be useless; no trailing slash.
    pub public_url: String,
    /// `None` when no SMTP host is set: e-mail deliveries wait, with the reason visible.
    pub smtp: Option<SmtpConfig>,
    pub max_per_second: u32,
    pub retry_base_secs: u64,
    /// Which internal hosts subscriber webhooks may reach, and which over http.
    pub webhooks: std::sync::Arc<crate::outbound::WebhookPolicy>,
    /// Signs operator alert webhooks (`alerts.webhook_secret`); redacted in `Debug`.
    pub alert_secret: Secret,
}

/// A setting that must never be printed: `Debug` shows only whether it is set.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "<not set>" } else { "<set>" })
    }
}

/// The security settings (`outbound.*`, `webhooks.*`, `trusted_proxies`, `http.*`,
/// `auth.hash_concurrency`).
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    pub outbound_ca_file: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` is believed; the client is the rightmost other hop.
    pub trusted_proxies: Vec<crate::outbound::IpNet>,
    pub max_body_bytes: usize,
    pub hash_concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub notify: NotifyConfig,
    pub listen: SocketAddr,
    pub database_url: String,
    pub site_root: PathBuf,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub security: SecurityConfig,
    /// Seconds between drift checks of every router pool Switchyard has set.
    pub drift_interval_secs: u64,
    /// Milliseconds between health samples of a running campaign's targets (charts).
    pub sample_interval_ms: u64,
    pub session: SessionConfig,
    pub auth: AuthConfig,
    pub demo: Option<crate::demo::DemoConfig>,
    pub retention: RetentionConfig,
    /// Where operator alerts are POSTed; `None`: log, audit and the campaign page only.
    pub alert_webhook: Option<String>,
}

/// How long what grows is kept; the audit trail is never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    pub samples_days: i64,
    pub events_days: i64,
    pub deliveries_days: i64,
    pub unconfirmed_subscribers_days: i64,
}

impl Config {
    /// The folder of the SQLite file, where adapters keep their state files.
    pub fn data_dir(&self) -> Option<PathBuf> {
        let path = self.database_url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(':') {
            return None;
        }
        Path::new(path).parent().map(Path::to_path_buf)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid configuration: {key} = '{value}' (from {origin}): {why}")]
    Invalid { key: String, value: String, origin: String, why: String },
    #[error("cannot read config file {path}: {why}")]
    File { path: String, why: String },
    #[error("unknown key '{key}' in config file {path}; known keys: {known}")]
    UnknownKey { key: String, path: String, known: String },
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
struct Raw {
    value: String,
    source: String,
}

impl Config {
    /// Loads defaults ← file (the explicit path, or `SWITCHYARD_CONFIG`) ← environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    pub fn load_from(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: BTreeMap<&'static str, Raw> = SETTINGS
            .iter()
            .map(|(k, _, d, _)| (*k, Raw { value: (*d).to_string(), source: "default".into() }))
            .collect();

        let file =
            file.map(Path::to_path_buf).or_else(|| env.get(CONFIG_FILE_ENV).map(PathBuf::from));
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::File { path: shown.clone(), why: e.to_string() })?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError::File { path: shown.clone(), why: e.to_string() }
            })?;
            let mut flat = Vec::new();
            flatten("", &table, &mut flat);
            for (key, value) in flat {
                let Some((k, ..)) = SETTINGS.iter().find(|(k, ..)| *k == key) else {
                    return Err(ConfigError::UnknownKey {
                        key,
                        path: shown,
                        known: SETTINGS.iter().map(|s| s.0).collect::<Vec<_>>().join(", "),
                    });
                };
                raw.insert(k, Raw { value, source: format!("file {shown}") });
            }
        }
        for (k, var, ..) in SETTINGS {
            if let Some(v) = env.get(*var) {
                raw.insert(
                    k,
                    Raw { value: v.clone(), source: format!("environment variable {var}") },
                );
            }
        }
        Self::parse(&raw)
    }

    fn parse(raw: &BTreeMap<&'static str, Raw>) -> Result<Self, ConfigError> {
        let get = |key: &'static str| {
            raw.get(key).cloned().unwrap_or(Raw { value: String::new(), source: "default".into() })
        };
        let bad = |key: &'static str, why: &str| {
            let r = get(key);
            ConfigError::Invalid {
                key: key.into(),
                value: r.value,
                origin: r.source,
                why: why.into(),
            }
        };
        let boolean = |key: &'static str| match get(key).value.trim().to_ascii_lowercase().as_str()
        {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad(key, "expected true or false")),
        };
        let positive = |key: &'static str, unit: &str| {
            get(key).value.trim().parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(key, &format!("expected a whole number of {unit} greater than 0"))
            })
        };

        let listen =
            get("listen").value.trim().parse::<SocketAddr>().map_err(|_| {
                bad("listen", "expected IP:PORT, e.g. 127.0.0.1:3000 or [::1]:3000")
            })?;
        let database_url = get("database_url").value.trim().to_string();
        if !database_url.starts_with("sqlite:") {
            return Err(bad(
                "database_url",
                "expected a SQLite URL like sqlite://data/switchyard.db",
            ));
        }
        let log_format = match get("log_format").value.trim() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            _ => return Err(bad("log_format", "expected pretty or json")),
        };
        let same_site = match get("session.same_site").value.trim().to_ascii_lowercase().as_str() {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            _ => return Err(bad("session.same_site", "expected lax or strict")),
        };
        let cookie_name = get("session.cookie_name").value.trim().to_string();
        if cookie_name.is_empty()
            || !cookie_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("session.cookie_name", "expected letters, digits, '_' or '-'"));
        }
        let demo = if boolean("demo.enabled")? {
            Some(crate::demo::DemoConfig {
                router_listen: get("demo.router_listen").value.trim().parse().map_err(|_| {
                    bad("demo.router_listen", "expected IP:PORT, e.g. 127.0.0.1:8080")
                })?,
                first_port: get("demo.first_port")
                    .value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0 && *p < 65_000)
                    .ok_or_else(|| bad("demo.first_port", "expected a port between 1 and 64999"))?,
                exe: Some(get("demo.exe").value.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
                traffic_rps: get("demo.traffic_rps")
                    .value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|r| *r <= 1000)
                    .ok_or_else(|| {
                        bad("demo.traffic_rps", "expected 0–1000 requests per second")
                    })?,
            })
        } else {
            None
        };
        let public_url = get("public_url").value.trim().trim_end_matches('/').to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(bad("public_url", "expected an http:// or https:// URL"));
        }
        let host = get("smtp.host").value.trim().to_string();
        let smtp = if host.is_empty() {
            None
        } else {
            let from = get("smtp.from").value.trim().to_string();
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(bad(
                    "smtp.from",
                    "expected an address like Status <status@example.com>",
                ));
            }
            Some(SmtpConfig {
                host,
                port: get("smtp.port")
                    .value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("smtp.port", "expected a port between 1 and 65535"))?,
                tls: match get("smtp.tls").value.trim().to_ascii_lowercase().as_str() {
                    "none" => SmtpTls::None,
                    "starttls" => SmtpTls::StartTls,
                    "tls" => SmtpTls::Tls,
                    _ => return Err(bad("smtp.tls", "expected starttls, tls or none")),
                },
                ca_file: match get("smtp.ca_file").value.trim() {
                    "" => None,
                    path => {
                        let pem = std::fs::read_to_string(path).map_err(|e| {
                            bad("smtp.ca_file", &format!("cannot read {path}: {e}"))
                        })?;
                        if !pem.contains("-----BEGIN CERTIFICATE-----") {
                            return Err(bad(
                                "smtp.ca_file",
                                "expected PEM certificates (-----BEGIN CERTIFICATE-----)",
                            ));
                        }
                        Some(path.into())
                    }
                },
                username: get("smtp.username").value.trim().to_string(),
                password: get("smtp.password").value,
                from,
            })
        };
        let notify = NotifyConfig {
            public_url,
            smtp,
            max_per_second: u32::try_from(positive("notify.max_per_second", "messages")?)
                .unwrap_or(u32::MAX),
            retry_base_secs: u64::try_from(positive("notify.retry_base_secs", "seconds")?)
                .unwrap_or(30),
            alert_secret: Secret(get("alerts.webhook_secret").value),
            webhooks: std::sync::Arc::new(crate::outbound::WebhookPolicy {
                allow_hosts: crate::outbound::parse_host_rules(&get("webhooks.allow_hosts").value)
                    .map_err(|why| bad("webhooks.allow_hosts", &why))?,
                allow_http: crate::outbound::parse_host_rules(&get("webhooks.allow_http").value)
                    .map_err(|why| bad("webhooks.allow_http", &why))?,
            }),
        };
        if boolean("trust_forwarded_for")? {
            return Err(bad(
                "trust_forwarded_for",
                "this setting is gone: list the addresses of your reverse proxies in trusted_proxies (SWITCHYARD_TRUSTED_PROXIES), e.g. 127.0.0.1 or 10.0.0.0/8",
            ));
        }
        let security = SecurityConfig {
            outbound_ca_file: match get("outbound.ca_file").value.trim() {
                "" => None,
                path => {
                    let pem = std::fs::read_to_string(path).map_err(|e| {
                        bad("outbound.ca_file", &format!("cannot read {path}: {e}"))
                    })?;
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        return Err(bad(
                            "outbound.ca_file",
                            "expected PEM certificates (-----BEGIN CERTIFICATE-----)",
                        ));
                    }
                    Some(path.into())
                }
            },
            trusted_proxies: get("trusted_proxies")
                .value
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(crate::outbound::IpNet::parse)
                .collect::<Result<_, _>>()
                .map_err(|why| {
                    bad(
                        "trusted_proxies",
                        &format!("{why}; expected IPs or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8"),
                    )
                })?,
            max_body_bytes: get("http.max_body_bytes")
                .value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1024..=1 << 30).contains(n))
                .ok_or_else(|| {
                    bad("http.max_body_bytes", "expected a number of bytes from 1024 to 1073741824")
                })?,
            hash_concurrency: get("auth.hash_concurrency")
                .value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| bad("auth.hash_concurrency", "expected 1 to 64"))?,
        };
        let alert_webhook = match get("alerts.webhook_url").value.trim() {
            "" => None,
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.to_string())
            }
            _ => {
                return Err(bad(
                    "alerts.webhook_url",
                    "expected an http:// or https:// URL, or empty",
                ));
            }
        };
        let retention = RetentionConfig {
            samples_days: positive("retention.samples_days", "days")?,
            events_days: positive("retention.events_days", "days")?,
            deliveries_days: positive("retention.deliveries_days", "days")?,
            unconfirmed_subscribers_days: positive(
                "retention.unconfirmed_subscribers_days",
                "days",
            )?,
        };
        Ok(Config {
            notify,
            demo,
            retention,
            alert_webhook,
            listen,
            database_url,
            site_root: PathBuf::from(get("site_root").value.trim()),
            log_format,
            log_filter: get("log_filter").value.trim().to_string(),
            security,
            drift_interval_secs: positive("drift.interval_secs", "seconds")?.unsigned_abs(),
            sample_interval_ms: positive("charts.sample_interval_ms", "milliseconds")?
                .unsigned_abs(),
            session: SessionConfig {
                cookie_name,
                cookie_secure: boolean("session.cookie_secure")?,
                same_site,
                idle_timeout_secs: positive("session.idle_minutes", "minutes")? * 60,
                absolute_timeout_secs: positive("session.absolute_hours", "hours")? * 3600,
            },
            auth: AuthConfig {
                max_failures_per_user: positive("auth.max_failures_per_user", "attempts")?,
                max_failures_per_ip: positive("auth.max_failures_per_ip", "attempts")?,
                failure_window_secs: positive("auth.failure_window_minutes", "minutes")? * 60,
            },
        })
    }

    /// The settings table for `--help`.
    pub fn help_text() -> String {
        let mut out = String::from("Settings (TOML key / environment variable, default):\n");
        for (k, var, d, help) in SETTINGS {
            out.push_str(&format!("  {k:<30} {var}\n      {help} [default: {d}]\n"));
        }
        out.push_str(&format!("\nA TOML file is read from --config or {CONFIG_FILE_ENV}; environment variables override it.\n"));
        out
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => out.push((key, s.clone())),
            toml::Value::Integer(i) => out.push((key, i.to_string())),
            toml::Value::Float(f) => out.push((key, f.to_string())),
            toml::Value::Boolean(b) => out.push((key, b.to_string())),
            toml::Value::Datetime(d) => out.push((key, d.to_string())),
            toml::Value::Array(_) => out.push((key, "[array]".to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_listen_on_loopback_3000_with_sqlite() {
        let c = Config::load_from(None, &env(&[])).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert!(c.database_url.starts_with("sqlite:"));
        assert_eq!(c.session.idle_timeout_secs, 3600);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:4000\"\n[session]\nidle_minutes = 5\n")
            .expect("write");
        let c = Config::load_from(Some(&path), &env(&[])).expect("valid");
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.session.idle_timeout_secs, 300);
        let c = Config::load_from(Some(&path), &env(&[("SWITCHYARD_LISTEN", "127.0.0.1:5000")]))
            .expect("valid");
        assert_eq!(c.listen.port(), 5000);
    }

    #[test]
    fn a_bad_value_names_the_key_the_value_and_its_source() {
        let err = Config::load_from(None, &env(&[("SWITCHYARD_LISTEN", "nowhere")]))
            .expect_err("invalid");
        let msg = err.to_string();
        assert!(msg.contains("listen = 'nowhere'"), "{msg}");
        assert!(msg.contains("SWITCHYARD_LISTEN"), "{msg}");
        assert!(msg.contains("IP:PORT"), "{msg}");
        let err = Config::load_from(None, &env(&[("SWITCHYARD_SESSION_IDLE_MINUTES", "0")]))
            .expect_err("invalid");
        assert!(err.to_string().contains("session.idle_minutes"));
    }

    #[test]
    fn the_smtp_password_never_shows_in_debug_output() {
        let c = Config::load_from(
            None,
            &env(&[
                ("SWITCHYARD_SMTP_HOST", "mail.example.com"),
                ("SWITCHYARD_SMTP_PASSWORD", "hunter2-very-secret"),
                ("SWITCHYARD_SMTP_TLS", "tls"),
            ]),
        )
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(c.notify.smtp.map(|s| s.tls), Some(SmtpTls::Tls));
        let err = Config::load_from(
            None,
            &env(&[("SWITCHYARD_SMTP_HOST", "h"), ("SWITCHYARD_SMTP_TLS", "ssl")]),
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("starttls, tls or none"));
        let err = Config::load_from(
            None,
            &env(&[
                ("SWITCHYARD_SMTP_HOST", "h"),
                ("SWITCHYARD_SMTP_CA_FILE", "/nonexistent/ca.pem"),
            ]),
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("smtp.ca_file"), "{err}");
    }

    #[test]
    fn security_settings_parse_and_name_their_key_when_bad() {
        let c = Config::load_from(
            None,
            &env(&[
                ("SWITCHYARD_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
                ("SWITCHYARD_WEBHOOK_ALLOW_HOSTS", "hooks.internal,192.168.0.0/16"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.security.trusted_proxies.len(), 2);
        assert_eq!(c.notify.webhooks.allow_hosts.len(), 2);
        assert_eq!(c.security.max_body_bytes, 1 << 20);
        for (var, key) in [
            ("SWITCHYARD_TRUSTED_PROXIES", "trusted_proxies"),
            ("SWITCHYARD_WEBHOOK_ALLOW_HOSTS", "webhooks.allow_hosts"),
            ("SWITCHYARD_MAX_BODY_BYTES", "http.max_body_bytes"),
            ("SWITCHYARD_OUTBOUND_CA_FILE", "outbound.ca_file"),
        ] {
            let err = Config::load_from(None, &env(&[(var, "not valid/99 x")])).expect_err(var);
            assert!(err.to_string().contains(key), "{err}");
        }
        let err = Config::load_from(None, &env(&[("SWITCHYARD_TRUST_FORWARDED_FOR", "true")]))
            .expect_err("gone");
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "lsiten = \"x\"\n").expect("write");
        let err = Config::load_from(Some(&path), &env(&[])).expect_err("unknown key");
        assert!(err.to_string().contains("unknown key 'lsiten'"));
    }
}
