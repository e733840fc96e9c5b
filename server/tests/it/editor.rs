//! The campaign editor's server side: its server functions (environments without secrets,
//! draft creation validated again on the server, TOML/YAML import and export) and the REST
//! endpoint that serves a saved campaign's spec as a file.

use std::path::PathBuf;

use app::domain::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    std::fs::read_to_string(path).expect("example readable")
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client().request(method, format!("{}{path}", app.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The example environment, an operator (olivia) and a viewer (vera), and the example canary.
async fn editor_app() -> (TestApp, String, String, Value) {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    app.add_user("olivia", Role::Operator).await;
    app.add_user("vera", Role::Viewer).await;
    let (ada, olivia, vera) =
        (app.token_for("ada").await, app.token_for("olivia").await, app.token_for("vera").await);
    let env = server::client::read_spec_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/environment.toml"),
    )
    .expect("environment example");
    let (status, body) =
        call(&app, Some(&ada), Method::POST, "/api/v1/environments", Some(env)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, spec) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/import",
        Some(json!({ "text": example("canary.toml"), "format": "toml" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{spec}");
    (app, olivia, vera, spec)
}

/// A server function called as a form post (its default encoding).
async fn form(
    app: &TestApp,
    token: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let res = app
        .client()
        .post(format!("{}{path}", app.url))
        .bearer_auth(token)
        .form(fields)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn campaign_count(app: &TestApp, token: &str) -> i64 {
    let (status, page) = call(app, Some(token), Method::GET, "/api/v1/campaigns", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["total"].as_i64().expect("total")
}

#[tokio::test]
async fn an_operator_saves_a_draft_through_the_server_function() {
    let (app, olivia, _, spec) = editor_app().await;
    let (status, id) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/create_draft",
        Some(json!({ "spec": spec })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let id = id.as_i64().expect("an id");
    let (status, detail) =
        call(&app, Some(&olivia), Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["summary"]["status"], "draft");
    assert_eq!(detail["spec"], spec);
    assert!(detail["plan"]["steps"].as_array().is_some_and(|s| s.len() > 3), "{detail}");
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_is_refused_a_draft_and_nothing_is_saved() {
    let (app, _, vera, spec) = editor_app().await;
    let (status, err) = call(
        &app,
        Some(&vera),
        Method::POST,
        "/api/editor/create_draft",
        Some(json!({ "spec": spec })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["code"], "forbidden");
    assert_eq!(campaign_count(&app, &vera).await, 0);
    let (status, _) =
        call(&app, None, Method::POST, "/api/editor/create_draft", Some(json!({ "spec": spec })))
            .await;
    assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN, "{status}");
    app.stop().await;
}

#[tokio::test]
async fn the_server_checks_a_draft_again_and_names_each_bad_field() {
    let (app, olivia, _, mut spec) = editor_app().await;
    spec["strategy"]["steps"][1]["weight"] = json!(0.5);
    spec["window"]["timezone"] = json!("Mars/Olympus");
    let (status, err) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/create_draft",
        Some(json!({ "spec": spec })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let fields = err["fields"].as_object().expect("fields");
    assert!(fields.contains_key("strategy.steps[1].weight"), "{fields:?}");
    assert!(fields["window.timezone"].as_str().is_some_and(|m| m.contains("Mars/Olympus")));
    assert_eq!(campaign_count(&app, &olivia).await, 0, "nothing half-written");
    app.stop().await;
}

#[tokio::test]
async fn import_reads_yaml_like_toml_and_a_parse_error_names_the_field_and_line() {
    let (app, olivia, _, _) = editor_app().await;
    let (status, from_yaml) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/import",
        Some(json!({ "text": example("canary.yaml"), "format": "yaml" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{from_yaml}");
    assert_eq!(from_yaml["strategy"]["kind"], "canary");

    let text = example("canary.toml").replace("max_p99_ms = 800", "max_p99_ms = \"fast\"");
    let line = text.lines().position(|l| l.starts_with("max_p99_ms")).expect("line") + 1;
    let (status, err) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/import",
        Some(json!({ "text": text, "format": "toml" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let message = err["fields"]["gates[0].max_p99_ms"].as_str().expect("field named");
    assert!(message.starts_with(&format!("line {line}:")), "{message}");

    let (status, err) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/import",
        Some(json!({ "text": "name: [unclosed", "format": "yaml" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("line 1")), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn export_writes_the_form_and_a_saved_campaign_as_toml_or_yaml_that_read_back_equal() {
    let (app, olivia, vera, spec) = editor_app().await;
    for format in ["toml", "yaml"] {
        let (status, text) = call(
            &app,
            Some(&olivia),
            Method::POST,
            "/api/editor/export",
            Some(json!({ "spec": spec, "format": format })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let (status, back) = call(
            &app,
            Some(&olivia),
            Method::POST,
            "/api/editor/import",
            Some(json!({ "text": text, "format": format })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{back}");
        assert_eq!(back, spec, "{format}");
    }

    let (_, id) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/create_draft",
        Some(json!({ "spec": spec })),
    )
    .await;
    let id = id.as_i64().expect("id");
    // A viewer may read a campaign, so may download its spec too.
    let res = app
        .client()
        .get(format!("{}/api/v1/campaigns/{id}/spec?format=toml", app.url))
        .bearer_auth(&vera)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers()["content-disposition"].to_str().expect("ascii").to_string();
    assert!(disposition.contains("web-canary.toml"), "{disposition}");
    let toml_text = res.text().await.expect("body");
    let back =
        server::services::editor::read_spec(&toml_text, server::services::editor::SpecFormat::Toml)
            .expect("served TOML reads");
    assert_eq!(serde_json::to_value(back).expect("json"), spec);

    let (status, err) = call(
        &app,
        Some(&vera),
        Method::GET,
        &format!("/api/v1/campaigns/{id}/spec?format=xml"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("use toml, yaml or json"), "{err}");
    let (status, _) =
        call(&app, Some(&vera), Method::GET, "/api/v1/campaigns/9999/spec", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn the_editor_gets_environments_without_backend_settings() {
    let (app, olivia, _, _) = editor_app().await;
    let (status, envs) =
        call(&app, Some(&olivia), Method::POST, "/api/editor/environments", None).await;
    assert_eq!(status, StatusCode::OK, "{envs}");
    let text = envs.to_string();
    assert!(text.contains("web-pool"), "{text}");
    assert!(!text.contains("admin.sock") && !text.contains("demo-service"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn a_draft_opens_in_the_form_and_saving_it_replaces_it_while_viewers_are_refused() {
    let (app, olivia, vera, spec) = editor_app().await;
    let (status, id) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/create_draft",
        Some(json!({ "spec": spec })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let id = id.as_i64().expect("id");
    let draft = id.to_string();
    let start = [("draft", draft.as_str()), ("from", "0"), ("mode", "")];
    let (status, opened) = form(&app, &olivia, "/api/editor/start", &start).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["name"], "web-canary", "the form opens with the draft");
    let (status, _) = form(&app, &vera, "/api/editor/start", &start).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers cannot edit drafts");

    let mut edited = opened.clone();
    edited["name"] = json!("web-canary-edited");
    let (status, saved) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/save_draft",
        Some(json!({ "id": id, "spec": edited })),
    )
    .await;
    assert_eq!((status, saved.as_i64()), (StatusCode::OK, Some(id)), "saved in place");
    let (_, detail) =
        call(&app, Some(&olivia), Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(detail["summary"]["name"], "web-canary-edited");
    let mut broken = edited.clone();
    broken["to_release"] = broken["from_release"].clone();
    let (status, body) = call(
        &app,
        Some(&olivia),
        Method::POST,
        "/api/editor/save_draft",
        Some(json!({ "id": id, "spec": broken })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, detail) =
        call(&app, Some(&olivia), Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
    assert_ne!(
        detail["spec"]["to_release"], detail["spec"]["from_release"],
        "a refused save changes nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_campaign_clones_into_a_new_draft_and_only_a_succeeded_one_offers_its_rollback() {
    let (app, olivia, vera, spec) = editor_app().await;
    let (_, created) =
        call(&app, Some(&olivia), Method::POST, "/api/v1/campaigns", Some(spec)).await;
    let id = created["summary"]["id"].as_i64().expect("id");
    let (status, body) = call(
        &app,
        Some(&olivia),
        Method::POST,
        &format!("/api/v1/campaigns/{id}/rollback-release"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("only a succeeded campaign's release can be rolled back"),
        "{body}"
    );
    let (status, _) =
        call(&app, Some(&vera), Method::POST, &format!("/api/v1/campaigns/{id}/clone"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, copy) =
        call(&app, Some(&olivia), Method::POST, &format!("/api/v1/campaigns/{id}/clone"), None)
            .await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["summary"]["name"], "web-canary-copy");
    assert_eq!(copy["summary"]["status"], "draft");
    assert_eq!(copy["spec"]["from_release"], "v1.4.2", "it starts from what the pool runs now");
    let start = chrono::DateTime::parse_from_rfc3339(
        copy["spec"]["window"]["start"].as_str().unwrap_or_default(),
    )
    .expect("a fresh window");
    assert!(start > chrono::Utc::now(), "the copy's window lies ahead: {start}");
    let from = id.to_string();
    let (status, prefill) = form(
        &app,
        &olivia,
        "/api/editor/start",
        &[("draft", "0"), ("from", from.as_str()), ("mode", "clone")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{prefill}");
    assert_eq!(prefill["name"], "web-canary-copy", "the form can start from the campaign too");
    app.stop().await;
}
