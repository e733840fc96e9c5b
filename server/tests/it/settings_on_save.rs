//! Backend settings are checked by the driver's typed config when an environment is saved,
//! through the API and `switchyard apply`; and the shipped examples apply and validate.

use app::domain::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Runs `switchyard apply -f FILE` against `app` (asynchronously: the server shares this runtime).
async fn apply(app: &TestApp, token: &str, file: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("SWITCHYARD_URL", &app.url)
        .env("SWITCHYARD_TOKEN", token)
        .env_remove("SWITCHYARD_CONFIG")
        .arg("apply")
        .arg("-f")
        .arg(file)
        .output()
        .await
        .expect("the switchyard binary runs")
}

#[tokio::test]
async fn every_file_in_examples_applies_to_a_server_and_validates() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let dir = examples_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml" || e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    // The environment first: every spec names it.
    files.sort_by_key(|p| p.file_stem().is_none_or(|s| s != "environment"));
    assert!(files.len() >= 6, "examples/ has an environment and a spec per strategy: {files:?}");
    for file in &files {
        let out = apply(&app, &token, file).await;
        assert!(
            out.status.success(),
            "{} does not apply:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each spec is a valid draft with a plan.
    let list: Value =
        app.get_bearer("/api/v1/campaigns?per_page=200", &token).await.json().await.expect("json");
    let drafts = list["campaigns"].as_array().expect("campaigns");
    assert_eq!(drafts.len(), files.len() - 1, "one draft per spec");
    for d in drafts {
        let detail: Value = app
            .get_bearer(&format!("/api/v1/campaigns/{}", d["id"]), &token)
            .await
            .json()
            .await
            .expect("json");
        assert!(
            detail["plan"]["steps"].as_array().is_some_and(|s| !s.is_empty()),
            "{} has a plan: {detail}",
            d["name"]
        );
    }
    app.stop().await;
}

fn environment(settings: Value) -> Value {
    json!({
        "name": "production",
        "targets": [{ "name": "web-1", "address": "127.0.0.1:9101", "group": "a", "release": "v1", "health_url": "http://127.0.0.1:9101/healthz" }],
        "pools": [{ "name": "web", "router": "edge", "targets": ["web-1"] }],
        "backends": [{ "name": "edge", "kind": "router", "driver": "haproxy", "settings": settings }],
    })
}

#[tokio::test]
async fn a_misspelt_backend_setting_is_refused_on_save_with_a_422_naming_the_key() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let http = app.client();
    let bad = environment(json!({ "socket": "/run/haproxy/admin.sock", "backend": "web" }));

    let res = http
        .post(format!("{}/api/v1/environments", app.url))
        .bearer_auth(&token)
        .json(&bad)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.expect("json");
    let fields = &body["error"]["fields"];
    let socket = fields["backends[0].settings.socket"].as_str().unwrap_or_default();
    assert!(socket.contains("unknown field `socket`") && socket.contains("runtime_api"), "{body}");
    assert!(fields["backends[0].settings.backend"].is_string(), "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| m.contains("backends[0].settings")),
        "{body}"
    );

    // A good one is saved; editing it into a bad one is refused the same way and changes nothing.
    let good = environment(json!({ "runtime_api": "unix:/run/haproxy/admin.sock" }));
    let res = http
        .post(format!("{}/api/v1/environments", app.url))
        .bearer_auth(&token)
        .json(&good)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.expect("json")["id"].clone();
    let res = http
        .put(format!("{}/api/v1/environments/{id}", app.url))
        .bearer_auth(&token)
        .json(&bad)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.expect("json");
    assert!(body["error"]["fields"]["backends[0].settings.socket"].is_string(), "{body}");
    let stored: Value = app
        .get_bearer(&format!("/api/v1/environments/{id}"), &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        stored["spec"]["backends"][0]["settings"]["runtime_api"],
        "unix:/run/haproxy/admin.sock"
    );

    // The CLI says the same, with the field.
    let file = tempfile::Builder::new().suffix(".json").tempfile().expect("tempfile");
    std::fs::write(file.path(), bad.to_string()).expect("write");
    let out = apply(&app, &token, file.path()).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backends[0].settings.socket") && err.contains("(422)"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn a_target_address_that_is_not_host_and_port_is_refused_on_save() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let mut env = environment(json!({ "runtime_api": "unix:/run/haproxy/admin.sock" }));
    env["targets"][0]["address"] = json!("127.0.0.1:9101; server evil 10.0.0.1:80");
    let res = app
        .client()
        .post(format!("{}/api/v1/environments", app.url))
        .bearer_auth(&token)
        .json(&env)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.expect("json");
    assert!(body["error"]["fields"]["targets[0].address"].is_string(), "{body}");
    app.stop().await;
}
