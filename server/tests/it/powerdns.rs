//! The PowerDNS router against a real `pdns_server` on loopback: switches, read-backs, real DNS
//! answers, changes made behind Switchyard's back, rejections and a server that goes away.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::domain::auth::Role;
use app::domain::environment::{BackendConfig, BackendKind};
use app::domain::ids::Name;
use reqwest::Method;
use serde_json::{Value, json};
use server::adapters::registry::{AdapterFactory, Registry};
use server::adapters::{AdapterError, Router};

use crate::helpers::{TestApp, spawn_app};
use crate::real_backends::{Pdns, closed_port, free_port};

fn router(settings: Value) -> Arc<dyn Router> {
    let cfg = BackendConfig {
        name: Name::parse("dns").expect("name"),
        kind: BackendKind::Router,
        driver: "powerdns".into(),
        settings,
        environment: None,
    };
    Registry::new(None).router(&cfg).expect("the registry builds a powerdns router")
}

fn ips(list: &[&str]) -> Vec<(IpAddr, u32)> {
    list.iter().map(|s| (s.parse().expect("ip"), 60)).collect()
}

#[tokio::test]
async fn switching_the_record_changes_what_powerdns_reads_back_and_answers() {
    let pdns = Pdns::start("example.test.").await;
    let r = router(pdns.settings(60));

    let check = r.check().await.expect("check");
    assert!(check.version.as_deref().is_some_and(|v| v.starts_with('4')), "{check:?}");
    assert_eq!(check.capabilities, ["dns-switch", "read-back"]);
    assert!(check.detail.contains("zone example.test."), "{}", check.detail);

    let blue = ["127.0.0.1:8081".to_string(), "127.0.0.2:8082".to_string()];
    r.switch_dns("web", &blue).await.expect("switch to blue");
    assert_eq!(
        r.read_dns("web").await.expect("read"),
        Some(vec!["127.0.0.1".to_string(), "127.0.0.2".to_string()])
    );
    assert_eq!(pdns.resolve("web.example.test", 1).await, ips(&["127.0.0.1", "127.0.0.2"]));

    let green = ["127.0.0.3:9000".to_string(), "127.0.0.3:9001".to_string()];
    r.switch_dns("web.example.test", &green).await.expect("switch to green");
    assert_eq!(r.read_dns("web").await.expect("read"), Some(vec!["127.0.0.3".to_string()]));
    assert_eq!(
        pdns.resolve("web.example.test", 1).await,
        ips(&["127.0.0.3"]),
        "the DNS answer changed, with the TTL Switchyard wrote"
    );

    // Moving to IPv6 removes the A records, so nothing of the old answer is left.
    r.switch_dns("web.example.test.", &["[::1]:8080".to_string()]).await.expect("switch to v6");
    assert_eq!(r.read_dns("web").await.expect("read"), Some(vec!["::1".to_string()]));
    assert_eq!(pdns.resolve("web.example.test", 1).await, vec![]);
    assert_eq!(pdns.resolve("web.example.test", 28).await, ips(&["::1"]));

    let idempotent = r.switch_dns("web", &["[::1]:8080".to_string()]).await;
    assert!(idempotent.is_ok(), "repeating a switch changes nothing: {idempotent:?}");
}

#[tokio::test]
async fn a_change_made_outside_switchyard_is_what_read_dns_reports() {
    let pdns = Pdns::start("example.test.").await;
    let r = router(pdns.settings(60));
    r.switch_dns("api", &["127.0.0.1:80".to_string()]).await.expect("switch");

    let res = pdns
        .patch(json!([{
            "name": "api.example.test.", "type": "A", "ttl": 300, "changetype": "REPLACE",
            "records": [
                { "content": "127.0.0.9", "disabled": false },
                { "content": "127.0.0.8", "disabled": true },
            ],
        }]))
        .await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(
        r.read_dns("api").await.expect("read"),
        Some(vec!["127.0.0.9".to_string()]),
        "the zone as it is now, disabled records left out"
    );
    assert_eq!(r.read_dns("nothing-here").await.expect("read"), Some(vec![]));
}

