//! The zero-downtime proof: campaigns driven through a running Switchyard's API against a
//! real router (HAProxy, nginx or the embedded proxy) and real demo-service processes, under a
//! bounded keep-alive load, counting every failed user request. The integration test runs
//! each scenario once; `cargo bench -p server --bench zero_downtime` runs them repeatedly and
//! writes BENCHMARKS.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{HaproxyProcess, Load, NginxProcess, Outcome, Tally, free_port_block, tally};
use crate::adapters::registry::Registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouterKind {
    Haproxy,
    Nginx,
    Embedded,
}

impl RouterKind {
    pub const ALL: [RouterKind; 3] = [RouterKind::Haproxy, RouterKind::Nginx, RouterKind::Embedded];

    pub fn label(self) -> &'static str {
        match self {
            RouterKind::Haproxy => "HAProxy 2.6",
            RouterKind::Nginx => "nginx 1.22",
            RouterKind::Embedded => "embedded",
        }
    }
}

/// A Switchyard to talk to: its URL and an admin's API token.
#[derive(Clone)]
pub struct Api {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(url: String, token: String) -> Self {
        Self { url, token, http: reqwest::Client::new() }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req =
            self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.with_context(|| format!("{path}: no answer"))?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }

    pub async fn campaign(&self, id: i64) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, &format!("/api/v1/campaigns/{id}"), None).await
    }

    /// Waits for one of `want`; a pause is an error carrying the campaign's message.
    pub async fn wait_status(
        &self,
        id: i64,
        want: &[&str],
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let d = self.campaign(id).await?;
            let status = d["summary"]["status"].as_str().unwrap_or_default().to_string();
            if want.contains(&status.as_str()) {
                return Ok(d);
            }
            if status == "paused" {
                bail!("campaign {id} paused: {}", d["summary"]["last_error"]);
            }
            if Instant::now() > deadline {
                bail!("campaign {id} is {status}, not {want:?}, after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Aborts campaign `id` with `reason` (the rollback starts).
    pub async fn abort(&self, id: i64, reason: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/campaigns/{id}/abort"),
            Some(json!({ "reason": reason })),
        )
        .await
    }

    /// Waits until the router of campaign `id` reads back a member on `release`.
    pub async fn wait_traffic_on(
        &self,
        id: i64,
        release: &str,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let needle = format!("\"{release}\"");
        loop {
            let t = self
                .call(reqwest::Method::GET, &format!("/api/v1/campaigns/{id}/traffic"), None)
                .await?;
            if t.to_string().contains(&needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("campaign {id}: no {release} member after {limit:?}: {t}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn create_and_start(&self, spec: Value) -> anyhow::Result<i64> {
        let id = self.call(reqwest::Method::POST, "/api/v1/campaigns", Some(spec)).await?["summary"]["id"]
            .as_i64()
            .context("no campaign id")?;
        self.call(reqwest::Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await?;
        Ok(id)
    }
}

/// One environment: a router in front of four demo-service v1 instances.
pub struct Bed {
    pub kind: RouterKind,
    pub name: String,
    pub frontend: SocketAddr,
    pub env: Value,
    pub haproxy: Option<HaproxyProcess>,
    pub nginx: Option<NginxProcess>,
}

static BEDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Bed {
    /// Starts the router, creates the environment through the API and brings it up (four v1
    /// instances, even shares). Gates read the router's own traffic figures where it has them.
    pub async fn start(
        kind: RouterKind,
        dir: &Path,
        exe: &Path,
        api: &Api,
        registry: &Registry,
    ) -> anyhow::Result<Self> {
        Self::start_with(kind, dir, exe, api, registry, false).await
    }

    /// Like [`Bed::start`]; with `probes_only`, gates use HTTP probes alone (so a test can take
    /// the router's control API away without blinding the gates).
    pub async fn start_with(
        kind: RouterKind,
        dir: &Path,
        exe: &Path,
        api: &Api,
        registry: &Registry,
        probes_only: bool,
    ) -> anyhow::Result<Self> {
        let n = BEDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!(
            "zd{}{n}",
            match kind {
                RouterKind::Haproxy => "haproxy",
                RouterKind::Nginx => "nginx",
                RouterKind::Embedded => "embedded",
            }
        );
        let dir: PathBuf = dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let base = free_port_block(80)?;
        let frontend: SocketAddr = format!("127.0.0.1:{base}").parse()?;
        let frontends = BTreeMap::from([("web".to_string(), frontend)]);
        let (mut haproxy, mut nginx) = (None, None);
        let (driver, settings) = match kind {
            RouterKind::Haproxy => {
                let h = HaproxyProcess::start(&dir, &frontends)?;
                let s = h.settings();
                haproxy = Some(h);
                ("haproxy", s)
            }
            RouterKind::Nginx => {
                let ng = NginxProcess::start(&dir, &frontends)?;
                let s = ng.settings();
                nginx = Some(ng);
                ("nginx", s)
            }
            RouterKind::Embedded => {
                ("embedded", json!({ "listen": { "web": frontend.to_string() } }))
            }
        };
        // Gates read the router's real traffic: HAProxy's counters, the embedded router's log;
        // nginx (open source) reports no per-server figures, so only probes there.
        let health = match kind {
            RouterKind::Haproxy if !probes_only => {
                json!({ "name": format!("probe-{name}"), "kind": "health_source",
                "driver": "haproxy-stats", "settings": settings.clone() })
            }
            _ => {
                json!({ "name": format!("probe-{name}"), "kind": "health_source", "driver": "http-probe",
                "settings": { "router": format!("edge-{name}") } })
            }
        };
        let targets: Vec<Value> = (1..=4_u16)
            .map(|i| {
                let port = base + i;
                json!({ "name": format!("web-{i}"), "address": format!("127.0.0.1:{port}"),
                        "group": if i % 2 == 1 { "zone-a" } else { "zone-b" }, "release": "v1",
                        "health_url": format!("http://127.0.0.1:{port}/healthz") })
            })
            .collect();
        let ports: serde_json::Map<String, Value> =
            (1..=4_u16).map(|i| (format!("web-{i}"), json!(base + i))).collect();
        let command =
            format!("{} demo-service --release {{release}} --port {{port}}", exe.display());
        let env = json!({
            "name": name,
            "targets": targets,
            "pools": [{ "name": "web", "router": format!("edge-{name}"), "targets": ["web-1", "web-2", "web-3", "web-4"] }],
            "backends": [
                { "name": format!("edge-{name}"), "kind": "router", "driver": driver, "settings": settings },
                { "name": format!("local-{name}"), "kind": "provider", "driver": "local-process",
                  "settings": { "command": command, "ports": ports, "port_min": base + 10, "port_max": base + 79,
                                "state_file": dir.join("processes.json") } },
                health,
            ],
        });
        api.call(reqwest::Method::POST, "/api/v1/environments", Some(env.clone())).await?;
        let environment: app::domain::environment::Environment =
            serde_json::from_value(env.clone())?;
        crate::demo::bring_up(registry, &environment).await?;
        Ok(Self { kind, name, frontend, env, haproxy, nginx })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.frontend)
    }

    /// A campaign on this bed, v1 → v2, with short bakes and a gate on the new release.
    pub fn spec(&self, name: &str, strategy: Value, bake_hold: u64) -> Value {
        let now = chrono::Utc::now();
        json!({
            "name": name, "service": "web", "environment": self.name, "pool": "web",
            "from_release": "v1", "to_release": "v2",
            "strategy": strategy,
            "gates": [{ "max_error_rate": 0.05, "max_p99_ms": 2000, "min_probe_success": 0.9, "window_secs": 4,
                        "min_samples": 2, "deadline_secs": 30, "consecutive_failures": 2 }],
            "window": { "start": now.to_rfc3339(), "end": (now + chrono::Duration::hours(1)).to_rfc3339(), "timezone": "UTC" },
            "rollback": { "mode": "automatic", "hold_secs": bake_hold },
            "approvals": { "required": 1, "role": "approver" },
        })
    }
}

pub fn canary(steps: &[(u32, u64)]) -> Value {
    let steps: Vec<Value> =
        steps.iter().map(|(w, b)| json!({ "weight": w, "bake_secs": b })).collect();
    json!({ "kind": "canary", "canary_count": 1, "steps": steps })
}

pub fn blue_green() -> Value {
    json!({ "kind": "blue_green", "switch": "at_once", "bake_secs": 2, "verify_preview": false })
}

pub fn rolling() -> Value {
    json!({ "kind": "rolling", "batch": { "count": 2 }, "max_unavailable": 2, "min_healthy": 2,
            "drain_timeout_secs": 10, "bake_secs": 1 })
}

/// The load every scenario runs under: 200 requests a second from 8 keep-alive clients.
pub const RPS: u32 = 200;
pub const CLIENTS: u32 = 8;

fn load(bed: &Bed) -> Load {
    Load::start(bed.url(), RPS, CLIENTS, Duration::from_secs(300))
}

/// Every answer after the campaign: from `release`?
async fn all_from(bed: &Bed, release: &str, n: usize) -> anyhow::Result<bool> {
    let http = reqwest::Client::new();
    for _ in 0..n {
        let res = http.get(bed.url()).send().await?;
        let r =
            res.headers().get("x-release").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
        if res.status() != 200 || r != release {
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub tally: Tally,
    pub secs: f64,
    /// Every one of 50 requests after the campaign was answered 200 by the expected release.
    pub after_ok: bool,
    /// The campaign's impact report as the API serves it (`/campaigns/{id}/impact`).
    pub report: Value,
}

/// A whole campaign v1 → v2 under load.
pub async fn full_campaign(
    api: &Api,
    bed: &Bed,
    label: &str,
    strategy: Value,
) -> anyhow::Result<RunResult> {
    let load = load(bed);
    let started = Instant::now();
    let id = api.create_and_start(bed.spec(label, strategy, 1)).await?;
    api.wait_status(id, &["succeeded"], Duration::from_secs(180)).await?;
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcomes = load.finish().await;
    let report =
        api.call(reqwest::Method::GET, &format!("/api/v1/campaigns/{id}/impact"), None).await?;
    Ok(RunResult {
        tally: tally(&outcomes),
        secs,
        after_ok: all_from(bed, "v2", 50).await?,
        report,
    })
}

#[derive(Debug, Clone)]
pub struct AbortResult {
    pub tally: Tally,
    /// The engine's measure: abort pressed → all traffic on the stable release, read back.
    pub rollback_secs: f64,
    pub after_ok: bool,
}

/// A canary started, aborted once v2 really answers users (at 25 %), rolled back.
pub async fn canary_abort(api: &Api, bed: &Bed, label: &str) -> anyhow::Result<AbortResult> {
    let load = load(bed);
    let id = api.create_and_start(bed.spec(label, canary(&[(25, 60), (100, 1)]), 1)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !load.snapshot().iter().any(|o| o.release == "v2") {
        if Instant::now() > deadline {
            bail!("v2 never answered a user");
        }
        let d = api.campaign(id).await?;
        if d["summary"]["status"] == "paused" {
            bail!("paused: {}", d["summary"]["last_error"]);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.abort(id, "benchmark: abort at 25 %").await?;
    let done = api.wait_status(id, &["rolled_back"], Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcomes = load.finish().await;
    Ok(AbortResult {
        tally: tally(&outcomes),
        rollback_secs: done["summary"]["rollback_secs"].as_f64().context("no rollback time")?,
        after_ok: all_from(bed, "v1", 50).await?,
    })
}

#[derive(Debug, Clone)]
pub struct GateTripResult {
    /// From v2 starting to fail to its last answer to a user.
    pub secs_to_zero: f64,
    /// From v2 starting to fail to the campaign saying it rolls back (the gate's verdict),
    /// polled every 50 ms.
    pub secs_to_verdict: f64,
    /// Why the campaign rolled back, as it says.
    pub abort_reason: String,
    /// User requests that failed meanwhile.
    pub failed: usize,
    pub sent: usize,
    pub after_ok: bool,
}

/// A canary whose v2 starts failing every request at 25 %, `into_bake` after it first
/// answered a user, during a bake of `bake_secs`: the gates (watching continuously) trip and
/// traffic leaves v2. With `into_bake` past the gate's window the window already holds healthy
/// samples of the stage (the failure is mid-bake); with zero the stage has just begun, and the
/// gate first needs its `min_samples` of the stage.
pub async fn gate_trip(
    api: &Api,
    bed: &Bed,
    label: &str,
    registry: &Registry,
    bake_secs: u64,
    into_bake: Duration,
) -> anyhow::Result<GateTripResult> {
    let load = load(bed);
    let id = api.create_and_start(bed.spec(label, canary(&[(25, bake_secs), (100, 1)]), 1)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !load.snapshot().iter().any(|o| o.release == "v2") {
        if Instant::now() > deadline {
            bail!("v2 never answered a user");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(into_bake).await;
    // Tell every v2 instance (the pool's members that are not the original four) to fail.
    let environment: app::domain::environment::Environment =
        serde_json::from_value(bed.env.clone())?;
    let router = {
        use crate::adapters::registry::AdapterFactory as _;
        let pool = environment.pools.first().context("no pool")?;
        let cfg = environment.backend(&pool.router).context("no router")?;
        registry.router(cfg).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let originals: Vec<String> = environment.targets.iter().map(|t| t.name.to_string()).collect();
    let failing_from = load.elapsed();
    let http = reqwest::Client::new();
    let members = router.read_pool("web").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let canaries: Vec<_> = members.iter().filter(|m| !originals.contains(&m.target)).collect();
    if canaries.is_empty() {
        bail!("no canary in the pool: {members:?}");
    }
    for m in canaries {
        http.post(format!("http://{}/admin/behaviour?fail_rate=1", m.address)).send().await?;
    }
    api.wait_status(id, &["aborting", "rolled_back"], Duration::from_secs(90)).await?;
    let secs_to_verdict = (load.elapsed() - failing_from).as_secs_f64();
    let done = api.wait_status(id, &["rolled_back"], Duration::from_secs(90)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcomes = load.finish().await;
    let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.at >= failing_from).collect();
    let abort_reason = done["summary"]["abort_reason"].as_str().unwrap_or_default().to_string();
    let last_v2 =
        after.iter().filter(|o| o.release == "v2").map(|o| o.at).max().unwrap_or(failing_from);
    Ok(GateTripResult {
        secs_to_zero: (last_v2 - failing_from).as_secs_f64(),
        secs_to_verdict,
        abort_reason,
        failed: after.iter().filter(|o| !o.ok()).count(),
        sent: after.len(),
        after_ok: all_from(bed, "v1", 50).await?,
    })
}

/// The baseline: no router change at all; each instance is stopped (SIGKILL, as the provider
/// does) and v2 started on its port, one after another or all four at once.
pub async fn in_place_restart(
    bed: &Bed,
    registry: &Registry,
    all_at_once: bool,
) -> anyhow::Result<RunResult> {
    let environment: app::domain::environment::Environment =
        serde_json::from_value(bed.env.clone())?;
    let provider = {
        use crate::adapters::registry::AdapterFactory as _;
        let cfg = environment
            .first_backend(app::domain::environment::BackendKind::Provider)
            .context("no provider")?;
        registry.provider(cfg).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let load = load(bed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    if all_at_once {
        let restarts = (1..=4).map(|i| {
            let provider = provider.clone();
            async move { provider.replace(&format!("web-{i}"), "v2").await }
        });
        for r in futures_util::future::join_all(restarts).await {
            r.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    } else {
        for i in 1..=4 {
            provider
                .replace(&format!("web-{i}"), "v2")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcomes = load.finish().await;
    Ok(RunResult {
        tally: tally(&outcomes),
        secs,
        after_ok: all_from(bed, "v2", 50).await?,
        report: Value::Null,
    })
}

/// One campaign of a [`chain`]: what it was, how it ended, what users saw meanwhile.
#[derive(Debug, Clone)]
pub struct ChainStep {
    pub label: String,
    pub id: i64,
    pub status: String,
    pub tally: Tally,
    /// Every one of 50 requests afterwards was answered 200 by the expected release.
    pub after_ok: bool,
    /// Every way the environment record differs from the router and provider afterwards.
    pub differences: Vec<String>,
}

/// The pool's record beside the live state, through the API: every difference's message.
pub async fn record_differences(api: &Api, bed: &Bed) -> anyhow::Result<Vec<String>> {
    let envs = api.call(reqwest::Method::GET, "/api/v1/environments", None).await?;
    let id = envs
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == bed.name.as_str()))
        .and_then(|e| e["id"].as_i64())
        .context("the bed's environment")?;
    let pool = api
        .call(reqwest::Method::GET, &format!("/api/v1/environments/{id}/pools/web"), None)
        .await?;
    Ok(pool["differences"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["message"].as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

/// Campaign after campaign on one environment under one bounded load, as a new user would run
/// them: a canary v1 → v2; its "roll back this release" draft, v2 → v1; v1 → v2 again, aborted
/// once the router sends v2 half the traffic; a rolling v1 → v2. After each: the answers, and
/// the record against the router and provider.
pub async fn chain(api: &Api, bed: &Bed) -> anyhow::Result<Vec<ChainStep>> {
    let load = Load::start(bed.url(), 100, 4, Duration::from_secs(900));
    let mut ends: Vec<(String, i64, String, Duration, bool, Vec<String>)> = Vec::new();
    let done = |d: &Value| d["summary"]["status"].as_str().unwrap_or_default().to_string();

    let up = api.create_and_start(bed.spec("chain-up", canary(&[(25, 2), (100, 1)]), 1)).await?;
    let d = api.wait_status(up, &["succeeded"], Duration::from_secs(180)).await?;
    ends.push((
        "canary v1 → v2".into(),
        up,
        done(&d),
        load.elapsed(),
        all_from(bed, "v2", 50).await?,
        record_differences(api, bed).await?,
    ));

    let draft = api
        .call(reqwest::Method::POST, &format!("/api/v1/campaigns/{up}/rollback-release"), None)
        .await?;
    let down = draft["summary"]["id"].as_i64().context("the rollback draft's id")?;
    api.call(reqwest::Method::POST, &format!("/api/v1/campaigns/{down}/start"), None).await?;
    let d = api.wait_status(down, &["succeeded"], Duration::from_secs(180)).await?;
    ends.push((
        "downgrade v2 → v1 (roll back this release)".into(),
        down,
        done(&d),
        load.elapsed(),
        all_from(bed, "v1", 50).await?,
        record_differences(api, bed).await?,
    ));

    let again =
        api.create_and_start(bed.spec("chain-again", canary(&[(50, 120), (100, 1)]), 1)).await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let t = api
            .call(reqwest::Method::GET, &format!("/api/v1/campaigns/{again}/traffic"), None)
            .await?;
        let v2 = t["share_by_release"]
            .as_array()
            .and_then(|s| s.iter().find(|p| p[0] == "v2"))
            .and_then(|p| p[1].as_f64())
            .unwrap_or(0.0);
        if (v2 - 50.0).abs() < 1.0
            && load.snapshot().iter().rev().take(20).any(|o| o.release == "v2")
        {
            // Users meet the canary at 50 % for a while before the abort.
            tokio::time::sleep(Duration::from_secs(2)).await;
            break;
        }
        if Instant::now() > deadline {
            bail!("v2 never reached 50 % (traffic {t})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.abort(again, "chain: abort at 50 %").await?;
    let d = api.wait_status(again, &["rolled_back"], Duration::from_secs(90)).await?;
    ends.push((
        "v1 → v2 again, aborted at 50 %".into(),
        again,
        done(&d),
        load.elapsed(),
        all_from(bed, "v1", 50).await?,
        record_differences(api, bed).await?,
    ));

    let rolling_id = api.create_and_start(bed.spec("chain-rolling", rolling(), 1)).await?;
    let d = api.wait_status(rolling_id, &["succeeded"], Duration::from_secs(180)).await?;
    ends.push((
        "rolling v1 → v2".into(),
        rolling_id,
        done(&d),
        load.elapsed(),
        all_from(bed, "v2", 50).await?,
        record_differences(api, bed).await?,
    ));

    let outcomes = load.finish().await;
    let mut from = Duration::ZERO;
    Ok(ends
        .into_iter()
        .map(|(label, id, status, until, after_ok, differences)| {
            let part: Vec<Outcome> =
                outcomes.iter().filter(|o| o.at >= from && o.at < until).cloned().collect();
            from = until;
            ChainStep { label, id, status, tally: tally(&part), after_ok, differences }
        })
        .collect())
}
