//! Health charts from stored samples, in the demo environment for real: demo-service processes
//! behind the embedded router, the built-in traffic generator, and the sampler storing a round
//! every second that live views hear about as a `sample` event.

use std::time::{Duration, Instant};

use app::domain::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testbed::scenarios::Api;

use crate::helpers::{eventually, spawn_app_with};

fn canary(bake_secs: u64) -> Value {
    let now = chrono::Utc::now();
    json!({
        "name": "charted", "service": "web", "environment": "demo", "pool": "web",
        "from_release": "v1", "to_release": "v2",
        "strategy": { "kind": "canary", "canary_count": 1, "steps": [{ "weight": 25, "bake_secs": bake_secs }, { "weight": 100, "bake_secs": 1 }] },
        "gates": [{ "max_error_rate": 0.05, "max_p99_ms": 1000, "min_probe_success": 0.9, "window_secs": 5, "min_samples": 2, "deadline_secs": 60, "consecutive_failures": 2 }],
        "window": { "start": now.to_rfc3339(), "end": (now + chrono::Duration::hours(1)).to_rfc3339(), "timezone": "UTC" },
        "rollback": { "mode": "automatic", "hold_secs": 1 },
    })
}

async fn chart(api: &Api, id: i64, query: &str) -> Value {
    api.call(Method::GET, &format!("/api/v1/campaigns/{id}/chart{query}"), None)
        .await
        .expect("chart")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_canary_is_sampled_every_second_charted_per_target_and_announced_live() {
    let base = server::testbed::free_port_block(16).expect("a free port block");
    let router = format!("127.0.0.1:{base}");
    let first = (base + 1).to_string();
    let app = spawn_app_with(&[
        ("SWITCHYARD_DEMO", "true"),
        ("SWITCHYARD_DEMO_ROUTER", router.as_str()),
        ("SWITCHYARD_DEMO_FIRST_PORT", first.as_str()),
        ("SWITCHYARD_DEMO_TRAFFIC_RPS", "40"),
        ("SWITCHYARD_DEMO_EXE", env!("CARGO_BIN_EXE_switchyard")),
    ])
    .await;
    app.add_user("ada", Role::Admin).await;
    let api = Api::new(app.url.clone(), app.token_for("ada").await);
    let id = api.create_and_start(canary(60)).await.expect("started");

    // The live stream carries a `sample` event for every stored round, about a second apart.
    let res = api
        .http
        .get(format!("{}/api/v1/campaigns/{id}/events", app.url))
        .bearer_auth(&api.token)
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("event stream");
    assert_eq!(res.status(), StatusCode::OK);
    // Offered gzip, the stream stays uncompressed: a compressor would sit on the events.
    assert!(res.headers().get(reqwest::header::CONTENT_ENCODING).is_none());
    let mut body = res;
    let mut text = String::new();
    let mut sample_times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while sample_times.len() < 4 && Instant::now() < deadline {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(5), body.chunk()).await
        else {
            break;
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if event.contains("event: sample") {
                sample_times.push(Instant::now());
                let data = event.lines().find_map(|l| l.strip_prefix("data: ")).expect("data");
                let v: Value = serde_json::from_str(data).expect("json");
                assert!(v["sample"].as_i64().is_some_and(|s| s > 0), "{v}");
                assert!(v["stored_ms"].as_i64().is_some(), "{v}");
            }
        }
    }
    drop(body);
    assert_eq!(sample_times.len(), 4, "four sample events within 15 s");
    let gaps: Vec<f64> = sample_times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    assert!(gaps.iter().all(|g| *g < 2.5), "rounds arrive about a second apart: {gaps:?}");

    // Once the canary bakes at 25 %, the chart reads the router's weights back.
    let whole = eventually("the chart shows v2 at 25 %", Duration::from_secs(20), async || {
        let c = chart(&api, id, "").await;
        c["summary"].as_str().is_some_and(|s| s.contains("v2 25.0 %")).then_some(c)
    })
    .await;
    let summary = whole["summary"].as_str().unwrap_or_default().to_string();
    assert!(summary.contains("weight v1 75.0 % / v2 25.0 %"), "{summary}");
    assert!(summary.contains("req/s") && summary.contains("probes 5/5 ok"), "{summary}");
    let svg = whole["svg"].as_str().unwrap_or_default();
    assert!(svg.starts_with("<svg"), "an SVG chart");
    for want in [
        "requests/s by release",
        "traffic weight",
        "error rate %",
        "latency ms",
        "probe success %",
        "v2",
    ] {
        assert!(svg.contains(want), "the chart shows {want}");
    }
    assert_eq!(whole["tz"], "UTC");
    let targets: Vec<String> = whole["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert_eq!(targets.len(), 5, "four v1 instances and the canary: {targets:?}");
    let canary_target = targets
        .iter()
        .find(|t| !["web-1", "web-2", "web-3", "web-4"].contains(&t.as_str()))
        .expect("the canary");

    // One target, in the viewer's zone.
    let one = chart(&api, id, &format!("?target={canary_target}&tz=Europe/Berlin&width=360")).await;
    assert_eq!(one["target"], canary_target.as_str());
    assert_eq!(one["tz"], "Europe/Berlin");
    assert!(
        one["summary"].as_str().is_some_and(|s| s.contains("v2, ready, weight 25.0 % of the pool")),
        "{}",
        one["summary"]
    );
    assert!(one["svg"].as_str().is_some_and(|s| s.contains("width=\"360\"")), "drawn 360 px wide");

    // Bad choices are named, not a 500.
    for (query, field) in [("?tz=Mars/Olympus", "tz"), ("?target=nope", "target")] {
        let res = api
            .http
            .get(format!("{}/api/v1/campaigns/{id}/chart{query}", app.url))
            .bearer_auth(&api.token)
            .send()
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let v: Value = res.json().await.expect("json");
        assert!(v["error"]["fields"][field].is_string(), "{v}");
    }

    // After an abort the chart shows every serving weight back on v1.
    api.abort(id, "chart test").await.expect("abort");
    api.wait_status(id, &["rolled_back"], Duration::from_secs(30)).await.expect("rolled back");
    let back = eventually("the chart shows v1 at 100 %", Duration::from_secs(10), async || {
        let summary = chart(&api, id, "").await["summary"].as_str().unwrap_or_default().to_string();
        summary.contains("weight v1 100.0 %").then_some(summary)
    })
    .await;
    assert!(back.contains("weight v1 100.0 %"), "{back}");
    let samples = app
        .store
        .samples_since(id, chrono::DateTime::UNIX_EPOCH, 1_000_000)
        .await
        .expect("samples");
    let rows = samples.len();
    let rounds = samples.iter().map(|s| s.at).collect::<std::collections::BTreeSet<_>>().len();
    assert!(rounds >= 4 && rows >= rounds * 4, "{rows} rows in {rounds} rounds");
}
