//! Fixtures shared by the domain's tests: a small production environment and a campaign spec that
//! is valid against it, so each test states only what it changes. Test-only.

use chrono::{DateTime, Utc};

use super::auth::Role;
use super::campaign::{
    ApprovalPolicy, BatchSize, CampaignSpec, CanaryStep, CommunicationsPlan, FlagStep,
    MaintenanceWindow, Pause, RollbackMode, RollbackPlan, Strategy, Switch,
};
use super::environment::{BackendConfig, BackendKind, Environment, Pool, Target};
use super::ids::{Name, Percent, Release, Weight};
use super::plan::{Plan, compile};
use super::validate::{ValidSpec, validate};

pub const FROM: &str = "v1.0.0";
pub const TO: &str = "v2.1.0";

pub fn name(s: &str) -> Name {
    Name::parse(s).expect("fixture name is valid")
}

pub fn release(s: &str) -> Release {
    Release::parse(s).expect("fixture release is valid")
}

pub fn w(pct: &str) -> Weight {
    Weight::parse_percent(pct).expect("fixture weight is valid")
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("fixture time is valid").to_utc()
}

fn backend(n: &str, kind: BackendKind, driver: &str) -> BackendConfig {
    BackendConfig {
        name: name(n),
        kind,
        driver: driver.into(),
        settings: serde_json::json!({}),
        environment: None,
    }
}

/// `production`: targets web-1..web-n on v1.0.0 in pool web-pool behind haproxy-main, a
/// local-process provider, an http-probe health source and an email channel.
pub fn env(n: usize) -> Environment {
    let targets: Vec<Target> = (1..=n)
        .map(|i| Target {
            name: name(&format!("web-{i}")),
            address: format!("127.0.0.1:{}", 8000 + i),
            group: if i % 2 == 0 { "zone-b".into() } else { "zone-a".into() },
            release: release(FROM),
            health_url: format!("http://127.0.0.1:{}/healthz", 8000 + i),
        })
        .collect();
    Environment {
        name: name("production"),
        pools: vec![Pool {
            name: name("web-pool"),
            router: name("haproxy-main"),
            targets: targets.iter().map(|t| t.name.clone()).collect(),
        }],
        targets,
        backends: vec![
            // Named like HAProxy, driven like the embedded router (no 1/256 weight rounding).
            backend("haproxy-main", BackendKind::Router, "embedded"),
            backend("local", BackendKind::Provider, "local-process"),
            backend("probe", BackendKind::HealthSource, "http-probe"),
            backend("mail", BackendKind::Channel, "email"),
        ],
        freezes: Vec::new(),
        approvals: None,
        alerts: Vec::new(),
    }
}

/// Like [`env`], but the pool is steered by a PowerDNS record `web.example.com`.
pub fn dns_env(n: usize) -> Environment {
    let mut e = env(n);
    e.backends.push(BackendConfig {
        name: name("pdns"),
        kind: BackendKind::Router,
        driver: "powerdns".into(),
        settings: serde_json::json!({ "record": "web.example.com" }),
        environment: None,
    });
    for p in &mut e.pools {
        p.router = name("pdns");
    }
    e
}

pub fn spec(strategy: Strategy) -> CampaignSpec {
    CampaignSpec {
        name: "web-upgrade".into(),
        service: "web".into(),
        environment: "production".into(),
        pool: "web-pool".into(),
        from_release: FROM.into(),
        to_release: TO.into(),
        strategy,
        gates: Vec::new(),
        window: MaintenanceWindow {
            start: at("2025-06-01T22:00:00Z").into(),
            end: at("2025-06-01T23:00:00Z").into(),
            timezone: "Europe/Paris".into(),
            impact: Default::default(),
            components: Vec::new(),
            message: String::new(),
            start_only_inside: false,
        },
        communications: CommunicationsPlan::default(),
        rollback: RollbackPlan { mode: RollbackMode::Automatic, hold_secs: 600, watch_secs: 600 },
        approvals: ApprovalPolicy { required: 1, role: Role::Approver },
        preview_route: None,
    }
}

pub fn canary(weights: &[&str]) -> Strategy {
    Strategy::Canary {
        steps: weights
            .iter()
            .map(|p| CanaryStep { weight: w(p), bake_secs: 300, pause: Pause::None })
            .collect(),
        canary_count: 1,
    }
}

pub fn rolling(batch: BatchSize, max_unavailable: u32, min_healthy: u32) -> Strategy {
    Strategy::Rolling { batch, max_unavailable, min_healthy, drain_timeout_secs: 30, bake_secs: 60 }
}

pub fn blue_green(switch: Switch) -> Strategy {
    Strategy::BlueGreen { switch, bake_secs: 300, verify_preview: false }
}

pub fn flag(percents: &[&str]) -> Strategy {
    Strategy::FeatureFlag {
        flag: "new-checkout".into(),
        steps: percents
            .iter()
            .map(|p| FlagStep {
                percent: Percent::parse_percent(p).expect("fixture percent is valid"),
                bake_secs: 120,
                pause: Pause::None,
            })
            .collect(),
    }
}

pub fn valid(spec: &CampaignSpec, env: &Environment) -> ValidSpec {
    match validate(spec, env) {
        Ok(v) => v,
        Err(e) => panic!("fixture spec should be valid: {e}"),
    }
}

pub fn plan_for(spec: &CampaignSpec, env: &Environment) -> (ValidSpec, Plan) {
    let v = valid(spec, env);
    let plan = compile(&v);
    (v, plan)
}