#[tokio::test]
async fn powerdns_rejections_are_permanent_and_carry_its_message() {
    let pdns = Pdns::start("example.test.").await;
    let r = router(pdns.settings(60));

    let res = pdns
        .patch(json!([{
            "name": "alias.example.test.", "type": "CNAME", "ttl": 60, "changetype": "REPLACE",
            "records": [{ "content": "web.example.test.", "disabled": false }],
        }]))
        .await;
    assert_eq!(res.status().as_u16(), 204);
    match r.switch_dns("alias", &["127.0.0.1:80".to_string()]).await {
        Err(AdapterError::Permanent(m)) => {
            assert!(m.contains("422") && m.contains("Conflicts with pre-existing RRset"), "{m}")
        }
        other => panic!("a CNAME in the way is permanent: {other:?}"),
    }

    let mut wrong_key = pdns.settings(60);
    wrong_key["api_key"] = json!("not-the-key");
    match router(wrong_key).read_dns("web").await {
        Err(AdapterError::Permanent(m)) => assert!(m.contains("401"), "{m}"),
        other => panic!("a wrong key is permanent: {other:?}"),
    }

    let mut other_zone = pdns.settings(60);
    other_zone["zone"] = json!("missing.test");
    let missing = router(other_zone);
    assert!(matches!(missing.read_dns("web").await, Err(AdapterError::Permanent(_))));
    assert!(matches!(missing.check().await, Err(AdapterError::Permanent(_))));

    assert!(matches!(
        r.switch_dns("web.elsewhere.test.", &["127.0.0.1:80".to_string()]).await,
        Err(AdapterError::Permanent(_))
    ));
    assert!(matches!(
        r.set_weight("web", "a", app::domain::ids::Weight::ZERO).await,
        Err(AdapterError::Unsupported(_))
    ));
}

#[tokio::test]
async fn powerdns_killed_mid_way_is_a_transient_error() {
    let mut pdns = Pdns::start("example.test.").await;
    let r = router(pdns.settings(60));
    r.switch_dns("web", &["127.0.0.1:80".to_string()]).await.expect("switch while up");
    pdns.kill().await;

    for (what, result) in [
        ("switch", r.switch_dns("web", &["127.0.0.2:80".to_string()]).await.map(|_| ())),
        ("read", r.read_dns("web").await.map(|_| ())),
        ("check", r.check().await.map(|_| ())),
    ] {
        match result {
            Err(e) => assert!(e.is_transient(), "{what}: {e}\n{}", pdns.log()),
            Ok(()) => panic!("{what} succeeded against a dead pdns"),
        }
    }

    let mut nowhere = pdns.settings(60);
    nowhere["api_url"] = json!(format!("http://127.0.0.1:{}", closed_port()));
    assert!(router(nowhere).read_dns("web").await.expect_err("closed").is_transient());
}

