//! The campaign REST API, its OpenAPI document, the event stream and the client commands.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use app::domain::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn read_example(name: &str) -> Value {
    server::client::read_spec_file(&examples().join(name)).expect("example parses")
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client().request(method, format!("{}{path}", app.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// An app with the example environment, and tokens for each role.
async fn app_with_environment() -> (TestApp, [String; 4]) {
    let app = spawn_app().await;
    for (name, role) in [
        ("ada", Role::Admin),
        ("abe", Role::Approver),
        ("olivia", Role::Operator),
        ("vera", Role::Viewer),
    ] {
        app.add_user(name, role).await;
    }
    let tokens = [
        app.token_for("ada").await,
        app.token_for("abe").await,
        app.token_for("olivia").await,
        app.token_for("vera").await,
    ];
    // The example environment, on this machine: campaigns on it really run.
    let env = crate::helpers::runnable(read_example("environment.toml"));
    let (status, body) =
        call(&app, &tokens[0], Method::POST, "/api/v1/environments", Some(env.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.bring_up(&env).await;
    (app, tokens)
}

#[tokio::test]
async fn every_example_spec_validates_and_previews_a_plan() {
    let (app, [_, _, olivia, _]) = app_with_environment().await;
    for file in
        ["canary.toml", "canary.yaml", "blue-green.toml", "rolling.toml", "feature-flag.toml"]
    {
        let (status, plan) =
            call(&app, &olivia, Method::POST, "/api/v1/plan", Some(read_example(file))).await;
        assert_eq!(status, StatusCode::OK, "{file}: {plan}");
        assert!(plan["steps"].as_array().map(|s| s.len() > 2).unwrap_or(false), "{file} has steps");
        assert!(plan["summary"]["headline"].as_str().is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn validation_errors_name_each_bad_field_and_nothing_is_saved() {
    let (app, [_, _, olivia, _]) = app_with_environment().await;
    let mut spec = read_example("canary.toml");
    spec["strategy"]["steps"] = json!([{ "weight": 50, "bake_secs": 60 }, { "weight": 25, "bake_secs": 60 }, { "weight": 100, "bake_secs": 60 }]);
    spec["window"]["end"] = json!("2026-12-01T06:00:00Z");
    spec["window"]["timezone"] = json!("Mars/Olympus");
    spec["to_release"] = spec["from_release"].clone();
    let (status, body) = call(&app, &olivia, Method::POST, "/api/v1/campaigns", Some(spec)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields = body["error"]["fields"].as_object().expect("fields");
    for field in ["strategy.steps[1].weight", "window.end", "window.timezone", "to_release"] {
        assert!(fields.contains_key(field), "{field} missing from {fields:?}");
    }
    let mut bad_type = read_example("canary.toml");
    bad_type["strategy"]["steps"][0]["weight"] = json!("a lot");
    let (status, body) =
        call(&app, &olivia, Method::POST, "/api/v1/campaigns", Some(bad_type)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]
            .as_object()
            .expect("fields")
            .keys()
            .any(|k| k.starts_with("strategy")),
        "{body}"
    );
    let (_, list) = call(&app, &olivia, Method::GET, "/api/v1/campaigns", None).await;
    assert_eq!(list["total"], 0, "no half-written campaign");
    app.stop().await;
}

#[tokio::test]
async fn every_command_checks_the_callers_role_on_the_server() {
    let (app, [ada, abe, olivia, vera]) = app_with_environment().await;
    let (status, created) =
        call(&app, &olivia, Method::POST, "/api/v1/campaigns", Some(read_example("canary.toml")))
            .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["summary"]["id"].as_i64().expect("id");
    let (status, _) =
        call(&app, &vera, Method::POST, "/api/v1/campaigns", Some(read_example("rolling.toml")))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer cannot create");
    let reason = Some(json!({ "reason": "test" }));
    for cmd in ["start", "pause", "resume", "approve", "reject", "skip", "abort"] {
        let (status, body) = call(
            &app,
            &vera,
            Method::POST,
            &format!("/api/v1/campaigns/{id}/{cmd}"),
            reason.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer {cmd}: {body}");
    }
    for cmd in ["approve", "reject"] {
        let (status, _) = call(
            &app,
            &olivia,
            Method::POST,
            &format!("/api/v1/campaigns/{id}/{cmd}"),
            reason.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "operator {cmd}");
    }
    let (status, _) = call(
        &app,
        &olivia,
        Method::POST,
        "/api/v1/environments",
        Some(read_example("environment.toml")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "environments are for admins");
    // Allowed roles reach the lifecycle check instead (a draft cannot be approved: 409).
    let (status, body) =
        call(&app, &abe, Method::POST, &format!("/api/v1/campaigns/{id}/approve"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) =
        call(&app, &ada, Method::POST, &format!("/api/v1/campaigns/{id}/abort"), Some(json!({})))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "abort needs a reason: {body}");
    assert!(body["error"]["fields"]["reason"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_exists() {
    let (app, [ada, ..]) = app_with_environment().await;
    let (status, doc) = call(&app, &ada, Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    // The campaign list's status filter names every state there is.
    let filters =
        doc["paths"]["/api/v1/campaigns"]["get"]["parameters"].as_array().expect("params");
    let status = filters.iter().find(|p| p["name"] == "status").expect("a status filter");
    let pattern = status["schema"]["pattern"].as_str().expect("a pattern");
    for state in app::domain::lifecycle::CampaignState::ALL {
        assert!(
            pattern.contains(&format!("|{}|", state.as_str()))
                || pattern.contains(&format!("({}|", state.as_str()))
                || pattern.contains(&format!("|{})", state.as_str())),
            "{state:?} missing from {pattern}"
        );
    }
    // Every API route the router serves is documented, with the same method.
    let routed: Vec<(String, String)> =
        app.routes.iter().filter(|(_, path)| path.starts_with("/api/v1/")).cloned().collect();
    assert!(routed.len() >= 40, "the router's API routes: {routed:?}");
    for (method, path) in &routed {
        assert!(
            paths.get(path).and_then(|p| p.get(method.to_lowercase())).is_some(),
            "{method} {path} is routed but not in the document"
        );
    }
    // Every documented operation is routed: requested with a made-up id, the answer comes from
    // the API (a JSON 404 or another API answer), never the router's 405 or plain 404.
    let mut documented = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item") {
            documented += 1;
            assert!(
                routed.iter().any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path),
                "{method} {path} is documented but not routed"
            );
            for status in ["401", "500"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
            let concrete = path
                .replace("{id}", "999999")
                .replace("{pool}", "web")
                .replace("{backend}", "hooks");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = (method == "post" || method == "put").then(|| json!({}));
            let res = app
                .client()
                .request(m, format!("{}{concrete}", app.url))
                .bearer_auth(&ada)
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = res.status();
            let content_type = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: the router does not have this route"
            );
            if status == StatusCode::NOT_FOUND {
                assert!(
                    content_type.starts_with("application/json"),
                    "{method} {path}: 404 from the router, not from the API"
                );
            }
            // The answer's status is one the operation documents.
            assert!(
                op["responses"][status.as_str()].is_object(),
                "{method} {path} answered {status}, which it does not document"
            );
        }
    }
    assert_eq!(documented, routed.len(), "as many documented operations as API routes");
    app.stop().await;
}

/// Schemathesis (PyPI), an independent OpenAPI fuzzer, sends generated requests to every
/// operation of the served document, valid and invalid, and checks every answer against it:
/// no server error, only documented status codes and content types, bodies that match their
/// schemas, schema-valid data accepted (or refused for a rule a schema cannot state: 422),
/// invalid data refused, 401 without a credential. Config: `tests/api/schemathesis.toml`.
///
/// Two operations are left out: `DELETE /api/v1/tokens/{id}` (a generated id may revoke the
/// token the fuzzer signs in with; revocation is tested in `auth`) and the endless event stream
/// (tested below).
#[tokio::test]
async fn an_independent_openapi_fuzzer_finds_no_mismatch_between_the_document_and_the_server() {
    let found =
        Command::new("schemathesis").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "schemathesis is missing: python3 -m pip install schemathesis (scripts/test installs it)"
    );
    let (app, [ada, _, olivia, _]) = app_with_environment().await;
    // Something for the generated ids to find: a draft, and one that ran.
    for _ in 0..2 {
        let (status, body) = call(
            &app,
            &olivia,
            Method::POST,
            "/api/v1/campaigns",
            Some(read_example("canary.toml")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml");
    let url = format!("{}/api/v1/openapi.json", app.url);
    let auth = format!("Authorization: Bearer {ada}");
    // Its cache and reports go to a folder of its own, not the checkout.
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let cwd = scratch.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .current_dir(&cwd)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &url, "-H", &auth, "--checks", "all"])
            .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "20", "-w", "2"])
            .args(["--seed", "20261203", "--no-color"])
            .args(["--exclude-path", "/api/v1/tokens/{id}"])
            .args(["--exclude-path", "/api/v1/campaigns/{id}/events"])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("schemathesis finished");
    let out = String::from_utf8_lossy(&run.stdout);
    let summary = out.rsplit("SUMMARY").next().unwrap_or_default();
    assert!(
        run.status.success(),
        "schemathesis found mismatches:\n{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let tested: usize = summary
        .split("Tested: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(tested >= 44, "it tested every operation but the two left out: {summary}");
    assert!(!summary.contains("failures"), "no failures: {summary}");
    app.stop().await;
}

#[tokio::test]
async fn a_started_campaign_is_frozen_and_its_events_stream_resumes_after_last_event_id() {
    let (app, [_, _, olivia, _]) = app_with_environment().await;
    let (_, created) =
        call(&app, &olivia, Method::POST, "/api/v1/campaigns", Some(read_example("canary.toml")))
            .await;
    let id = created["summary"]["id"].as_i64().expect("id");
    let (status, started) =
        call(&app, &olivia, Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    // It runs: the canary instance is provisioned, named for this campaign.
    let detail = crate::helpers::eventually(
        "the canary is provisioned",
        Duration::from_secs(30),
        async || {
            let d =
                call(&app, &olivia, Method::GET, &format!("/api/v1/campaigns/{id}"), None).await.1;
            assert_eq!(d["summary"]["status"], "running", "{d}");
            (d["summary"]["step_index"].as_i64().unwrap_or(0) >= 1).then_some(d)
        },
    )
    .await;
    let provision = detail["step_runs"].to_string();
    assert!(provision.contains(&format!("web-1-v1-5-0-c{id} runs v1.5.0")), "{provision}");
    assert_eq!(detail["plan_frozen"], true);
    let (status, body) = call(
        &app,
        &olivia,
        Method::PUT,
        &format!("/api/v1/campaigns/{id}"),
        Some(read_example("canary.toml")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "a started campaign is not editable: {body}");

    let first = read_events(&app, &olivia, id, None, 3).await;
    assert!(first.len() >= 3, "{first:?}");
    assert_eq!(first[0].1, "created");
    let resumed = read_events(&app, &olivia, id, Some(first[0].0), 2).await;
    assert_eq!(
        resumed[0].0, first[1].0,
        "resuming after an id continues with the next event, no gap"
    );
    assert_eq!(resumed[1].0, first[2].0);
    app.stop().await;
}

/// Reads `n` SSE events: (id, kind).
async fn read_events(
    app: &TestApp,
    token: &str,
    id: i64,
    last: Option<i64>,
    n: usize,
) -> Vec<(i64, String)> {
    let mut req =
        app.client().get(format!("{}/api/v1/campaigns/{id}/events", app.url)).bearer_auth(token);
    if let Some(l) = last {
        req = req.header("last-event-id", l.to_string());
    }
    let mut res = req.send().await.expect("stream");
    assert_eq!(res.status(), StatusCode::OK);
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(2), res.chunk()).await
        else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            if let (Some(eid), Some(data)) = (field("id:"), field("data:")) {
                let v: Value = serde_json::from_str(&data).expect("data is JSON");
                out.push((
                    eid.parse().expect("numeric id"),
                    v["kind"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

// The CLI runs as a child process and blocks this thread: the server needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_a_draft_whose_cli_plan_matches_the_api_preview() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .env("SWITCHYARD_URL", &app.url)
            .env("SWITCHYARD_TOKEN", &token)
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let env_file = examples().join("environment.toml");
    let canary = examples().join("canary.toml");
    let (ok, out, err) = cli(&["apply", "-f", env_file.to_str().expect("path")]);
    assert!(ok && out.contains("created environment"), "{out}{err}");
    let (ok, out, err) = cli(&["apply", "-f", canary.to_str().expect("path")]);
    assert!(ok && out.contains("created draft campaign"), "{out}{err}");
    let (ok, again, _) = cli(&["apply", "-f", canary.to_str().expect("path")]);
    assert!(ok && again.contains("updated draft campaign"), "applying twice updates: {again}");
    let (ok, out, err) =
        cli(&["apply", "-f", examples().join("canary.yaml").to_str().expect("path")]);
    assert!(ok && out.contains("created draft campaign"), "YAML too: {out}{err}");

    let (_, list) =
        call(&app, &token, Method::GET, "/api/v1/campaigns?q=web-canary&status=draft", None).await;
    let id = list["campaigns"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == "web-canary")
        .and_then(|c| c["id"].as_i64())
        .expect("draft");
    let spec = read_example("canary.toml");
    let (_, api_plan) = call(&app, &token, Method::POST, "/api/v1/plan", Some(spec)).await;
    let api_plan: app::domain::plan::Plan = serde_json::from_value(api_plan).expect("plan");
    let (ok, printed, err) = cli(&["plan", "-f", canary.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert_eq!(
        printed,
        server::client::render_plan(&api_plan),
        "the CLI prints the plan the API previews"
    );
    assert!(printed.contains("Shift 25 %"), "{printed}");
    // The saved draft's plan names the instances it will create after the campaign.
    let (_, draft_plan) =
        call(&app, &token, Method::POST, &format!("/api/v1/campaigns/{id}/plan"), None).await;
    assert!(draft_plan.to_string().contains(&format!("web-1-v1-5-0-c{id}")), "{draft_plan}");

    let (ok, _, err) = cli(&["campaign", "abort", &id.to_string(), "--reason", "not yet"]);
    assert!(!ok && err.contains("cannot abort a campaign that is draft"), "{err}");
    let bad = std::env::temp_dir().join(format!("bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "name = \"x\"\n[strategy]\nkind = \"canary\"\n").expect("write");
    let (ok, _, err) = cli(&["plan", "-f", bad.to_str().expect("path")]);
    assert!(!ok && err.contains("422"), "a bad file is refused with the reason: {err}");
    app.stop().await;
}
