//! Gates that watch all the time, behind the embedded router with real demo-service instances
//! under load: a canary judged against its baseline (Mann-Whitney on latency, two-proportion on
//! errors) rolls back when it is slower; the same gate replayed on the stored samples says when
//! it would have failed, and a lenient one that it would have passed; after success the gates
//! keep watching and a breach alerts and offers the rollback of the release.

use std::time::Duration;

use app::domain::auth::Role;
use serde_json::{Value, json};
use server::testbed::Load;
use server::testbed::scenarios::{Api, Bed, RouterKind, canary};

use crate::helpers::{TestApp, eventually, hmac_hex, receiver, spawn_app_with};

async fn bed() -> (TestApp, Api, Bed, tempfile::TempDir) {
    bed_with(&[]).await
}

async fn bed_with(config: &[(&str, &str)]) -> (TestApp, Api, Bed, tempfile::TempDir) {
    let app = spawn_app_with(config).await;
    app.add_user("ada", Role::Admin).await;
    let api = Api::new(app.url.clone(), app.token_for("ada").await);
    let registry = app.registry.clone().expect("the server's adapters");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let bed =
        Bed::start(RouterKind::Embedded, dir.path(), exe, &api, &registry).await.expect("testbed");
    (app, api, bed, dir)
}

/// Tells every member of the pool that is not one of the original four to behave so.
async fn new_release_behaves(api: &Api, id: i64, query: &str) {
    let t = api
        .call(reqwest::Method::GET, &format!("/api/v1/campaigns/{id}/traffic"), None)
        .await
        .expect("traffic");
    let http = reqwest::Client::new();
    let mut told = 0;
    for m in t["members"].as_array().expect("members") {
        if m["release"] == "v2" {
            http.post(format!(
                "http://{}/admin/behaviour?{query}",
                m["address"].as_str().unwrap_or_default()
            ))
            .send()
            .await
            .expect("behaviour");
            told += 1;
        }
    }
    assert!(told > 0, "a v2 member to tell: {t}");
}

