//! The command line's REST client: `apply`, `plan`, `campaign start|abort` and `backends check`
//! talk to a running server with an API token, exactly as CI pipelines would.

use std::path::Path;

use anyhow::{Context as _, bail};
use app::domain::plan::Plan;
use serde_json::Value;

use crate::services::backends::{BackendReport, CheckReport};

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A PEM file of extra CA certificates for the server's HTTPS certificate (as the server's
/// own `outbound.ca_file`).
pub const CA_FILE_ENV: &str = "SWITCHYARD_OUTBOUND_CA_FILE";
/// Set to send the token over plain http to a host that is not this machine anyway.
pub const INSECURE_HTTP_ENV: &str = "SWITCHYARD_INSECURE_HTTP";

/// The token is a password: it goes over https, or over http only to this machine.
fn check_transport(base: &str, insecure_ok: bool) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(base).with_context(|| {
        format!("SWITCHYARD_URL {base:?} is not a URL, e.g. https://switchyard.example.com")
    })?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback || insecure_ok => Ok(()),
        "http" => bail!(
            "refusing to send the API token in clear text to {base}: use https:// (set {INSECURE_HTTP_ENV}=1 to send it anyway)"
        ),
        other => bail!("SWITCHYARD_URL: {other}:// is not http(s)"),
    }
}

/// Reads a campaign spec or an environment from TOML (`.toml`) or YAML (`.yaml`, `.yml`).
pub fn read_spec_file(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "toml" => toml::from_str::<Value>(&text)
            .with_context(|| format!("{} is not valid TOML", path.display())),
        "yaml" | "yml" => serde_yaml::from_str::<Value>(&text)
            .with_context(|| format!("{} is not valid YAML", path.display())),
        "json" => serde_json::from_str::<Value>(&text)
            .with_context(|| format!("{} is not valid JSON", path.display())),
        _ => bail!("{}: use a .toml, .yaml or .json file", path.display()),
    }
}

/// An environment has pools; everything else is a campaign spec.
pub fn is_environment(v: &Value) -> bool {
    v.get("pools").is_some() && v.get("strategy").is_none()
}

impl Client {
    pub fn new(base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .context("no API token: pass --token or set SWITCHYARD_TOKEN (create one with `switchyard token create NAME`)")?;
        let base = base.trim_end_matches('/').to_string();
        check_transport(&base, std::env::var_os(INSECURE_HTTP_ENV).is_some())?;
        if let Some(ca) = std::env::var_os(CA_FILE_ENV).filter(|v| !v.is_empty()) {
            crate::outbound::trust_ca_file(Path::new(&ca))
                .map_err(|why| anyhow::anyhow!("{CA_FILE_ENV}: {why}"))?;
        }
        let http = crate::outbound::client(std::time::Duration::from_secs(120))
            .map_err(anyhow::Error::msg)?;
        Ok(Self { base, token: token.trim().to_string(), http })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach Switchyard at {}: {}",
                self.base,
                crate::adapters::root_cause(&e.without_url())
            )
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let err = &value["error"];
        let mut msg =
            format!("{} ({})", err["message"].as_str().unwrap_or(text.as_str()), status.as_u16());
        if let Some(fields) = err["fields"].as_object() {
            for (field, m) in fields {
                msg.push_str(&format!("\n  {field}: {}", m.as_str().unwrap_or_default()));
            }
        }
        bail!(msg)
    }

    /// Creates the draft or environment, or updates the one with the same name.
    pub async fn apply(&self, spec: &Value) -> anyhow::Result<String> {
        let name = spec["name"].as_str().context("the file has no `name`")?.to_string();
        if is_environment(spec) {
            let list = self.call(reqwest::Method::GET, "/api/v1/environments", None).await?;
            let existing = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == name.as_str())
                .and_then(|e| e["id"].as_i64());
            return Ok(match existing {
                Some(id) => {
                    self.call(
                        reqwest::Method::PUT,
                        &format!("/api/v1/environments/{id}"),
                        Some(spec),
                    )
                    .await?;
                    format!("updated environment #{id} '{name}'")
                }
                None => {
                    let e = self
                        .call(reqwest::Method::POST, "/api/v1/environments", Some(spec))
                        .await?;
                    format!("created environment #{} '{name}'", e["id"])
                }
            });
        }
        let path = format!(
            "/api/v1/campaigns?status=draft&per_page=200&q={}",
            app::domain::audit::encode_component(&name)
        );
        let list = self.call(reqwest::Method::GET, &path, None).await?;
        let existing = list["campaigns"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name.as_str())
            .and_then(|c| c["id"].as_i64());
        let (verb, detail) = match existing {
            Some(id) => (
                "updated",
                self.call(reqwest::Method::PUT, &format!("/api/v1/campaigns/{id}"), Some(spec))
                    .await?,
            ),
            None => (
                "created",
                self.call(reqwest::Method::POST, "/api/v1/campaigns", Some(spec)).await?,
            ),
        };
        let steps = detail["plan"]["steps"].as_array().map(Vec::len).unwrap_or(0);
        Ok(format!("{verb} draft campaign #{} '{name}' ({steps} steps)", detail["summary"]["id"]))
    }

    pub async fn plan(&self, spec: &Value) -> anyhow::Result<Plan> {
        let v = self.call(reqwest::Method::POST, "/api/v1/plan", Some(spec)).await?;
        serde_json::from_value(v).context("the server's plan could not be read")
    }

    pub async fn command(
        &self,
        id: i64,
        command: &str,
        reason: Option<&str>,
    ) -> anyhow::Result<Value> {
        let body = reason.map(|r| serde_json::json!({ "reason": r }));
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/campaigns/{id}/{command}"),
            body.as_ref(),
        )
        .await
    }
}

