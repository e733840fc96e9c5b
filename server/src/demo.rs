//! The one-minute demo: an environment that needs nothing installed. Four instances of the
//! demo service on v1 (local processes) behind the embedded router, a health probe that also
//! counts the router's real traffic, a small traffic generator so the numbers move, and a
//! ready canary campaign to v2. Seeded at `serve` when `demo = true` (the RUN command).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use app::domain::environment::{BackendKind, Environment};
use app::domain::ids::Weight;
use serde_json::json;

use crate::adapters::registry::{AdapterFactory as _, Registry};
use crate::audit::system_record;
use crate::store::{DraftFields, Store};

pub const ENVIRONMENT: &str = "demo";
pub const POOL: &str = "web";

#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where the embedded router takes the demo's user traffic.
    pub router_listen: SocketAddr,
    /// The four v1 instances use this port and the next three; new instances get ports above.
    pub first_port: u16,
    /// Requests per second from the built-in traffic generator (0: none).
    pub traffic_rps: u32,
    /// The program whose `demo-service` command runs the instances (default: this one).
    pub exe: Option<std::path::PathBuf>,
}

pub fn environment(cfg: &DemoConfig) -> anyhow::Result<Environment> {
    let p = cfg.first_port;
    let targets: Vec<_> = (0..4_u16)
        .map(|i| {
            let port = p + i;
            json!({ "name": format!("web-{}", i + 1), "address": format!("127.0.0.1:{port}"), "group": if i % 2 == 0 { "zone-a" } else { "zone-b" },
                    "release": "v1", "health_url": format!("http://127.0.0.1:{port}/healthz") })
        })
        .collect();
    let ports: serde_json::Map<String, serde_json::Value> =
        (0..4_u16).map(|i| (format!("web-{}", i + 1), json!(p + i))).collect();
    let exe = cfg.exe.as_ref().map(|e| e.display().to_string()).unwrap_or_else(|| "{exe}".into());
    // Words, not a line: a path with spaces stays one argument (commands run without a shell).
    let command = json!([exe, "demo-service", "--release", "{release}", "--port", "{port}"]);
    Ok(serde_json::from_value(json!({
        "name": ENVIRONMENT,
        "targets": targets,
        "pools": [{ "name": POOL, "router": "edge", "targets": ["web-1", "web-2", "web-3", "web-4"] }],
        "backends": [
            { "name": "edge", "kind": "router", "driver": "embedded",
              "settings": { "listen": { POOL: cfg.router_listen.to_string() }, "state_file": "demo-router.json" } },
            { "name": "local", "kind": "provider", "driver": "local-process",
              "settings": { "command": command, "ports": ports, "port_min": p + 10, "port_max": p + 60, "state_file": "demo-processes.json" } },
            { "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": { "router": "edge" } },
            // Notices go out through the server's SMTP settings and signed webhooks.
            { "name": "mail", "kind": "channel", "driver": "email" },
        ],
    }))?)
}

fn canary_spec() -> serde_json::Value {
    let now = chrono::Utc::now();
    json!({
        "name": "demo-canary", "service": "web", "environment": ENVIRONMENT, "pool": POOL,
        "from_release": "v1", "to_release": "v2",
        "strategy": { "kind": "canary", "canary_count": 1, "steps": [
            { "weight": 10, "bake_secs": 15 }, { "weight": 50, "bake_secs": 15 }, { "weight": 100, "bake_secs": 10 } ] },
        "gates": [{ "max_error_rate": 0.05, "max_p99_ms": 500, "min_probe_success": 0.9, "window_secs": 10,
                    "min_samples": 3, "deadline_secs": 60, "consecutive_failures": 2 }],
        "window": { "start": now.to_rfc3339(), "end": (now + chrono::Duration::hours(2)).to_rfc3339(), "timezone": "UTC" },
        "rollback": { "mode": "automatic", "hold_secs": 10 },
        "approvals": { "required": 1, "role": "approver" },
    })
}

