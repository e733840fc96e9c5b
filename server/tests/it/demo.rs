//! The demo environment for real: demo-service processes on loopback behind the embedded
//! router, campaigns driven by the engine, and user traffic counted while they run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::domain::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{TestApp, eventually, spawn_app_with};

fn free_port_block() -> u16 {
    server::testbed::free_port_block(64).expect("a free port block")
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

/// Sends requests through the router until stopped; counts failures and answers by release.
struct Load {
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<Vec<(u16, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(router: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (stop.clone(), results.clone());
        let task = tokio::spawn(async move {
            let http =
                reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
            // Bounded: at most 90 s of 40 requests a second.
            for _ in 0..3600 {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let outcome = match http.get(format!("http://{router}/")).send().await {
                    Ok(res) => (
                        res.status().as_u16(),
                        res.headers()
                            .get("x-release")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("?")
                            .to_string(),
                    ),
                    Err(e) => (0, e.to_string()),
                };
                r.lock().await.push(outcome);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        Self { stop, results, task }
    }

    async fn finish(self) -> Vec<(u16, String)> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.results.lock().await.clone()
    }
}

fn fast_canary(name: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "name": name, "service": "web", "environment": "demo", "pool": "web",
        "from_release": "v1", "to_release": "v2",
        "strategy": { "kind": "canary", "canary_count": 1, "steps": [{ "weight": 25, "bake_secs": 2 }, { "weight": 100, "bake_secs": 1 }] },
        "gates": [{ "max_error_rate": 0.05, "max_p99_ms": 1000, "min_probe_success": 0.9, "window_secs": 5, "min_samples": 2, "deadline_secs": 30, "consecutive_failures": 2 }],
        "window": { "start": now.to_rfc3339(), "end": (now + chrono::Duration::hours(1)).to_rfc3339(), "timezone": "UTC" },
        "rollback": { "mode": "automatic", "hold_secs": 1 },
        "approvals": { "required": 1, "role": "approver" },
    })
}

async fn wait_status(app: &TestApp, token: &str, id: i64, want: &str) -> Value {
    eventually(&format!("campaign {id} becomes {want}"), Duration::from_secs(60), async || {
        let d = api(app, token, Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
        assert_ne!(
            d["summary"]["status"], "paused",
            "campaign paused: {}",
            d["summary"]["last_error"]
        );
        (d["summary"]["status"] == want).then_some(d)
    })
    .await
}

// Real processes and a real proxy: the server needs its own threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_demo_a_canary_aborted_at_25_percent_drops_no_request_and_ends_on_v1_then_a_full_canary_ends_on_v2()
 {
    let base = free_port_block();
    let router = format!("127.0.0.1:{base}");
    let first = (base + 1).to_string();
    let exe = env!("CARGO_BIN_EXE_switchyard");
    let app = spawn_app_with(&[
        ("SWITCHYARD_DEMO", "true"),
        ("SWITCHYARD_DEMO_ROUTER", router.as_str()),
        ("SWITCHYARD_DEMO_FIRST_PORT", first.as_str()),
        ("SWITCHYARD_DEMO_TRAFFIC_RPS", "0"),
        ("SWITCHYARD_DEMO_EXE", exe),
    ])
    .await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let list = api(&app, &token, Method::GET, "/api/v1/campaigns", None).await;
    assert_eq!(list["campaigns"][0]["name"], "demo-canary", "the demo seeds a ready canary");

    // The environments page shows the targets' health and the router's weights, read back.
    let cookie = app.login_ok("ada").await;
    let page = app.get("/environments", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    for want in [
        "web-4",
        "✓ healthy",
        "25.00 %",
        "The record matches what the router and the provider have now",
        "local-process",
    ] {
        assert!(html.contains(want), "the environments page shows {want:?}");
    }

    let load = Load::start(router.clone());
    let id = api(&app, &token, Method::POST, "/api/v1/campaigns", Some(fast_canary("abort-at-25")))
        .await["summary"]["id"]
        .as_i64()
        .expect("id");
    api(&app, &token, Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await;
    // Wait until the router really sends a share to v2, then abort.
    eventually("traffic reaches v2 before the abort", Duration::from_secs(30), async || {
        let t = api(&app, &token, Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
        assert_ne!(t["summary"]["status"], "paused", "{}", t["summary"]["last_error"]);
        load.results.lock().await.iter().any(|(_, r)| r == "v2").then_some(())
    })
    .await;
    api(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/campaigns/{id}/abort"),
        Some(json!({ "reason": "testing abort" })),
    )
    .await;
    let done = wait_status(&app, &token, id, "rolled_back").await;
    assert!(done["summary"]["rollback_secs"].as_f64().is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let results = load.finish().await;
    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        results.len(),
        failed.iter().take(5).collect::<Vec<_>>()
    );
    eprintln!(
        "measured: canary aborted at 25 %: {} requests, {} failed, {} answered by v2, abort → all on v1 in {:.3} s",
        results.len(),
        failed.len(),
        results.iter().filter(|(_, r)| r == "v2").count(),
        done["summary"]["rollback_secs"].as_f64().unwrap_or(f64::NAN)
    );
    let http = reqwest::Client::new();
    for _ in 0..40 {
        let res = http.get(format!("http://{router}/")).send().await.expect("router answers");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["x-release"], "v1", "after the abort every answer comes from v1");
    }

    let load = Load::start(router.clone());
    let id = api(&app, &token, Method::POST, "/api/v1/campaigns", Some(fast_canary("full-canary")))
        .await["summary"]["id"]
        .as_i64()
        .expect("id");
    api(&app, &token, Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await;
    wait_status(&app, &token, id, "succeeded").await;
    let results = load.finish().await;
    let failed = results.iter().filter(|(s, _)| *s != 200).count();
    assert_eq!(failed, 0, "no request failed during the canary ({} sent)", results.len());
    eprintln!("measured: full canary v1 → v2: {} requests, {failed} failed", results.len());
    for _ in 0..40 {
        let res = http.get(format!("http://{router}/")).send().await.expect("router answers");
        assert_eq!(res.headers()["x-release"], "v2", "after completion every answer comes from v2");
    }
    app.stop().await;
}