impl Client {
    /// A gate (`None`: the campaign's own) replayed against campaign `id`'s stored samples.
    pub async fn replay_gate(&self, id: i64, gate: Option<&Value>) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, &format!("/api/v1/campaigns/{id}/gate-replay"), gate).await
    }

    /// What every environment's backends answer, checked by the server.
    pub async fn check_backends(&self) -> anyhow::Result<CheckReport> {
        let v = self.call(reqwest::Method::GET, "/api/v1/backends/check", None).await?;
        serde_json::from_value(v).context("the server's backend report could not be read")
    }
}

/// The backend checks as a table, one row per backend, then a count.
pub fn render_backend_checks(reports: &[BackendReport]) -> String {
    let header = ["ENVIRONMENT", "BACKEND", "KIND", "DRIVER", "STATUS", "VERSION", "DETAIL"];
    let rows: Vec<[String; 7]> = reports
        .iter()
        .map(|r| {
            let status = if !r.checked {
                "not checked"
            } else if r.reachable {
                "ok"
            } else {
                "UNREACHABLE"
            };
            let mut detail = r.error.clone().or_else(|| r.detail.clone()).unwrap_or_default();
            if r.reachable && !r.capabilities.is_empty() {
                detail = format!("[{}] {detail}", r.capabilities.join(", "));
            }
            [
                r.environment.clone(),
                r.name.clone(),
                r.kind.label().to_string(),
                r.driver.clone(),
                status.to_string(),
                r.version.clone().unwrap_or_else(|| "-".into()),
                detail,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(String::from));
    for row in &rows {
        out.push_str(&line(row));
    }
    let count = |f: fn(&BackendReport) -> bool| reports.iter().filter(|r| f(r)).count();
    out.push_str(&format!(
        "{} reachable, {} unreachable, {} not checked\n",
        count(|r| r.reachable),
        count(BackendReport::unreachable),
        count(|r| !r.checked)
    ));
    out
}

/// The plan as text: a headline, then one numbered line per step with its calls.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!("{}\n", plan.summary.headline);
    for note in &plan.summary.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    for step in &plan.steps {
        out.push_str(&format!(
            "{:>3}. [{}] {}\n",
            step.index + 1,
            step.kind.label(),
            step.description
        ));
        for call in &step.calls {
            out.push_str(&format!("       {call}\n"));
        }
    }
    out
}

/// A gate replay as text: the summary, then each gate step's changes of outcome.
pub fn render_replay(r: &Value) -> String {
    let mut out = format!("{}\n", r["summary"].as_str().unwrap_or_default());
    for s in r["steps"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\nstep {}: {} ({} samples of {})\n",
            s["step"].as_u64().unwrap_or(0) + 1,
            s["description"].as_str().unwrap_or_default(),
            s["samples"],
            s["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        ));
        let opened =
            s["opened"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        for p in s["points"].as_array().into_iter().flatten() {
            let at = p["at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let after = match (at, opened) {
                (Some(a), Some(o)) => {
                    format!("+{:.0}s", (a - o).num_milliseconds() as f64 / 1000.0)
                }
                _ => "?".into(),
            };
            out.push_str(&format!(
                "  {after:>6}  {:<4}  {}\n",
                p["verdict"]["outcome"].as_str().unwrap_or_default(),
                p["verdict"]["reason"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::check_transport;

    #[test]
    fn the_token_goes_in_clear_text_only_to_this_machine() {
        assert!(check_transport("https://switchyard.example.com", false).is_ok());
        assert!(check_transport("http://127.0.0.1:3000", false).is_ok());
        assert!(check_transport("http://[::1]:3000", false).is_ok());
        assert!(check_transport("http://localhost:3000", false).is_ok());
        let err = check_transport("http://switchyard.example.com", false).expect_err("clear text");
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(check_transport("http://switchyard.example.com", true).is_ok());
        assert!(check_transport("ftp://x", true).is_err());
    }
}