async fn api(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = app.client().request(method, format!("{}{path}", app.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

// Real instances, a real PowerDNS and the engine: the server needs its own threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_blue_green_campaign_points_the_record_at_green_and_waits_out_the_old_ttl() {
    let pdns = Pdns::start("example.test.").await;
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;

    // Blue answers on 127.0.0.1; the provider starts green on 127.0.0.2, so the record must move.
    let (b1, b2) = (free_port(), free_port());
    let blue = [format!("127.0.0.1:{b1}"), format!("127.0.0.1:{b2}")];
    let ports = free_port();
    let exe = env!("CARGO_BIN_EXE_switchyard");
    let mut dns = pdns.settings(1);
    dns["record"] = json!("web");
    let env = json!({
        "name": "edge",
        "targets": blue.iter().enumerate().map(|(i, a)| json!({
            "name": format!("web-{}", i + 1), "address": a, "group": "zone-a", "release": "v1",
            "health_url": format!("http://{a}/healthz"),
        })).collect::<Vec<_>>(),
        "pools": [{ "name": "web", "router": "dns", "targets": ["web-1", "web-2"] }],
        "backends": [
            { "name": "dns", "kind": "router", "driver": "powerdns", "settings": dns },
            // Blue runs on 127.0.0.1 (fixed ports), new instances on 127.0.0.2.
            { "name": "local", "kind": "provider", "driver": "local-process", "settings": {
                "command": format!("{exe} demo-service --release {{release}} --port {{port}} --host {{host}}"),
                "host": "127.0.0.2", "port_min": ports, "port_max": ports + 20,
                "ports": { "web-1": b1, "web-2": b2 },
                "hosts": { "web-1": "127.0.0.1", "web-2": "127.0.0.1" },
            } },
            { "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": {} },
        ],
    });
    api(&app, &token, Method::POST, "/api/v1/environments", Some(env.clone())).await;
    // Blue really runs before the campaign (the start checks the record against it).
    let environment: app::domain::environment::Environment =
        serde_json::from_value(env).expect("env");
    let registry = app.registry.clone().expect("the server's adapters");
    {
        use server::adapters::registry::AdapterFactory as _;
        let provider = registry
            .provider(environment.backend(&"local".parse().expect("name")).expect("provider"))
            .expect("provider");
        for t in &environment.targets {
            provider.create(t.name.as_str(), "v1", "zone-a").await.expect("blue starts");
        }
    }
    router(pdns.settings(1)).switch_dns("web", &blue).await.expect("the record starts on blue");

    let now = chrono::Utc::now();
    let spec = json!({
        "name": "dns-switch", "service": "web", "environment": "edge", "pool": "web",
        "from_release": "v1", "to_release": "v2",
        "strategy": { "kind": "blue_green", "switch": "at_once", "bake_secs": 1, "verify_preview": false },
        "gates": [{ "max_error_rate": 0.05, "max_p99_ms": 1000, "min_probe_success": 0.9, "window_secs": 5, "min_samples": 2, "deadline_secs": 30, "consecutive_failures": 2 }],
        "window": { "start": now.to_rfc3339(), "end": (now + chrono::Duration::hours(1)).to_rfc3339(), "timezone": "UTC" },
        "rollback": { "mode": "automatic", "hold_secs": 0 },
        "approvals": { "required": 1, "role": "approver" },
    });
    let id =
        api(&app, &token, Method::POST, "/api/v1/campaigns", Some(spec)).await["summary"]["id"]
            .as_i64()
            .expect("id");
    api(&app, &token, Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await;

    let detail = crate::helpers::eventually(
        "the campaign succeeding",
        Duration::from_secs(60),
        async || {
            let detail =
                api(&app, &token, Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
            let status = detail["summary"]["status"].clone();
            assert!(
                status != "paused" && status != "failed" && status != "rolled_back",
                "campaign {status}: {}\n{}",
                detail["summary"]["last_error"],
                pdns.log()
            );
            (status == "succeeded").then_some(detail)
        },
    )
    .await;

    let steps = detail["plan"]["steps"].as_array().expect("steps");
    let described = |i: usize| steps[i]["description"].as_str().unwrap_or_default().to_string();
    let switch = steps.iter().position(|s| s["kind"] == "switch_dns").expect("a DNS switch");
    assert_eq!(
        described(switch + 1),
        "Wait out the old record's TTL (1 s) so resolvers stop sending to blue (web-1 and web-2)"
    );
    let readback = detail["step_runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["phase"] == "forward" && r["index"] == json!(switch))
        .map(|r| r["calls"].to_string())
        .unwrap_or_default();
    assert!(readback.contains("web → 127.0.0.2"), "the switch was read back: {readback}");
    assert_eq!(
        pdns.resolve("web.example.test", 1).await,
        vec![("127.0.0.2".parse().expect("ip"), 1)],
        "DNS now answers with green"
    );
    app.stop().await;
}