/// Creates what is missing: the environment, the v1 instances, the router pool, the draft.
pub async fn seed(store: &Store, registry: &Registry, cfg: &DemoConfig) -> anyhow::Result<()> {
    let env = match store.find_environment_by_name(ENVIRONMENT).await? {
        Some(row) => serde_json::from_str::<Environment>(&row.spec)
            .context("the stored demo environment is unreadable")?,
        None => {
            let env = environment(cfg)?;
            store
                .create_environment(
                    ENVIRONMENT,
                    &serde_json::to_string(&env)?,
                    system_record(
                        "environment.create",
                        format!("environment:{ENVIRONMENT}"),
                        json!({ "demo": true }),
                    ),
                )
                .await?;
            env
        }
    };
    bring_up(registry, &env).await?;
    let edge =
        env.backend(&app::domain::ids::Name::parse("edge")?).context("demo router missing")?;
    let router = registry.embedded(edge).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, total) = store.list_campaigns(&Default::default(), 1, 0).await?;
    if total == 0 {
        let spec = canary_spec();
        store
            .create_campaign(
                DraftFields {
                    name: "demo-canary",
                    environment: ENVIRONMENT,
                    pool: POOL,
                    strategy: "canary",
                    spec: &spec.to_string(),
                },
                "demo",
                system_record(
                    "campaign.create",
                    "campaign:new",
                    json!({ "name": "demo-canary", "demo": true }),
                ),
            )
            .await?;
    }
    if cfg.traffic_rps > 0 {
        let addresses = router.addresses.clone();
        let rps = cfg.traffic_rps;
        tokio::spawn(generate_traffic(
            addresses.get(POOL).copied().unwrap_or(cfg.router_listen),
            rps,
        ));
    }
    tracing::info!(router = %cfg.router_listen, "demo environment ready");
    Ok(())
}

/// Starts the environment's targets that are not running (with its first provider) and puts
/// them into each pool whose router has no members yet, at even shares: what an environment
/// looks like before its first campaign. Used by the demo and the zero-downtime testbed.
pub async fn bring_up(registry: &Registry, env: &Environment) -> anyhow::Result<()> {
    let err = |e: crate::adapters::AdapterError| anyhow::anyhow!("{e}");
    let provider_cfg =
        env.first_backend(BackendKind::Provider).context("the environment has no provider")?;
    let provider = registry.provider(provider_cfg).map_err(err)?;
    // Instances a campaign had created (a canary, a green set) come back as they were, so a
    // campaign interrupted by a restart carries on.
    if provider_cfg.driver == crate::adapters::local_process::KIND {
        let restored = registry.local_process(provider_cfg).map_err(err)?.restore().await;
        match restored {
            Ok(n) if n > 0 => tracing::info!(instances = n, "restarted the demo's instances"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not restart every demo instance"),
        }
    }
    for t in &env.targets {
        if provider.describe(t.name.as_str()).await.ok().flatten().is_none() {
            provider
                .create(t.name.as_str(), t.release.as_str(), &t.group)
                .await
                .map_err(|e| anyhow::anyhow!("starting {}: {e}", t.name))?;
        }
    }
    for pool in &env.pools {
        let cfg = env.backend(&pool.router).context("a pool's router is not in the environment")?;
        let router = registry.router(cfg).map_err(err)?;
        if router.read_pool(pool.name.as_str()).await.map_err(err)?.is_empty() {
            let targets = env.pool_targets(pool);
            let shares = Weight::FULL.split_even(targets.len());
            for (t, w) in targets.into_iter().zip(shares) {
                router
                    .add_member(pool.name.as_str(), t.name.as_str(), &t.address, w)
                    .await
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// Sends `rps` requests a second through the router, on loopback only, until the server stops.
async fn generate_traffic(target: SocketAddr, rps: u32) {
    let Ok(http) = crate::outbound::client(Duration::from_secs(5)) else {
        return;
    };
    let http = Arc::new(http);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rps.max(1))));
    loop {
        tick.tick().await;
        let http = http.clone();
        tokio::spawn(async move {
            let _ = http.get(format!("http://{target}/")).send().await;
        });
    }
}