// Real processes and a real proxy: the server needs its own threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_slower_than_its_baseline_is_rolled_back_and_a_replay_says_when_a_gate_would_have_failed()
 {
    let (app, api, bed, _dir) = bed().await;
    let load = Load::start(bed.url(), 100, 4, Duration::from_secs(240));
    let slow_canary = async |name: &str, marginal: f64| {
        let mut spec = bed.spec(name, canary(&[(25, 3), (100, 1)]), 1);
        spec["gates"][0]["window_secs"] = json!(8);
        spec["gates"][0]["min_samples"] = json!(3);
        spec["gates"][0]["compare"] = json!({ "min_points": 5, "confidence": 0.95,
            "latency_tolerance": 0.2, "marginal_score": marginal });
        let id = api.create_and_start(spec).await.expect("start");
        api.wait_traffic_on(id, "v2", Duration::from_secs(30)).await.expect("v2 takes traffic");
        new_release_behaves(&api, id, "delay_ms=120").await;
        id
    };

    // Slower but not failing: one metric of two is worse, a marginal score a person decides.
    let id = slow_canary("marginal", 50.0).await;
    let paused = eventually("the comparison asks a person", Duration::from_secs(60), async || {
        let d = api.campaign(id).await.ok()?;
        (d["summary"]["status"] == "paused").then_some(d)
    })
    .await;
    let why = paused["summary"]["last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("needs a person") && why.contains("score 50") && why.contains("latency"),
        "{why}"
    );
    api.abort(id, "too slow").await.expect("abort");
    api.wait_status(id, &["rolled_back"], Duration::from_secs(60)).await.expect("rolled back");

    // With every metric required, the same slow canary fails the gate and rolls back by itself.
    let id = slow_canary("compare", 75.0).await;
    let done =
        api.wait_status(id, &["rolled_back"], Duration::from_secs(90)).await.expect("rolled back");
    let reason = done["summary"]["abort_reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("canary vs baseline") && reason.contains("latency"), "{reason}");
    let gate_run = done["step_runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["verdict"].to_string().contains("comparison"))
        .cloned()
        .expect("a gate verdict with its comparison");
    assert!(gate_run["verdict"].to_string().contains("\"metric\":\"latency\""), "{gate_run}");
    let outcomes = load.finish().await;
    let t = server::testbed::tally(&outcomes);
    assert_eq!(t.failed, 0, "slow is not failed: every request succeeded: {t:?}");

    // The same gate replayed on what was recorded: it would have failed.
    let r = api
        .call(reqwest::Method::POST, &format!("/api/v1/campaigns/{id}/gate-replay"), None)
        .await
        .expect("replay");
    // The replay reaches the verdict the live run stored, at the same gate step.
    assert!(r["summary"].as_str().unwrap_or_default().contains("would fail"), "{r}");
    let replayed = r["steps"].as_array().expect("steps");
    assert!(
        replayed.iter().any(|s| s["step"] == gate_run["index"]),
        "the live gate step {} is replayed: {r}",
        gate_run["index"]
    );
    // A lenient gate (no comparison, a loose p99) would have passed.
    let lenient = json!({ "max_error_rate": 0.5, "max_p99_ms": 60000, "min_probe_success": 0.5,
                          "window_secs": 4, "min_samples": 2, "deadline_secs": 60, "consecutive_failures": 3 });
    let r = api
        .call(reqwest::Method::POST, &format!("/api/v1/campaigns/{id}/gate-replay"), Some(lenient))
        .await
        .expect("replay");
    assert!(r["summary"].as_str().unwrap_or_default().contains("would pass"), "{r}");
    let bad = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/campaigns/{id}/gate-replay"),
            Some(json!({ "max_error_rate": 2 })),
        )
        .await
        .expect_err("a bad gate");
    assert!(bad.to_string().contains("422"), "{bad}");

    // The CLI prints the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["gate", "replay", &id.to_string()])
        .env("SWITCHYARD_URL", &app.url)
        .env("SWITCHYARD_TOKEN", &api.token)
        .output()
        .expect("cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("step ") && text.contains("fail"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_success_the_gates_keep_watching_and_a_breach_alerts_and_offers_the_rollback() {
    let (app, api, bed, _dir) = bed().await;
    let load = Load::start(bed.url(), 100, 4, Duration::from_secs(120));
    let mut spec = bed.spec("watched", canary(&[(50, 1), (100, 1)]), 0);
    spec["rollback"]["watch_secs"] = json!(120);
    let id = api.create_and_start(spec).await.expect("start");
    let done =
        api.wait_status(id, &["succeeded"], Duration::from_secs(90)).await.expect("succeeded");
    assert_eq!(done["watch"]["active"], true, "{}", done["watch"]);
    new_release_behaves(&api, id, "fail_rate=1").await;
    let d = eventually("the watch finds the breach", Duration::from_secs(20), async || {
        let d = api.campaign(id).await.expect("detail");
        d["watch"]["breach"].as_str().is_some().then_some(d)
    })
    .await;
    assert!(
        d["watch"]["breach"].as_str().unwrap_or_default().contains("Roll back this release"),
        "{}",
        d["watch"]
    );
    assert_eq!(
        d["summary"]["status"], "succeeded",
        "a success is not undone behind the operator's back"
    );
    let audit = api
        .call(reqwest::Method::GET, "/api/v1/audit?action=campaign.watch_breach", None)
        .await
        .expect("audit");
    assert!(audit.to_string().contains("campaign.watch_breach"), "{audit}");
    let _ = load.finish().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_alerts_reach_the_environments_channel_signed_and_never_the_public_feed() {
    const KEY: &str = "alert-signing-key-for-the-test";
    let (app, api, bed, _dir) = bed_with(&[
        ("SWITCHYARD_ALERT_WEBHOOK_SECRET", KEY),
        ("SWITCHYARD_NOTIFY_RETRY_BASE_SECS", "1"),
    ])
    .await;
    let hooks = receiver().await;
    // The operators of this environment hear about its campaigns on their own webhook.
    let envs = api.call(reqwest::Method::GET, "/api/v1/environments", None).await.expect("list");
    let env_id = envs
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == bed.name.as_str())
        .and_then(|e| e["id"].as_i64())
        .expect("the testbed's environment");
    let mut env = bed.env.clone();
    env["alerts"] = json!([{ "channel": "webhook", "url": format!("{}/hook/ops", hooks.url) }]);
    api.call(reqwest::Method::PUT, &format!("/api/v1/environments/{env_id}"), Some(env))
        .await
        .expect("the operator channel is saved");

    // One campaign aborted by a person, one that succeeds.
    let aborted = api
        .create_and_start(bed.spec("alerted-abort", canary(&[(25, 60), (100, 1)]), 0))
        .await
        .expect("start");
    api.wait_traffic_on(aborted, "v2", Duration::from_secs(30)).await.expect("v2 takes traffic");
    api.abort(aborted, "the alert test aborts it").await.expect("abort");
    api.wait_status(aborted, &["rolled_back"], Duration::from_secs(60)).await.expect("rolled back");
    let ok = api
        .create_and_start(bed.spec("alerted-success", canary(&[(50, 1), (100, 1)]), 0))
        .await
        .expect("start");
    api.wait_status(ok, &["succeeded"], Duration::from_secs(90)).await.expect("succeeded");

    let want = ["rolling_back", "rolled_back", "succeeded"];
    let seen = eventually("the alerts arrive", Duration::from_secs(30), async || {
        let seen = hooks.seen.lock().expect("lock").clone();
        let events: Vec<String> = seen
            .iter()
            .filter_map(|(_, _, b)| serde_json::from_slice::<Value>(b).ok())
            .filter_map(|j| j["alert"]["event"].as_str().map(str::to_string))
            .collect();
        want.iter().all(|w| events.iter().any(|e| e == w)).then_some(seen)
    })
    .await;
    for (name, headers, body) in &seen {
        assert_eq!(name, "ops");
        let ts = headers.get("x-switchyard-timestamp").expect("a timestamp header");
        let mut signed = format!("{ts}.").into_bytes();
        signed.extend_from_slice(body);
        assert_eq!(
            headers.get("x-switchyard-signature").map(String::as_str),
            Some(format!("sha256={}", hmac_hex(KEY, &signed)).as_str()),
            "signed with alerts.webhook_secret"
        );
        let j: Value = serde_json::from_slice(body).expect("a JSON body");
        let text = j["text"].as_str().unwrap_or_default();
        assert!(text.contains("alerted-"), "a Slack-compatible text names the campaign: {j}");
        let link = format!("/campaigns/{}", j["alert"]["campaign_id"]);
        assert!(text.contains(&link), "links the campaign: {j}");
        let message = j["alert"]["message"].as_str().unwrap_or_default();
        if j["alert"]["event"] == "rolling_back" {
            assert!(message.contains("ada aborted it: the alert test aborts it"), "{j}");
        }
        if j["alert"]["event"] == "succeeded" {
            assert!(message.contains("requests"), "the impact line: {j}");
        }
    }
    // Alerts are for operators: never on the public status page or its feed.
    for path in ["/status", "/status/feed.atom"] {
        let body = reqwest::get(format!("{}{path}", app.url))
            .await
            .expect("public page")
            .text()
            .await
            .expect("body");
        assert!(
            !body.contains("alerted-") && !body.contains("alert_"),
            "{path} shows no alert: {body}"
        );
    }
    app.stop().await;
}
